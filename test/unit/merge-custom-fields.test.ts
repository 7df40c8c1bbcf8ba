// The merge's handling of custom fields HighLevel does not define (server/sync/merge.ts `sendable`):
// never sent by a merge, a link's fill or a later fill; the ledger keeps what HighLevel holds;
// HighLevel's own changes still come in; pendingLocal tells them apart from what a push can send.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { customValueEquals, emptyContact, normalizeCustomValue, type ContactFields, type CustomFieldValue } from '../../server/sync/contact-model.ts';
import { linkFill, mergeContact, mergeFill, pendingLocal, type UpdateDirection } from '../../server/sync/merge.ts';

const DEFINED = 'cfScore0000000000001';
const GONE = 'cfGone00000000000001';
const sendable = (id: string) => id !== GONE;

const contact = (draft: Partial<ContactFields> = {}): ContactFields => ({ ...emptyContact(), ...draft });

function merge(base: ContactFields, local: ContactFields, remote: Partial<ContactFields>, direction: UpdateDirection = 'bidirectional', times = { local: 2, remote: 1 }) {
  return mergeContact({ base, local, remote, localChangedAt: times.local, remoteChangedAt: times.remote, updateDirection: direction, sendable });
}

describe('a custom field HighLevel does not define', () => {
  it('is not sent by a merge; the other changes are, and the ledger keeps what HighLevel holds', () => {
    const base = contact({ firstName: 'Ana', customFields: { [DEFINED]: 1 } });
    const local = contact({ firstName: 'Ana Maria', customFields: { [DEFINED]: 2, [GONE]: 'old' } });
    const r = merge(base, local, base);
    expect(r.toRemote).toEqual({ firstName: 'Ana Maria', customFields: { [DEFINED]: 2 } });
    expect(r.toLocal).toEqual({});
    expect(r.newBase.customFields).toEqual({ [DEFINED]: 2 });
    expect(r.conflicts).toEqual([]);
    // Still Tandem's own change, but none a push can send.
    expect(pendingLocal(r.newBase, local)).toEqual([`customFields.${GONE}`]);
    expect(pendingLocal(r.newBase, local, sendable)).toEqual([]);
    // Without `sendable`, as before: sent.
    expect(mergeContact({ base, local, remote: base, localChangedAt: 2, remoteChangedAt: 1, updateDirection: 'bidirectional' }).toRemote.customFields).toEqual({ [DEFINED]: 2, [GONE]: 'old' });
  });

  it('is not cleared in HighLevel either, when Tandem clears a value the ledger has', () => {
    const base = contact({ customFields: { [GONE]: 'old' } });
    const local = contact();
    const r = merge(base, local, {});
    expect(r.toRemote).toEqual({});
    expect(r.newBase.customFields).toEqual({ [GONE]: 'old' });
    // A complete read without it: HighLevel has none either, and the two agree.
    const read = merge(base, local, contact());
    expect(read.toRemote).toEqual({});
    expect(read.newBase.customFields).toEqual({});
    expect(pendingLocal(read.newBase, local)).toEqual([]);
  });

  it('takes HighLevel’s change as Inbound does, even where Tandem’s is more recent', () => {
    const base = contact({ customFields: { [GONE]: 'a' } });
    const onlyHighLevel = merge(base, base, contact({ customFields: { [GONE]: 'b' } }));
    expect(onlyHighLevel.toLocal).toEqual({ customFields: { [GONE]: 'b' } });
    expect(onlyHighLevel.newBase.customFields).toEqual({ [GONE]: 'b' });
    const both = merge(base, contact({ customFields: { [GONE]: 'c' } }), contact({ customFields: { [GONE]: 'b' } }), 'bidirectional', { local: 5, remote: 1 });
    expect(both.toRemote).toEqual({});
    expect(both.toLocal).toEqual({ customFields: { [GONE]: 'b' } });
    expect(both.conflicts).toEqual([{ field: `customFields.${GONE}`, winner: 'remote' }]);
  });

  it('is not filled into a HighLevel contact a link finds', () => {
    const local = contact({ email: 'ana@example.com', customFields: { [DEFINED]: 7, [GONE]: 'old' } });
    const remote = contact({ email: 'ana@example.com' });
    const r = linkFill(local, remote, { outbound: true, sendable });
    expect(r.toRemote).toEqual({ customFields: { [DEFINED]: 7 } });
    expect(r.toLocal).toEqual({});
    expect(r.newBase.customFields).toEqual({ [DEFINED]: 7 });
    expect(pendingLocal(r.newBase, local, sendable)).toEqual([]);
  });

  it('is not filled by a later fill of a link the inbound side made', () => {
    const base = contact({ email: 'ana@example.com' });
    const local = contact({ email: 'ana@example.com', customFields: { [DEFINED]: 7, [GONE]: 'old' } });
    const r = mergeFill({ base, local, remote: base, sendable });
    expect(r.toRemote).toEqual({ customFields: { [DEFINED]: 7 } });
    expect(r.newBase.customFields).toEqual({ [DEFINED]: 7 });
    expect(pendingLocal(r.newBase, local, sendable)).toEqual([]);
  });

  it('is never sent, and the ledger always says what HighLevel holds of it (any sides, any direction)', () => {
    const value = fc.constantFrom<CustomFieldValue | undefined>(undefined, 'a', 'b', 7, ['o1']);
    const side = fc.record({ gone: value, defined: value });
    const fields = (s: { gone: CustomFieldValue | undefined; defined: CustomFieldValue | undefined }) =>
      contact({ customFields: Object.fromEntries(Object.entries({ [GONE]: s.gone, [DEFINED]: s.defined }).filter(([, v]) => v !== undefined)) as Record<string, CustomFieldValue> });
    fc.assert(
      fc.property(side, side, fc.option(side, { nil: undefined }), fc.constantFrom<UpdateDirection>('bidirectional', 'inbound'), fc.nat(3), fc.nat(3), (b, l, r, direction, lt, rt) => {
        const base = fields(b);
        const remote: Partial<ContactFields> = r === undefined ? {} : fields(r);
        const out = merge(base, fields(l), remote, direction, { local: lt, remote: rt });
        expect(out.toRemote.customFields?.[GONE]).toBeUndefined();
        const held = r === undefined ? base.customFields[GONE] : remote.customFields![GONE];
        expect(customValueEquals(normalizeCustomValue(out.newBase.customFields[GONE]), normalizeCustomValue(held))).toBe(true);
        const fill = linkFill(fields(l), remote, { outbound: true, sendable });
        expect(fill.toRemote.customFields?.[GONE]).toBeUndefined();
        expect(mergeFill({ base, local: fields(l), remote, sendable }).toRemote.customFields?.[GONE]).toBeUndefined();
      }),
    );
  });
});
