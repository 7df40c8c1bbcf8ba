// The three-way merge, link fill and echo rule. Properties run a model: HighLevel's true record,
// a snapshot of it (complete, or thin like a webhook), Tandem's record and the ledger; a merge's
// result is applied to both sides the way the sync loop would apply it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SCALAR_FIELDS, SYNC_FIELDS, applyPatch, applyTags, customValueEquals, emptyContact, fieldEquals, sameSet,
  type ContactFields, type CustomFieldValue, type FieldName,
} from '../../server/sync/contact-model.ts';
import { isEcho, isNoop, linkFill, mergeContact, mergeFill, pendingLocal, type MergeResult, type UpdateDirection } from '../../server/sync/merge.ts';

// ---- model ---------------------------------------------------------------------------------------

const TAGS = ['a', 'b', 'c', 'd', 'e'];
const CUSTOM_KEYS = ['k1', 'k2', 'k3'];

/** Tiny domains, so that both sides often pick the same or each other's values. */
const scalarValues: Record<(typeof SCALAR_FIELDS)[number], readonly unknown[]> = {
  firstName: [null, 'Ada', 'Grace'],
  lastName: [null, 'L'],
  email: [null, 'ada@x.co', 'Ada@X.co', 'grace@x.co'],
  phone: [null, '+14155552671', '+491511234567'],
  companyName: [null, 'Acme'],
  address1: [null, '1 Main St'],
  city: [null, 'Paris', 'Oslo'],
  state: [null, 'CA'],
  postalCode: [null, '75001'],
  country: [null, 'FR', 'NO'],
  website: [null, 'https://x.co'],
  timezone: [null, 'Europe/Paris'],
  dateOfBirth: [null, '1990-01-01', '2000-02-29'],
  source: [null, 'form'],
  dnd: [false, true],
  ownerUserId: [null, 'u1', 'u2'],
};
const customValue: fc.Arbitrary<CustomFieldValue> = fc.constantFrom<CustomFieldValue>('v1', 'v2', 3, ['o1'], ['o2', 'o1']);

const contactArb: fc.Arbitrary<ContactFields> = fc.record({
  ...(Object.fromEntries(SCALAR_FIELDS.map((f) => [f, fc.constantFrom(...scalarValues[f])])) as Record<(typeof SCALAR_FIELDS)[number], fc.Arbitrary<never>>),
  tags: fc.subarray(TAGS),
  customFields: fc.dictionary(fc.constantFrom(...CUSTOM_KEYS), customValue),
});

/** A record derived from `base`: each field kept (likely) or replaced. */
function editOf(base: ContactFields): fc.Arbitrary<ContactFields> {
  const keep = <T>(value: T, other: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constant(value), weight: 3 }, { arbitrary: other, weight: 2 });
  const custom = Object.fromEntries(
    CUSTOM_KEYS.map((k) => [k, keep<CustomFieldValue | null>(base.customFields[k] ?? null, fc.option(customValue, { nil: null }))]),
  );
  return fc
    .record({
      ...(Object.fromEntries(SCALAR_FIELDS.map((f) => [f, keep(base[f], fc.constantFrom(...scalarValues[f]))])) as Record<(typeof SCALAR_FIELDS)[number], fc.Arbitrary<never>>),
      tags: keep(base.tags, fc.subarray(TAGS)),
      customFields: fc.record(custom),
    })
    .map((c) => ({
      ...c,
      customFields: Object.fromEntries(Object.entries(c.customFields).filter(([, v]) => v !== null)) as Record<string, CustomFieldValue>,
    }));
}

/** Which fields a snapshot carries: all (a GET) or some (a webhook). */
const carriedArb = fc.oneof(fc.constant([...SYNC_FIELDS] as FieldName[]), fc.subarray([...SYNC_FIELDS] as FieldName[]));

