// The rule by which a HighLevel contact is another Tandem contact's, shared by the push and the
// release preview, and the email and phone keys compared as HighLevel's duplicate rule compares
// them (server/sync/held-elsewhere.ts).
import { describe, expect, it } from 'vitest';
import { emailKey, holdsElsewhere, keysOf, phoneKey } from '../../server/sync/held-elsewhere.ts';

describe('holdsElsewhere', () => {
  it('is another live Tandem contact only: not the contact itself, not an archived one (its HighLevel contact is taken over), not none', () => {
    expect(holdsElsewhere({ contactId: 'ben', archivedAt: null }, 'cleo')).toBe(true);
    expect(holdsElsewhere({ contactId: 'cleo', archivedAt: null }, 'cleo')).toBe(false);
    expect(holdsElsewhere({ contactId: 'ben', archivedAt: 1000 }, 'cleo')).toBe(false);
    expect(holdsElsewhere(undefined, 'cleo')).toBe(false);
  });
});

describe('the keys', () => {
  it('compare emails case-insensitively and trimmed, phones by their digits; empty is none', () => {
    expect(emailKey(' Ben@Example.com ')).toBe(emailKey('ben@example.com'));
    expect(emailKey('ben@example.com')).not.toBe(emailKey('bea@example.com'));
    expect(phoneKey('+1 (415) 555-0101')).toBe(phoneKey('+14155550101'));
    expect(phoneKey('+14155550101')).not.toBe(emailKey('14155550101'));
    expect([emailKey(null), emailKey('  '), phoneKey(undefined), phoneKey('ext.')]).toEqual([null, null, null, null]);
    expect(keysOf('ben@example.com', null)).toEqual([emailKey('ben@example.com')]);
    expect(keysOf(null, '+14155550101')).toEqual([phoneKey('+14155550101')]);
  });
});
