// What a switch of the Sync tab's settings releases of the work an Inbound setting held back, and
// the fields a released edit changes in HighLevel, and the fingerprint of what a release sends
// (server/sync/release-preview.ts).
import { describe, expect, it } from 'vitest';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { fingerprintOf, releasedBy, releasedChanges, type Directions } from '../../server/sync/release-preview.ts';

const d = (creationDirection: Directions['creationDirection'], updateDirection: Directions['updateDirection']): Directions => ({ creationDirection, updateDirection });
const fields = (f: Partial<ContactFields>): ContactFields => ({ ...emptyContact(), ...f });

describe('releasedBy', () => {
  it('releases what the setting that turns Bi-directional held, and nothing else', () => {
    expect(releasedBy(d('inbound', 'bidirectional'), d('bidirectional', 'bidirectional'))).toEqual({ created: true, edits: false, fills: null });
    expect(releasedBy(d('bidirectional', 'inbound'), d('bidirectional', 'bidirectional'))).toEqual({ created: false, edits: true, fills: null });
    expect(releasedBy(d('inbound', 'inbound'), d('bidirectional', 'bidirectional'))).toEqual({ created: true, edits: true, fills: 'merge' });
  });

  it('releases the fills held by both settings: by Contact update as a merge, by Contact creation alone as a fill', () => {
    expect(releasedBy(d('inbound', 'inbound'), d('bidirectional', 'inbound'))).toEqual({ created: true, edits: false, fills: 'fill' });
    expect(releasedBy(d('inbound', 'inbound'), d('inbound', 'bidirectional'))).toEqual({ created: false, edits: true, fills: 'merge' });
  });

  it('releases nothing on a switch to Inbound or no switch at all', () => {
    const nothing = { created: false, edits: false, fills: null };
    for (const [from, to] of [
      [d('inbound', 'inbound'), d('inbound', 'inbound')],
      [d('bidirectional', 'bidirectional'), d('inbound', 'inbound')],
      [d('bidirectional', 'inbound'), d('bidirectional', 'inbound')],
      [d('bidirectional', 'bidirectional'), d('bidirectional', 'bidirectional')],
    ] as const) {
      expect(releasedBy(from, to)).toEqual(nothing);
    }
  });
});

describe('releasedChanges', () => {
  const base = fields({ firstName: 'Ana', city: 'Lyon', phone: null, tags: ['lead', 'old'], customFields: { score: 54, stale: 'x' } });

  it('lists each field Tandem changed, HighLevel’s value as the ledger has it → Tandem’s, custom fields and tags included', () => {
    const local = fields({ firstName: 'Ana', city: null, phone: '+15035550123', tags: ['lead', 'vip'], customFields: { score: 99 } });
    expect(releasedChanges(base, local, 'merge')).toEqual([
      { field: 'phone', from: null, to: '+15035550123' },
      { field: 'city', from: 'Lyon', to: null },
      { field: 'customFields.score', from: 54, to: 99 },
      { field: 'customFields.stale', from: 'x', to: null },
      { field: 'tags', from: ['lead', 'old'], to: ['lead', 'vip'] },
    ]);
  });

  it('a fill sends only what HighLevel holds empty: Tandem’s other edits stay held', () => {
    const local = fields({ firstName: 'Anna', city: 'Paris', phone: '+15035550123', tags: ['lead', 'old', 'vip'], customFields: { score: 99, extra: 'y', stale: 'x' } });
    expect(releasedChanges(base, local, 'fill')).toEqual([
      { field: 'phone', from: null, to: '+15035550123' },
      { field: 'customFields.extra', from: null, to: 'y' },
      { field: 'tags', from: ['lead', 'old'], to: ['lead', 'old', 'vip'] },
    ]);
  });

  it('leaves out values under custom fields HighLevel does not define, as the push does', () => {
    const local = fields({ ...base, city: 'Paris', customFields: { score: 99, stale: 'x', unknown: 'z' } });
    const listed = (id: string) => id !== 'unknown';
    expect(releasedChanges(base, local, 'merge', listed)).toEqual([
      { field: 'city', from: 'Lyon', to: 'Paris' },
      { field: 'customFields.score', from: 54, to: 99 },
    ]);
    expect(releasedChanges(base, local, 'fill', listed)).toEqual([]);
  });

  it('is empty when Tandem holds what HighLevel holds', () => {
    expect(releasedChanges(base, fields({ ...base, tags: ['old', 'lead'] }), 'merge')).toEqual([]);
  });
});