function snapshot(record: ContactFields, carried: readonly FieldName[]): Partial<ContactFields> {
  return Object.fromEntries(carried.map((f) => [f, record[f]])) as Partial<ContactFields>;
}

interface Scenario {
  base: ContactFields;
  local: ContactFields;
  /** HighLevel's true record. */
  hl: ContactFields;
  carried: FieldName[];
  direction: UpdateDirection;
  localChangedAt: number;
  remoteChangedAt: number;
}

const scenarioArb: fc.Arbitrary<Scenario> = contactArb.chain((base) =>
  fc.record({
    base: fc.constant(base),
    local: editOf(base),
    hl: editOf(base),
    carried: carriedArb,
    direction: fc.constantFrom<UpdateDirection>('bidirectional', 'inbound'),
    localChangedAt: fc.integer({ min: 0, max: 3 }),
    remoteChangedAt: fc.integer({ min: 0, max: 3 }),
  }),
);

function merge(s: Scenario, over: Partial<Scenario> = {}): MergeResult {
  const x = { ...s, ...over };
  return mergeContact({
    base: x.base,
    local: x.local,
    remote: snapshot(x.hl, x.carried),
    localChangedAt: x.localChangedAt,
    remoteChangedAt: x.remoteChangedAt,
    updateDirection: x.direction,
  });
}

/** What the sync loop does with a result: patch and tag calls on each side. */
function apply(s: Scenario, r: MergeResult): { local: ContactFields; hl: ContactFields } {
  const local = applyPatch(s.local, r.toLocal);
  local.tags = applyTags(local.tags, r.tags.addLocal, r.tags.removeLocal);
  const hl = applyPatch(s.hl, r.toRemote);
  hl.tags = applyTags(hl.tags, r.tags.addRemote, r.tags.removeRemote);
  return { local, hl };
}

/** Every field, custom fields one key at a time, as [name, value-of(contact), equals]. */
type Key = { name: string; get: (c: ContactFields) => unknown; eq: (a: unknown, b: unknown) => boolean; field: FieldName };
const KEYS: Key[] = [
  ...SCALAR_FIELDS.map((f) => ({ name: f, field: f, get: (c: ContactFields) => c[f], eq: (a: unknown, b: unknown) => fieldEquals(f, a as never, b as never) })),
  ...CUSTOM_KEYS.map((k) => ({
    name: `customFields.${k}`,
    field: 'customFields' as const,
    get: (c: ContactFields) => c.customFields[k] ?? null,
    eq: (a: unknown, b: unknown) => customValueEquals(a as CustomFieldValue | null, b as CustomFieldValue | null),
  })),
];

const RUNS = { numRuns: 500 };

// ---- properties ----------------------------------------------------------------------------------

