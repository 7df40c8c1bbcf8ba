// Tandem's contact fields: one normalised form, and comparisons that ignore formatting only.
import fc from 'fast-check';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { describe, expect, it } from 'vitest';
import {
  SYNC_FIELDS, applyPatch, applyTags, contactFieldsSchema, emptyContact, fieldEquals, isE164, isEmpty,
  normalizeContact, normalizePhone, readsAs, sameEmail, toCountryCode, type ContactDraft,
} from '../../server/sync/contact-model.ts';

describe('normalizeContact', () => {
  it('trims, empties to null, keeps email case, normalises tags, country, birthday and custom fields', () => {
    const { contact, issues } = normalizeContact({
      firstName: '  Ada ',
      lastName: '',
      email: ' Ada.Lovelace@Example.COM ',
      phone: '(415) 555-2671',
      city: '   ',
      country: 'gb',
      dateOfBirth: '1990-09-25T00:00:00.000Z',
      tags: [' VIP', 'vip', 'Lead ', '', 'lead'],
      dnd: true,
      customFields: { a: 'x', b: '', c: [], d: 0, e: [' ', 'one'] },
    });
    expect(contact).toEqual({
      ...emptyContact(),
      firstName: 'Ada',
      email: 'Ada.Lovelace@Example.COM',
      phone: '+14155552671',
      country: 'GB',
      dateOfBirth: '1990-09-25',
      tags: ['vip', 'lead'],
      dnd: true,
      customFields: { a: 'x', d: 0, e: ['one'] },
    });
    expect(issues).toEqual([]);
    expect(contactFieldsSchema.parse(contact)).toEqual(contact);
  });

  it("reads national numbers with the location's country, and falls back to US", () => {
    expect(normalizePhone('0151 1234567', 'DE')).toEqual({ phone: '+491511234567', e164: true });
    expect(normalizePhone('020 7946 0958', 'gb')).toEqual({ phone: '+442079460958', e164: true });
    expect(normalizePhone('415 555 2671', 'XX')).toEqual({ phone: '+14155552671', e164: true });
    // Possible but not "valid" (fictional 555 numbers are common test data): still E.164.
    expect(normalizePhone('+1 555 555 0001')).toEqual({ phone: '+15555550001', e164: true });
    // Not as the NANP builds numbers (an area code or exchange starting with 0 or 1): a placeholder,
    // or a French number read as American. Kept as typed, and never used for matching.
    expect(normalizePhone('(000) 000-0000')).toEqual({ phone: '(000) 000-0000', e164: false });
    expect(normalizePhone('06 12 34 28 40')).toEqual({ phone: '06 12 34 28 40', e164: false });
    expect(normalizePhone('+1 415 055 2671')).toEqual({ phone: '+1 415 055 2671', e164: false });
    expect(normalizePhone('06 12 34 28 40', 'FR')).toEqual({ phone: '+33612342840', e164: true });
    // One stored before the rule is not used for matching either.
    expect(isE164('+10000000000')).toBe(false);
    expect(normalizePhone('+44 20 7946 0958', 'US').phone).toBe('+442079460958');
  });

  it('reads +1 and ten digits as libphonenumber-js does, without asking it, on every area code and default country', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 9_999_999 }), fc.constantFrom('US', 'CA', 'GB', 'DE', 'JM', 'XX'), (area, rest, country) => {
        const text = `+1${String(area).padStart(3, '0')}${String(rest).padStart(7, '0')}`;
        const parsed = parsePhoneNumberFromString(text, (toCountryCode(country) ?? 'US') as CountryCode);
        const nanp = /^\+1[2-9]\d{2}[2-9]\d{6}$/.test(text);
        const expected = parsed?.isPossible() && nanp ? { phone: parsed.number, e164: true } : { phone: text, e164: false };
        expect(normalizePhone(text, country)).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
    // Around it, the ordinary path: other lengths, spaces, other codes.
    expect(normalizePhone('+1415555267')).toEqual({ phone: '+1415555267', e164: false });
    expect(normalizePhone('+1 415 555 2671')).toEqual({ phone: '+14155552671', e164: true });
    expect(normalizePhone('+14155552671 ')).toEqual({ phone: '+14155552671', e164: true });
  });

  it('keeps an unreadable phone as typed (trimmed) and flags it', () => {
    const { contact, issues } = normalizeContact({ phone: '  ext. 12 ' });
    expect(contact.phone).toBe('ext. 12');
    expect(issues).toEqual([{ field: 'phone', code: 'phone_unrecognised', value: 'ext. 12' }]);
    expect(isE164(contact.phone)).toBe(false);
    expect(isE164('+14155552671')).toBe(true);
    expect(normalizePhone('   ')).toEqual({ phone: null, e164: false });
  });

  it('reads a number written with an extension as the number, and says the extension, which E.164 cannot hold', () => {
    for (const text of ['+1 415 555 9999 ext 12', '415-555-9999 x12', '(415) 555-9999 ext. 12', '+1 415 555 9999;ext=12']) {
      expect(normalizePhone(text), text).toEqual({ phone: '+14155559999', e164: true, extension: '12' });
    }
    expect(normalizePhone('+1 415 555 9999')).toEqual({ phone: '+14155559999', e164: true });
    const { contact, issues } = normalizeContact({ phone: ' +1 415 555 9999 ext 12 ' });
    expect(contact.phone).toBe('+14155559999');
    expect(issues).toEqual([{ field: 'phone', code: 'phone_extension', value: '+1 415 555 9999 ext 12', extension: '12' }]);
    expect(normalizeContact({ phone: '+1 415 555 9999' }).issues).toEqual([]);
  });

  it('is idempotent', () => {
    const draft: fc.Arbitrary<ContactDraft> = fc.record(
      {
        firstName: fc.option(fc.string(), { nil: null }),
        email: fc.option(fc.constantFrom(' A@b.co', 'a@B.co ', ''), { nil: null }),
        phone: fc.option(fc.constantFrom('(415) 555-2671', '+14155552671', '0151 1234567', 'call me', ' ', '12'), { nil: null }),
        country: fc.option(fc.constantFrom('us', 'DE', ' gb '), { nil: null }),
        tags: fc.array(fc.constantFrom('A', ' a', 'b ', 'B', '', 'c')),
        customFields: fc.dictionary(fc.constantFrom('k1', 'k2'), fc.oneof(fc.string(), fc.integer(), fc.array(fc.constantFrom('x', ' ', 'y')))),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(draft, fc.constantFrom('US', 'DE'), (d, country) => {
        const once = normalizeContact(d, { defaultCountry: country }).contact;
        expect(normalizeContact(once, { defaultCountry: country }).contact).toEqual(once);
      }),
    );
  });
});