describe('fingerprintOf', () => {
  const change = (rowId: number, queuedAt = 1000, kind: 'new' | 'edit' | 'fill' = 'edit') => ({ rowId, contactId: `c${rowId}`, kind, queuedAt });
  const release = { revision: 7, from: d('bidirectional', 'inbound'), to: d('bidirectional', 'bidirectional'), changes: [change(1), change(2)] };

  it('is the same for the same release, and opaque (64 hex digits)', () => {
    expect(fingerprintOf(release)).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprintOf({ ...release, changes: [change(1), change(2)] })).toBe(fingerprintOf(release));
  });

  it('differs when anything a save would send, or the settings it starts from, differs', () => {
    const fingerprint = fingerprintOf(release);
    for (const other of [
      { ...release, changes: [change(1), change(2), change(3)] },
      { ...release, changes: [change(1)] },
      { ...release, changes: [change(1), change(2, 1001)] },
      { ...release, changes: [change(1), change(2, 1000, 'fill')] },
      { ...release, changes: [change(1), { ...change(2), contactId: 'c9' }] },
      { ...release, changes: [change(1), change(3)] },
      { ...release, revision: 8 },
      { ...release, from: d('inbound', 'inbound') },
      { ...release, to: d('inbound', 'bidirectional') },
    ]) {
      expect(fingerprintOf(other), JSON.stringify(other)).not.toBe(fingerprint);
    }
  });

  it('differs when what HighLevel will refuse differs: another refusal, another contact holding the email or phone, another field', () => {
    const refusal = { contactId: 'c1', change: 'create' as const, field: 'email' as const, holderId: 'ben' };
    const refusing = { ...release, refusals: [refusal] };
    expect(fingerprintOf(refusing)).not.toBe(fingerprintOf(release));
    expect(fingerprintOf({ ...release, refusals: [] })).toBe(fingerprintOf(release));
    for (const other of [{ ...refusal, holderId: 'cleo' }, { ...refusal, field: 'phone' as const }, { ...refusal, contactId: 'c2' }, { ...refusal, change: 'edit' as const }]) {
      expect(fingerprintOf({ ...release, refusals: [other] }), JSON.stringify(other)).not.toBe(fingerprintOf(refusing));
    }
  });

  it('differs when a refusal made before that the release frees differs: another row, queued again, another holder, another outcome', () => {
    const freed = { rowId: 9, contactId: 'c9', kind: 'new' as const, queuedAt: 900, refusedBy: 'hl-sana', holderId: 'sana', outcome: 'create' as const };
    const freeing = { ...release, freed: [freed] };
    expect(fingerprintOf(freeing)).not.toBe(fingerprintOf(release));
    expect(fingerprintOf({ ...release, freed: [] })).toBe(fingerprintOf(release));
    expect(fingerprintOf({ ...release, freed: [{ ...freed }] })).toBe(fingerprintOf(freeing));
    for (const other of [
      { ...freed, rowId: 10 },
      { ...freed, contactId: 'c10' },
      { ...freed, queuedAt: 901 },
      { ...freed, refusedBy: 'hl-pat' },
      { ...freed, kind: 'edit' as const, outcome: 'merge' as const },
      { ...freed, outcome: 'refused' as const },
      { ...freed, outcome: 'held' as const },
    ]) {
      expect(fingerprintOf({ ...release, freed: [other] }), JSON.stringify(other)).not.toBe(fingerprintOf(freeing));
    }
  });
});