describe('mergeContact properties', () => {
  it('(a) is idempotent: merging again against the new base has nothing to do', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const r1 = merge(s);
        const after = apply(s, r1);
        const r2 = merge(s, { base: r1.newBase, local: after.local, hl: after.hl });
        expect(isNoop(r2)).toBe(true);
        expect(r2.conflicts).toEqual([]);
        for (const k of KEYS) expect(k.eq(k.get(r2.newBase), k.get(r1.newBase))).toBe(true);
        expect(sameSet(r2.newBase.tags, r1.newBase.tags)).toBe(true);
      }),
      RUNS,
    );
  });

  it('(b) never loses a change made on one side only', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const r = merge(s);
        const after = apply(s, r);
        for (const k of KEYS) {
          const localChanged = !k.eq(k.get(s.local), k.get(s.base));
          const hlChanged = !k.eq(k.get(s.hl), k.get(s.base));
          const seen = s.carried.includes(k.field);
          if (localChanged && !(hlChanged && seen)) {
            expect(k.eq(k.get(after.local), k.get(s.local))).toBe(true);
            if (s.direction === 'bidirectional') expect(k.eq(k.get(after.hl), k.get(s.local))).toBe(true);
            else {
              // Inbound: not sent, and still pending against the new base.
              expect(k.eq(k.get(after.hl), k.get(s.hl))).toBe(true);
              if (!hlChanged) expect(k.eq(k.get(after.local), k.get(r.newBase))).toBe(false);
            }
          }
          if (hlChanged && !localChanged) {
            expect(k.eq(k.get(after.hl), k.get(s.hl))).toBe(true);
            if (seen) expect(k.eq(k.get(after.local), k.get(s.hl))).toBe(true);
            // A field the snapshot did not carry is unknown: Tandem's value is left alone.
            else expect(k.get(after.local)).toEqual(k.get(s.local));
          }
        }
      }),
      RUNS,
    );
  });

  it('(c) leaves both sides equal, and equal to the new base, when Bi-directional with a complete read', () => {
    fc.assert(
      fc.property(scenarioArb, (s0) => {
        const s = { ...s0, direction: 'bidirectional' as const, carried: [...SYNC_FIELDS] as FieldName[] };
        const r = merge(s);
        const after = apply(s, r);
        for (const k of KEYS) {
          expect(k.eq(k.get(after.local), k.get(after.hl))).toBe(true);
          expect(k.eq(k.get(after.local), k.get(r.newBase))).toBe(true);
        }
        expect(sameSet(after.local.tags, after.hl.tags)).toBe(true);
        expect(sameSet(after.local.tags, r.newBase.tags)).toBe(true);
        // Conflicts go to the more recent side, ties to HighLevel.
        for (const c of r.conflicts) expect(c.winner).toBe(s.localChangedAt > s.remoteChangedAt ? 'local' : 'remote');
      }),
      RUNS,
    );
  });

  it('(d) tags: an add on one side and a remove on the other both survive', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const r = merge(s);
        const after = apply(s, r);
        const tagsSeen = s.carried.includes('tags');
        for (const t of TAGS) {
          const inBase = s.base.tags.includes(t);
          const addedLocal = !inBase && s.local.tags.includes(t);
          const removedLocal = inBase && !s.local.tags.includes(t);
          const addedHl = !inBase && s.hl.tags.includes(t);
          const removedHl = inBase && !s.hl.tags.includes(t);
          if (addedLocal) {
            expect(after.local.tags).toContain(t);
            if (s.direction === 'bidirectional') expect(after.hl.tags).toContain(t);
          }
          if (removedLocal) {
            expect(after.local.tags).not.toContain(t);
            if (s.direction === 'bidirectional') expect(after.hl.tags).not.toContain(t);
          }
          if (addedHl) {
            expect(after.hl.tags).toContain(t);
            if (tagsSeen) expect(after.local.tags).toContain(t);
          }
          if (removedHl) {
            expect(after.hl.tags).not.toContain(t);
            if (tagsSeen) expect(after.local.tags).not.toContain(t);
          }
        }
      }),
      RUNS,
    );
  });

  it('(e) an echo of what was written changes nothing', () => {
    fc.assert(
      fc.property(scenarioArb, carriedArb, fc.constantFrom(...SCALAR_FIELDS), (s0, echoCarried, touched) => {
        const s = { ...s0, direction: 'bidirectional' as const, carried: [...SYNC_FIELDS] as FieldName[] };
        const r = merge(s);
        const after = apply(s, r);
        // HighLevel sends back (all or part of) the record as our write left it.
        const echo = snapshot(after.hl, echoCarried);
        expect(isEcho(echo, r.newBase)).toBe(true);
        const again = mergeContact({ base: r.newBase, local: after.local, remote: echo, localChangedAt: 9, remoteChangedAt: 9, updateDirection: 'bidirectional' });
        expect(isNoop(again)).toBe(true);
        // Someone else's change to a field the event carries is not an echo.
        const other = scalarValues[touched].find((v) => !fieldEquals(touched, v as never, after.hl[touched] as never));
        const changed = { ...echo, [touched]: other };
        expect(isEcho(changed, r.newBase)).toBe(false);
      }),
      RUNS,
    );
  });
});