describe('readsAs', () => {
  it('says whether a phone without +prefix is a number when read in that number’s own country', () => {
    // Whatever country the contact has now: the text means what it meant where the number is.
    expect(readsAs('(415) 555-0123', '+14155550123')).toBe(true);
    expect(readsAs('020 7946 0958', '+442079460958')).toBe(true);
    expect(readsAs('030 12345678', '+493012345678')).toBe(true);
    // +1 555… is in no one country: read in those of +1.
    expect(readsAs('(555) 555-0123', '+15555550123')).toBe(true);
    // A number read in Germany before stays the German number.
    expect(readsAs('(415) 555-0123', '+494155550123')).toBe(true);
    // Other digits are another number.
    expect(readsAs('(415) 555-0199', '+14155550123')).toBe(false);
    expect(readsAs('4155550123', '+442079460958')).toBe(false);
    // Only E.164 numbers are read as: text kept as typed is compared as text.
    expect(readsAs('12', '12')).toBe(false);
  });
});

describe('contactFieldsSchema', () => {
  it('rejects what normalisation would have changed and invalid values', () => {
    const ok = emptyContact();
    expect(contactFieldsSchema.safeParse(ok).success).toBe(true);
    expect(contactFieldsSchema.safeParse({ ...ok, tags: ['VIP'] }).success).toBe(false);
    expect(contactFieldsSchema.safeParse({ ...ok, tags: ['a', 'a'] }).success).toBe(false);
    expect(contactFieldsSchema.safeParse({ ...ok, firstName: '' }).success).toBe(false);
    expect(contactFieldsSchema.safeParse({ ...ok, country: 'USA' }).success).toBe(false);
    expect(contactFieldsSchema.safeParse({ ...ok, dateOfBirth: '2026-02-30' }).success).toBe(false);
    expect(contactFieldsSchema.safeParse({ ...ok, dateOfBirth: '2024-02-29' }).success).toBe(true);
    expect(contactFieldsSchema.safeParse({ ...ok, customFields: { a: '' } }).success).toBe(false);
    expect(contactFieldsSchema.safeParse({ ...ok, customFields: { a: ['x'], b: 3 } }).success).toBe(true);
  });
});

describe('comparisons', () => {
  it('matches emails case-insensitively, and counts a change of their case as a change', () => {
    expect(sameEmail('Ada@Example.com', 'ada@example.COM')).toBe(true);
    expect(sameEmail('ada@example.com', null)).toBe(false);
    expect(sameEmail(null, undefined)).toBe(true);
    expect(fieldEquals('email', 'A@b.co', 'a@B.CO')).toBe(false);
    expect(fieldEquals('email', 'a@b.co', 'a@b.co')).toBe(true);
    expect(fieldEquals('firstName', 'Ada', 'ada')).toBe(false);
  });

  it('compares tags as sets and custom fields key by key', () => {
    expect(fieldEquals('tags', ['a', 'b'], ['b', 'a'])).toBe(true);
    expect(fieldEquals('tags', ['a'], ['a', 'b'])).toBe(false);
    expect(fieldEquals('customFields', { x: ['1', '2'], n: 5 }, { n: '5', x: ['2', '1'] })).toBe(true);
    expect(fieldEquals('customFields', { x: 'a' }, { x: 'a', y: 'b' })).toBe(false);
    expect(fieldEquals('customFields', { x: ['a'] }, { x: 'a' })).toBe(false);
    expect(fieldEquals('dnd', false, undefined)).toBe(true);
    expect(fieldEquals('city', null, undefined)).toBe(true);
  });

  it('says what is empty', () => {
    for (const v of [null, undefined, '', [], {}]) expect(isEmpty(v)).toBe(true);
    for (const v of [false, 0, 'x', ['x'], { a: 1 }]) expect(isEmpty(v)).toBe(false);
  });

  it('lists every field of the schema once', () => {
    expect([...SYNC_FIELDS].sort()).toEqual(Object.keys(contactFieldsSchema.shape).sort());
  });
});

describe('applying changes', () => {
  it('applies a patch, clearing custom fields given null', () => {
    const c = { ...emptyContact(), firstName: 'Ada', customFields: { a: 'x', b: 'y' } };
    const next = applyPatch(c, { firstName: null, city: 'Paris', customFields: { a: null, c: ['z'] } });
    expect(next).toEqual({ ...emptyContact(), city: 'Paris', customFields: { b: 'y', c: ['z'] } });
    expect(c.customFields).toEqual({ a: 'x', b: 'y' });
  });

  it('applies tag adds and removes', () => {
    expect(applyTags(['a', 'b', 'c'], ['D', 'a'], ['b'])).toEqual(['a', 'c', 'd']);
  });
});
