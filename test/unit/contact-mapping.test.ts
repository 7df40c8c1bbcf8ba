// HighLevel's contact shapes ↔ Tandem's fields. Bodies are checked with the emulator's own
// validator and stored with its own write logic (pure functions, no server), so a mapping that
// HighLevel would refuse, or that does not survive a write and a read back, fails here.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyInput, getView, searchView, webhookPayload } from '../../emulator/contact-model.ts';
import { parseContactWrite } from '../../emulator/contact-validate.ts';
import type { ContactDoc } from '../../emulator/state.ts';
import {
  fromHighLevel, highLevelContactEventSchema, highLevelContactSchema, keepLedgerPhone, searchContactsResponseSchema,
  toHighLevelCreate, toHighLevelUpdate, type HighLevelContact,
} from '../../server/highlevel/contact-mapping.ts';
import { applyPatch, emptyContact, type ContactFields, type ContactPatch } from '../../server/sync/contact-model.ts';

const toHighLevelUser: Record<string, string> = { tu1: 'hlUser1', tu2: 'hlUser2' };
const toTandemUser: Record<string, string> = { hlUser1: 'tu1', hlUser2: 'tu2' };
const userMap = (id: string) => toHighLevelUser[id];
const ownerMap = (id: string) => toTandemUser[id];

const NOW = '2026-03-01T10:00:00.000Z';

function stored(body: unknown, kind: 'create' | 'update', before?: ContactDoc): ContactDoc {
  const doc: ContactDoc = before ?? { id: 'c1', locationId: 'loc1', type: 'lead', tags: [], customFields: [], dateAdded: NOW, dateUpdated: NOW };
  return applyInput(doc, parseContactWrite(body, kind), NOW);
}

function parse(doc: Record<string, unknown>): HighLevelContact {
  return highLevelContactSchema.parse(doc);
}

const countryOf = (name: string) => (name === 'Germany' ? 'DE' : name);

const text = fc.string({ minLength: 1, maxLength: 12 }).map((s) => s.trim()).filter((s) => s.length > 0);
const contactArb: fc.Arbitrary<ContactFields> = fc.record({
  firstName: fc.option(text, { nil: null }),
  lastName: fc.option(text, { nil: null }),
  email: fc.option(fc.constantFrom('Ada@Example.com', 'grace@navy.mil'), { nil: null }),
  phone: fc.option(fc.constantFrom('+14155552671', '+491511234567', 'ext. 12'), { nil: null }),
  companyName: fc.option(text, { nil: null }),
  address1: fc.option(text, { nil: null }),
  city: fc.option(text, { nil: null }),
  state: fc.option(text, { nil: null }),
  postalCode: fc.option(text, { nil: null }),
  country: fc.option(fc.constantFrom('US', 'DE', 'IN'), { nil: null }),
  website: fc.option(fc.constantFrom('https://example.com'), { nil: null }),
  timezone: fc.option(fc.constantFrom('Europe/Berlin', 'America/New_York'), { nil: null }),
  dateOfBirth: fc.option(fc.constantFrom('1990-09-25', '2000-02-29'), { nil: null }),
  source: fc.option(text, { nil: null }),
  tags: fc.uniqueArray(fc.constantFrom('vip', 'lead', 'x y', 'customer')),
  dnd: fc.boolean(),
  ownerUserId: fc.constantFrom(null, 'tu1', 'tu2'),
  customFields: fc.dictionary(
    fc.constantFrom('cfA', 'cfB', 'cfC'),
    fc.oneof(text, fc.integer(), fc.uniqueArray(fc.constantFrom('o1', 'o2', 'o3'), { minLength: 1 })),
  ),
});