// ---- rules by example ----------------------------------------------------------------------------

function contact(over: Partial<ContactFields>): ContactFields {
  return { ...emptyContact(), ...over };
}

describe('mergeContact rules', () => {
  const base = contact({ firstName: 'Ada', city: 'Paris', tags: ['a'] });

  it('both sides changed: Bi-directional picks the more recent, ties and Inbound pick HighLevel', () => {
    const local = contact({ ...base, city: 'Oslo' });
    const remote = contact({ ...base, city: 'Rome' });
    const run = (updateDirection: UpdateDirection, localChangedAt: number, remoteChangedAt: number) =>
      mergeContact({ base, local, remote, localChangedAt, remoteChangedAt, updateDirection });
    expect(run('bidirectional', 2, 1)).toMatchObject({ toRemote: { city: 'Oslo' }, toLocal: {}, conflicts: [{ field: 'city', winner: 'local' }] });
    expect(run('bidirectional', 1, 2)).toMatchObject({ toLocal: { city: 'Rome' }, toRemote: {}, conflicts: [{ field: 'city', winner: 'remote' }] });
    expect(run('bidirectional', 1, 1)).toMatchObject({ toLocal: { city: 'Rome' }, conflicts: [{ field: 'city', winner: 'remote' }] });
    expect(run('inbound', 5, 1)).toMatchObject({ toLocal: { city: 'Rome' }, toRemote: {}, conflicts: [{ field: 'city', winner: 'remote' }] });
  });

  it('Inbound keeps a Tandem-only change pending, and Bi-directional later sends it', () => {
    const local = contact({ ...base, firstName: 'Ada K.' });
    const inbound = mergeContact({ base, local, remote: base, localChangedAt: 2, remoteChangedAt: 1, updateDirection: 'inbound' });
    expect(isNoop(inbound)).toBe(true);
    expect(inbound.newBase.firstName).toBe('Ada');
    expect(pendingLocal(inbound.newBase, local)).toEqual(['firstName']);
    const later = mergeContact({ base: inbound.newBase, local, remote: base, localChangedAt: 2, remoteChangedAt: 1, updateDirection: 'bidirectional' });
    expect(later.toRemote).toEqual({ firstName: 'Ada K.' });
    expect(pendingLocal(later.newBase, local)).toEqual([]);
  });

  it('reads a field missing from a thin snapshot as unknown, never as cleared', () => {
    const r = mergeContact({ base, local: base, remote: { firstName: 'Ada', tags: ['a', 'b'] }, localChangedAt: 0, remoteChangedAt: 1, updateDirection: 'bidirectional' });
    expect(r.toLocal).toEqual({});
    expect(r.tags).toEqual({ addLocal: ['b'], removeLocal: [], addRemote: [], removeRemote: [] });
    expect(r.newBase).toEqual({ ...base, tags: ['a', 'b'] });
    // An explicit null is a clear.
    const cleared = mergeContact({ base, local: base, remote: { city: null }, localChangedAt: 0, remoteChangedAt: 1, updateDirection: 'inbound' });
    expect(cleared.toLocal).toEqual({ city: null });
  });

  it('merges custom fields key by key, clearing with null', () => {
    const b = contact({ customFields: { k1: 'x', k2: 'y' } });
    const r = mergeContact({
      base: b,
      local: contact({ customFields: { k1: 'x2', k2: 'y' } }),
      remote: contact({ customFields: { k1: 'x' } }),
      localChangedAt: 1,
      remoteChangedAt: 2,
      updateDirection: 'bidirectional',
    });
    expect(r.toRemote).toEqual({ customFields: { k1: 'x2' } });
    expect(r.toLocal).toEqual({ customFields: { k2: null } });
    expect(r.newBase.customFields).toEqual({ k1: 'x2' });
  });

  it('Bi-directional: each field both sides changed goes to the more recent change of that field', () => {
    const base = contact({ firstName: 'Ada', city: 'Paris', customFields: { k: 'base' } });
    const local = contact({ firstName: 'Tandem', city: 'Lyon', source: 'dialer', customFields: { k: 'tandem' } });
    const remote = contact({ firstName: 'HighLevel', city: 'Nice', customFields: { k: 'highlevel' } });
    // Tandem renamed her at 10 and changed the custom field at 30; HighLevel changed the contact at 20;
    // the city has no time of its own, so the contact's (40, Tandem's latest edit) counts.
    const r = mergeContact({
      base, local, remote, localChangedAt: 40, remoteChangedAt: 20, updateDirection: 'bidirectional',
      localFieldChangedAt: { firstName: 10, 'customFields.k': 30, source: 40 },
    });
    expect(r.toLocal).toEqual({ firstName: 'HighLevel' });
    expect(r.toRemote).toEqual({ city: 'Lyon', source: 'dialer', customFields: { k: 'tandem' } });
    expect(r.conflicts).toEqual([{ field: 'firstName', winner: 'remote' }, { field: 'city', winner: 'local' }, { field: 'customFields.k', winner: 'local' }]);
    // Inbound: HighLevel wins every conflict, whatever the times.
    const inbound = mergeContact({ base, local, remote, localChangedAt: 40, remoteChangedAt: 20, updateDirection: 'inbound', localFieldChangedAt: { firstName: 50 } });
    expect(inbound.toRemote).toEqual({});
    expect(inbound.toLocal).toEqual({ firstName: 'HighLevel', city: 'Nice', customFields: { k: 'highlevel' } });
  });

  it('counts a change of email case as a change (HighLevel keeps the case it is given)', () => {
    const b = contact({ email: 'ada@x.co' });
    const r = mergeContact({ base: b, local: b, remote: contact({ email: 'ADA@x.co' }), localChangedAt: 0, remoteChangedAt: 1, updateDirection: 'bidirectional' });
    expect(r.toLocal).toEqual({ email: 'ADA@x.co' });
    expect(isEcho({ email: 'Ada@X.CO' }, b)).toBe(false);
    expect(isEcho({ email: 'ada@x.co' }, b)).toBe(true);
  });
});

describe('linkFill', () => {
  const hl = contact({ firstName: 'Ada', email: 'ada@x.co', city: null, tags: ['hl'], customFields: { k1: 'keep' } });
  const local = contact({ firstName: 'Adeline', email: 'ADA@x.co', city: 'Paris', phone: '+14155552671', dnd: true, tags: ['t'], customFields: { k1: 'mine', k2: 'new' } });

  it("fills only HighLevel's empty fields and takes HighLevel's values elsewhere", () => {
    const r = linkFill(local, hl);
    expect(r.toRemote).toEqual({ city: 'Paris', phone: '+14155552671', dnd: true, customFields: { k2: 'new' } });
    // The email matched (case aside), and HighLevel's spelling of it is the one both keep.
    expect(r.toLocal).toEqual({ firstName: 'Ada', email: 'ada@x.co', customFields: { k1: 'keep' } });
    expect(r.tags).toEqual({ addLocal: ['hl'], removeLocal: [], addRemote: ['t'], removeRemote: [] });
    expect(r.conflicts).toEqual([{ field: 'firstName', winner: 'remote' }, { field: 'email', winner: 'remote' }, { field: 'customFields.k1', winner: 'remote' }]);
    const after = apply({ base: r.newBase, local, hl, carried: [...SYNC_FIELDS], direction: 'bidirectional', localChangedAt: 0, remoteChangedAt: 0 }, r);
    for (const k of KEYS) expect(k.eq(k.get(after.local), k.get(after.hl))).toBe(true);
    expect(isNoop(mergeContact({ base: r.newBase, local: after.local, remote: after.hl, localChangedAt: 0, remoteChangedAt: 0, updateDirection: 'bidirectional' }))).toBe(true);
  });

  it('sends nothing when creation is Inbound, leaving the extras pending', () => {
    const r = linkFill(local, hl, { outbound: false });
    expect(r.toRemote).toEqual({});
    expect(r.tags.addRemote).toEqual([]);
    expect(r.newBase.city).toBeNull();
    expect(pendingLocal(r.newBase, applyPatch(local, r.toLocal))).toEqual(['phone', 'city', 'dnd', 'tags', 'customFields.k2']);
  });

  it('never turns DND off', () => {
    const r = linkFill(contact({ dnd: false }), contact({ dnd: true }));
    expect(r.toLocal).toEqual({ dnd: true });
    expect(r.toRemote).toEqual({});
  });
});