const patchArb: fc.Arbitrary<ContactPatch> = fc.record(
  {
    firstName: fc.option(text, { nil: null }),
    email: fc.option(fc.constantFrom('new@example.org'), { nil: null }),
    phone: fc.option(fc.constantFrom('+442079460958'), { nil: null }),
    city: fc.option(text, { nil: null }),
    country: fc.option(fc.constantFrom('FR'), { nil: null }),
    dateOfBirth: fc.option(fc.constantFrom('1985-01-31'), { nil: null }),
    dnd: fc.boolean(),
    ownerUserId: fc.constantFrom(null, 'tu1'),
    customFields: fc.dictionary(fc.constantFrom('cfA', 'cfD'), fc.option(fc.oneof(text, fc.integer()), { nil: null })),
  },
  { requiredKeys: [] },
);

describe('Tandem → HighLevel → Tandem', () => {
  it('a created contact reads back the same from GET and search, and as carried by a webhook', () => {
    fc.assert(
      fc.property(contactArb, (contact) => {
        const { body, unmatchedOwner } = toHighLevelCreate(contact, 'loc1', userMap);
        expect(unmatchedOwner).toBeUndefined();
        const doc = stored(body, 'create');

        expect(fromHighLevel(parse(getView(doc)), ownerMap, { complete: true }).fields).toEqual(contact);
        expect(fromHighLevel(parse(searchView(doc, [1, 'c1'])), ownerMap, { complete: true }).fields).toEqual(contact);

        const event = highLevelContactEventSchema.parse({ ...webhookPayload('ContactUpdate', doc), webhookId: 'w1', timestamp: NOW });
        const thin = fromHighLevel(event, ownerMap).fields;
        for (const [field, value] of Object.entries(thin)) expect(value).toEqual(contact[field as keyof ContactFields]);
        // The emulator's webhooks never carry timezone: unknown, not cleared.
        expect('timezone' in thin).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('an update body changes exactly the patched fields and never carries tags or locationId', () => {
    fc.assert(
      fc.property(contactArb, patchArb, (contact, patch) => {
        const doc = stored(toHighLevelCreate(contact, 'loc1', userMap).body, 'create');
        const { body, tags } = toHighLevelUpdate(patch, userMap, { add: ['New'], remove: ['vip'] });
        expect(body).not.toHaveProperty('tags');
        expect(body).not.toHaveProperty('locationId');
        expect(tags).toEqual({ add: ['new'], remove: ['vip'] });
        const after = stored(body, 'update', doc);
        expect(fromHighLevel(parse(getView(after)), ownerMap, { complete: true }).fields).toEqual(applyPatch(contact, patch));
      }),
      { numRuns: 200 },
    );
  });
});

describe('fromHighLevel', () => {
  it("reads HighLevel's documented webhook example, carrying only what it holds", () => {
    const file = new URL('../../../shared/highlevel/openapi/webhook-events/ContactUpdate.json', import.meta.url);
    const example = (JSON.parse(readFileSync(file, 'utf8')) as { examples: unknown[] }).examples[0];
    const event = highLevelContactEventSchema.parse(example);
    const remote = fromHighLevel(event, (id) => (id === 'nmFmQEsNgz6AVpgLVUJ0' ? 'tandemUser9' : undefined), { defaultCountry: 'IN' });
    expect(remote.id).toBe('nmFmQEsNgz6AVpgLVUJ0');
    expect(remote.locationId).toBe('ve9EPM428h8vShlRW1KT');
    expect(remote.fields).toEqual({
      firstName: 'John',
      lastName: 'Deo',
      email: 'JohnDeo@gmail.comm',
      phone: '+919509597501',
      companyName: 'Loram ipsum',
      address1: '3535 1st St N',
      city: 'ruDolomitebika',
      state: 'AL',
      postalCode: '452001',
      country: 'DE',
      website: 'https://www.google.com/',
      dateOfBirth: '2000-01-05',
      source: 'xyz form',
      tags: ['id magna sed lorem', 'duis dolor commodo aliqua'],
      dnd: true,
      ownerUserId: 'tandemUser9',
      customFields: { BcdmQEsNgz6AVpgLVUJ0: 'XYZ Corp' },
    });
    expect(remote.problems).toEqual([]);
  });

  it('reads an email composed as Tandem stores it, so one spelling of the same letters matches the other', () => {
    const doc = { id: 'c1', email: '\u00e5sa@example.com'.normalize('NFD') };
    expect(fromHighLevel(doc, () => null).fields.email).toBe('\u00e5sa@example.com');
  });

  it('fills the fields a complete record omits, and leaves them unknown in a thin one', () => {
    const doc = parse({ id: 'c1', locationId: 'loc1', firstName: 'Ada', dateUpdated: '2026-03-01T10:00:00.000Z' });
    const complete = fromHighLevel(doc, ownerMap, { complete: true });
    expect(complete.fields).toEqual({ ...emptyContact(), firstName: 'Ada' });
    expect(complete.dateUpdated).toBe(Date.parse('2026-03-01T10:00:00.000Z'));
    expect(fromHighLevel(doc, ownerMap).fields).toEqual({ firstName: 'Ada' });
    // An explicit null or empty value is carried as empty even in a thin payload.
    expect(fromHighLevel(parse({ id: 'c1', city: null, tags: [], website: '' }), ownerMap).fields).toEqual({ city: null, tags: [], website: null });
  });

  it('leaves an owner without a paired Tandem user unknown and reports it', () => {
    const remote = fromHighLevel(parse({ id: 'c1', assignedTo: 'hlStranger' }), ownerMap, { complete: true });
    expect(remote.unmatchedOwner).toBe('hlStranger');
    expect('ownerUserId' in remote.fields).toBe(false);
    expect(fromHighLevel(parse({ id: 'c1', assignedTo: null }), ownerMap).fields).toEqual({ ownerUserId: null });
  });

  it('reports what it cannot read instead of guessing', () => {
    const remote = fromHighLevel(
      parse({ id: 'c1', phone: 'n/a', country: 'Atlantis', dateOfBirth: 'soon', customFields: [{ id: 'f1', value: { uuid: { url: 'x' } } }, { id: 'f2', value: 'ok' }] }),
      ownerMap,
      { complete: true },
    );
    expect(remote.fields.phone).toBe('n/a');
    expect('country' in remote.fields).toBe(false);
    expect('dateOfBirth' in remote.fields).toBe(false);
    expect(remote.fields.customFields).toEqual({ f2: 'ok' });
    expect(remote.problems.map((p) => `${p.field}:${p.code}`)).toEqual([
      'phone:phone_unrecognised',
      'country:country_unrecognised',
      'dateOfBirth:date_unrecognised',
      'customFields.f1:custom_value_unsupported',
    ]);
  });

  it('normalises phones with the default country and reads search birthdays in epoch ms', () => {
    const remote = fromHighLevel(parse({ id: 'c1', phone: '0151 1234567', dateOfBirth: Date.UTC(1990, 8, 25) }), ownerMap, { defaultCountry: 'DE' });
    expect(remote.fields).toEqual({ phone: '+491511234567', dateOfBirth: '1990-09-25' });
  });

  it("reads a phone without +prefix in the contact's own country before the location's", () => {
    expect(fromHighLevel(parse({ id: 'c1', phone: '06 12 34 28 10', country: 'fr' }), ownerMap, { defaultCountry: 'US' }).fields).toEqual({ phone: '+33612342810', country: 'FR' });
    // No country, or one that cannot be read: the location's.
    expect(fromHighLevel(parse({ id: 'c1', phone: '0151 1234567' }), ownerMap, { defaultCountry: 'DE' }).fields.phone).toBe('+491511234567');
    expect(fromHighLevel(parse({ id: 'c1', phone: '0151 1234567', country: 'Atlantis' }), ownerMap, { defaultCountry: 'DE' }).fields.phone).toBe('+491511234567');
  });

  it('reads a phone with an extension as the number, and reports the extension it does not keep (HighLevel keeps it)', () => {
    const remote = fromHighLevel(parse({ id: 'c1', phone: '+1 415 555 9999 ext 12' }), ownerMap, { complete: true });
    expect(remote.fields.phone).toBe('+14155559999');
    expect(remote.problems).toEqual([{ field: 'phone', code: 'phone_extension_unsupported', value: '+1 415 555 9999 ext 12' }]);
    expect(fromHighLevel(parse({ id: 'c1', phone: '(415) 555-9999 x7', country: 'US' }), ownerMap).problems).toEqual([
      { field: 'phone', code: 'phone_extension_unsupported', value: '(415) 555-9999 x7' },
    ]);
    expect(fromHighLevel(parse({ id: 'c1', phone: '+1 415 555 9999' }), ownerMap).problems).toEqual([]);
  });

  it('keeps the ledger’s number for a phone HighLevel holds unchanged without +prefix, whatever the contact’s country now', () => {
    const read = (doc: Record<string, unknown>) => fromHighLevel(parse({ id: 'c1', ...doc }), ownerMap, { complete: true });
    const ledger = { ...emptyContact(), phone: '+14155550123', country: 'US' };
    // QA: "(415) 555-0123", read as +14155550123 with US, is the same number after the country
    // alone changes, not +494155550123 or +444155550123.
    for (const country of ['DE', 'GB', 'Germany']) {
      const remote = read({ phone: '(415) 555-0123', country });
      expect(remote.phoneText).toBe('(415) 555-0123');
      expect(remote.fields.phone).not.toBe('+14155550123');
      expect(keepLedgerPhone(remote, ledger).fields).toMatchObject({ phone: '+14155550123', country: countryOf(country) });
    }
    // Other digits are a change, read in the contact's country.
    expect(keepLedgerPhone(read({ phone: '030 12345678', country: 'DE' }), ledger).fields.phone).toBe('+493012345678');
    expect(keepLedgerPhone(read({ phone: '(415) 555-0199', country: 'DE' }), ledger).fields.phone).toBe('+494155550199');
    // A phone with +prefix means one number in any country: read as it is.
    const plus = read({ phone: '+49 415 5550123', country: 'DE' });
    expect(plus.phoneText).toBeUndefined();
    expect(keepLedgerPhone(plus, ledger).fields.phone).toBe('+494155550123');
    // No phone in the snapshot, no ledger, or a ledger phone kept as typed: nothing to keep.
    const thin = fromHighLevel(parse({ id: 'c1', country: 'DE' }), ownerMap);
    expect(keepLedgerPhone(thin, ledger)).toBe(thin);
    const remote = read({ phone: '(415) 555-0123', country: 'DE' });
    expect(keepLedgerPhone(remote, null)).toBe(remote);
    expect(keepLedgerPhone(remote, { phone: 'call me' }).fields.phone).toBe('+494155550123');
    // Unreadable in the contact's country now (too long for a French number), it is still the
    // ledger's number, and not unrecognised.
    const unreadable = read({ phone: '(415) 555-0123', country: 'FR' });
    expect(unreadable.problems.map((p) => p.code)).toEqual(['phone_unrecognised']);
    const kept = keepLedgerPhone(unreadable, ledger);
    expect(kept.fields).toMatchObject({ phone: '+14155550123', country: 'FR' });
    expect(kept.problems).toEqual([]);
  });

  it('reads a country HighLevel holds by its English name (a CSV import) as its code, and the phone in it', () => {
    expect(fromHighLevel(parse({ id: 'c1', country: 'United Kingdom', phone: '07911 123456' }), ownerMap, { defaultCountry: 'US' }).fields).toEqual({ country: 'GB', phone: '+447911123456' });
    expect(fromHighLevel(parse({ id: 'c1', country: '  germany ' }), ownerMap).fields).toEqual({ country: 'DE' });
    expect(fromHighLevel(parse({ id: 'c1', country: 'USA' }), ownerMap).fields).toEqual({ country: 'US' });
    // "UK" is not ISO's code for it; other names in common use, spelled with or without accents.
    expect(fromHighLevel(parse({ id: 'c1', country: 'UK', phone: '07700 962098' }), ownerMap).fields).toEqual({ country: 'GB', phone: '+447700962098' });
    for (const [name, code] of [['Czech Republic', 'CZ'], ['Turkey', 'TR'], ['The Netherlands', 'NL'], ['Viet Nam', 'VN'], ['Korea, Republic of', 'KR'], ["Cote d'Ivoire", 'CI'], ['Côte d’Ivoire', 'CI']]) {
      expect(fromHighLevel(parse({ id: 'c1', country: name }), ownerMap).fields, name).toEqual({ country: code });
    }
    // Two letters that name no country are unreadable, not stored.
    for (const code of ['EU', 'XX', 'zz']) expect('country' in fromHighLevel(parse({ id: 'c1', country: code }), ownerMap).fields, code).toBe(false);
    // Not countries: the runtime's names of regions and groupings.
    expect('country' in fromHighLevel(parse({ id: 'c1', country: 'European Union' }), ownerMap).fields).toBe(false);
    expect('country' in fromHighLevel(parse({ id: 'c1', country: 'Unknown Region' }), ownerMap).fields).toBe(false);
  });
});

describe('wire schemas', () => {
  it('tolerate unknown keys and refuse wrong types for fields we use', () => {
    expect(highLevelContactSchema.parse({ id: 'c1', followers: [], createdBy: { source: 'WEB_USER' } })).toMatchObject({ followers: [] });
    expect(highLevelContactSchema.safeParse({ id: 'c1', tags: 'vip' }).success).toBe(false);
    expect(highLevelContactSchema.safeParse({ id: 'c1', dnd: 'yes' }).success).toBe(false);
    expect(highLevelContactSchema.safeParse({ firstName: 'Ada' }).success).toBe(false);
    expect(highLevelContactEventSchema.safeParse({ type: 'ContactCreate', id: 'c1' }).success).toBe(false);
    expect(highLevelContactEventSchema.safeParse({ type: 'NoteCreate', id: 'c1', locationId: 'l' }).success).toBe(false);
    const page = searchContactsResponseSchema.parse({ contacts: [{ id: 'c1', searchAfter: [1, 'c1'] }], total: 1, traceId: 't' });
    expect(page.contacts[0]?.searchAfter).toEqual([1, 'c1']);
  });
});

describe('toHighLevelCreate / toHighLevelUpdate', () => {
  it('leaves an unpaired owner out and reports it, rather than clearing HighLevel’s', () => {
    const created = toHighLevelCreate({ ...emptyContact(), firstName: 'Ada', ownerUserId: 'tuX' }, 'loc1', userMap);
    expect(created).toEqual({ body: { locationId: 'loc1', firstName: 'Ada' }, unmatchedOwner: 'tuX' });
    const updated = toHighLevelUpdate({ ownerUserId: 'tuX', city: null }, userMap);
    expect(updated).toEqual({ body: { city: null }, tags: { add: [], remove: [] }, unmatchedOwner: 'tuX' });
    expect(toHighLevelUpdate({ ownerUserId: null }, userMap).body).toEqual({ assignedTo: null });
  });

  it('writes custom fields as { id, field_value }, a cleared one as an empty string', () => {
    const { body } = toHighLevelUpdate({ customFields: { a: ['x', 'y'], b: null, c: 4 } }, userMap);
    expect(body.customFields).toEqual([
      { id: 'a', field_value: ['x', 'y'] },
      { id: 'b', field_value: '' },
      { id: 'c', field_value: 4 },
    ]);
  });

  it('never asks to add and remove the same tag', () => {
    expect(toHighLevelUpdate({}, userMap, { add: ['A', 'b'], remove: ['a', 'c'] }).tags).toEqual({ add: ['a', 'b'], remove: ['c'] });
  });
});