describe('mergeFill (a link the inbound side made, filled later while updates are Inbound)', () => {
  // HighLevel's values when the link was made (the ledger), then what each side did since.
  const base = contact({ firstName: 'T', email: 'tara@x.co', website: 'https://a.co', state: 'OR', tags: ['hl'], customFields: { k1: 'keep' } });

  it("fills HighLevel's empty fields, keeps Tandem's later edits of its other fields pending, and takes HighLevel's changes", () => {
    const local = contact({
      ...base,
      firstName: 'Tandra', // edited in Tandem after the link; HighLevel holds a value: held
      lastName: 'Edited', // edited in Tandem after the link; empty in HighLevel: filled
      city: 'Bend', // Tandem's since before the link; empty in HighLevel: filled
      dnd: true, // DND off counts as empty
      website: 'https://tandem.co', // both changed: HighLevel's value
      tags: ['hl', 't'],
      customFields: { k1: 'keep', k2: 'new' },
    });
    const remote = contact({ ...base, website: 'https://hl.co', state: 'WA', tags: ['hl', 'hl2'] });
    const r = mergeFill({ base, local, remote });
    expect(r.toRemote).toEqual({ lastName: 'Edited', city: 'Bend', dnd: true, customFields: { k2: 'new' } });
    expect(r.toLocal).toEqual({ website: 'https://hl.co', state: 'WA' });
    expect(r.tags).toEqual({ addLocal: ['hl2'], removeLocal: [], addRemote: ['t'], removeRemote: [] });
    expect(r.conflicts).toEqual([{ field: 'website', winner: 'remote' }]);
    const after = apply({ base, local, hl: remote, carried: [...SYNC_FIELDS], direction: 'inbound', localChangedAt: 0, remoteChangedAt: 0 }, r);
    // Only Tandem's later edit of a field HighLevel holds is left, pending against the new ledger.
    expect(after.local.firstName).toBe('Tandra');
    expect(after.hl.firstName).toBe('T');
    expect(pendingLocal(r.newBase, after.local)).toEqual(['firstName']);
    // The ledger is what HighLevel now holds.
    for (const k of KEYS) expect(k.eq(k.get(r.newBase), k.get(after.hl))).toBe(true);
    expect(sameSet(r.newBase.tags, after.hl.tags)).toBe(true);
    // Bi-directional later sends exactly that edit.
    const later = mergeContact({ base: r.newBase, local: after.local, remote: after.hl, localChangedAt: 2, remoteChangedAt: 1, updateDirection: 'bidirectional' });
    expect(later.toRemote).toEqual({ firstName: 'Tandra' });
    expect(later.toLocal).toEqual({});
  });

  it('does not fill a field HighLevel cleared after the link: that is its change, and Inbound', () => {
    const ledger = contact({ ...base, city: 'Salem' });
    const local = contact({ ...base, city: 'Salem' });
    const remote = contact({ ...base, city: null });
    const r = mergeFill({ base: ledger, local, remote });
    expect(r.toRemote).toEqual({});
    expect(r.toLocal).toEqual({ city: null });
  });

  it('puts back no tag either side removed after the link, where linkFill\'s union would', () => {
    const ledger = contact({ ...base, tags: ['both', 'hl-drops', 'tandem-drops'] });
    const local = contact({ ...base, tags: ['both', 'hl-drops', 'mine'] });
    const remote = contact({ ...base, tags: ['both', 'tandem-drops'] });
    expect(linkFill(local, remote).tags).toMatchObject({ addLocal: ['tandem-drops'], addRemote: ['hl-drops', 'mine'] });
    const r = mergeFill({ base: ledger, local, remote });
    expect(r.tags).toEqual({ addLocal: [], removeLocal: ['hl-drops'], addRemote: ['mine'], removeRemote: [] });
    // Tandem's removal is held, as any Tandem edit under Inbound.
    expect(pendingLocal(r.newBase, { ...local, tags: ['both', 'mine'] })).toEqual(['tags']);
  });

  it('where linkFill would give HighLevel every field it holds, mergeFill keeps a Tandem edit made after the link', () => {
    const local = contact({ ...base, firstName: 'Tandra' });
    expect(linkFill(local, base).toLocal).toEqual({ firstName: 'T' });
    const r = mergeFill({ base, local, remote: base });
    expect(isNoop(r)).toBe(true);
    expect(pendingLocal(r.newBase, local)).toEqual(['firstName']);
  });

  it('property: per field, the fill, else the Inbound merge; the ledger ends as HighLevel; tags merge as Inbound plus the fill; a second run has nothing to do', () => {
    const empty = (k: Key, v: unknown) => (k.name === 'dnd' ? v !== true : v === null || v === undefined || v === '');
    fc.assert(
      fc.property(scenarioArb, (s0) => {
        const s = { ...s0, direction: 'inbound' as const, carried: [...SYNC_FIELDS] as FieldName[] };
        const r = mergeFill({ base: s.base, local: s.local, remote: s.hl });
        const after = apply(s, r);
        for (const k of KEYS) {
          const [b, l, h] = [k.get(s.base), k.get(s.local), k.get(s.hl)];
          if (empty(k, h) && empty(k, b) && !empty(k, l)) {
            // The fill: Tandem's value, whenever it was set.
            expect(k.eq(k.get(after.hl), l)).toBe(true);
            expect(k.eq(k.get(after.local), l)).toBe(true);
          } else if (!k.eq(h, b)) {
            // HighLevel changed it (alone, or both did): HighLevel's value, on both sides.
            expect(k.eq(k.get(after.local), h)).toBe(true);
            expect(k.eq(k.get(after.hl), h)).toBe(true);
          } else {
            // HighLevel did not: nothing is sent, Tandem keeps its value (pending when it differs).
            expect(k.eq(k.get(after.hl), h)).toBe(true);
            expect(k.eq(k.get(after.local), l)).toBe(true);
          }
          expect(k.eq(k.get(r.newBase), k.get(after.hl))).toBe(true);
        }
        // Tags: HighLevel's changes since the ledger come into Tandem, Tandem's removals stay held,
        // and Tandem's tags HighLevel neither has nor had go to HighLevel.
        const [bt, lt, ht] = [new Set(s.base.tags), s.local.tags, s.hl.tags];
        const hlAdded = ht.filter((t) => !bt.has(t));
        const hlRemoved = new Set([...bt].filter((t) => !ht.includes(t)));
        expect(sameSet(after.local.tags, [...new Set([...lt.filter((t) => !hlRemoved.has(t)), ...hlAdded])])).toBe(true);
        expect(sameSet(after.hl.tags, [...new Set([...ht, ...lt.filter((t) => !bt.has(t) && !ht.includes(t))])])).toBe(true);
        expect(sameSet(r.newBase.tags, after.hl.tags)).toBe(true);
        const again = mergeFill({ base: r.newBase, local: after.local, remote: after.hl });
        expect(isNoop(again)).toBe(true);
        expect(again.conflicts).toEqual([]);
      }),
      RUNS,
    );
  });
});
