// Push contacts' decision (server/sync/operations/push-plan.ts): Tandem's values win, but nothing
// Tandem holds empty clears HighLevel, HighLevel-only tags stay, an unpaired owner is not sent; the
// write it plans, applied to HighLevel, leaves nothing more to push; and the ledger after a write.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HighLevelContact } from '../../server/highlevel/contact-mapping.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { decidePush, ledgerAfter, remoteView } from '../../server/sync/operations/push-plan.ts';

const userMap = (id: string) => (id === 'u1' ? 'h1' : id === 'u3' ? 'h3' : null);
const ownerMap = (id: string) => (id === 'h1' ? 'u1' : id === 'h3' ? 'u3' : null);

function doc(fields: Partial<ContactFields>, extra: Record<string, unknown> = {}): HighLevelContact {
  const { tags, customFields, ownerUserId, dnd, ...rest } = { ...emptyContact(), ...fields };
  const out: Record<string, unknown> = { id: 'hl1', ...extra };
  for (const [k, v] of Object.entries(rest)) if (v !== null) out[k] = v;
  if (dnd) out.dnd = true;
  if (ownerUserId) out.assignedTo = userMap(ownerUserId) ?? 'h-other';
  out.tags = tags;
  out.customFields = Object.entries(customFields).map(([id, value]) => ({ id, value }));
  return out as HighLevelContact;
}

const contact = (fields: Partial<ContactFields>): ContactFields => ({ ...emptyContact(), ...fields });

/** What HighLevel holds after the plan's writes (PUT fields, tag adds), as the emulator stores them. */
function applied(d: HighLevelContact, plan: ReturnType<typeof decidePush>): HighLevelContact {
  const next: Record<string, unknown> = { ...d };
  const { customFields, ...body } = plan.update?.body ?? {};
  for (const [k, v] of Object.entries(body)) if (v === null) delete next[k]; else next[k] = v;
  const custom = new Map((d.customFields ?? []).map((c) => [c.id, c.value]));
  for (const c of customFields ?? []) if (c.field_value === '') custom.delete(c.id); else custom.set(c.id, c.field_value);
  next.customFields = [...custom].map(([id, value]) => ({ id, value }));
  next.tags = [...new Set([...(d.tags ?? []), ...(plan.update?.addTags ?? [])])];
  return next as HighLevelContact;
}

describe('decidePush', () => {
  it('sends only the differences, never clears with an empty Tandem value, and adds missing tags only', () => {
    const remote = remoteView(doc({ firstName: 'Ada', lastName: 'Old', companyName: 'HL Co', tags: ['hl-only', 'both'], dnd: true }), ownerMap);
    const plan = decidePush({ contact: contact({ firstName: 'Ada', lastName: 'New', tags: ['both', 'mine'] }), remote, locationId: 'L', userMap });
    expect(plan.action).toBe('updated');
    expect(plan.update).toEqual({ body: { lastName: 'New' }, addTags: ['mine'] });
    expect(plan.before).toEqual({ lastName: 'Old' });
    expect(plan.after).toEqual({ lastName: 'New' });
    expect(plan.requests).toBe(2);
    expect(plan.changes.map((c) => c.field)).toEqual(['lastName', 'tags']);
  });

  it('records HighLevel raw text as `before` (what an undo writes back)', () => {
    const remote = remoteView(doc({}, { phone: '(415) 555-2671', email: 'Ada@X.co' }), ownerMap);
    const plan = decidePush({ contact: contact({ phone: '+14155552672', email: 'ada@x.co' }), remote, locationId: 'L', userMap });
    // Tandem's email case goes out too: HighLevel keeps the case it is given.
    expect(plan.update?.body).toEqual({ phone: '+14155552672', email: 'ada@x.co' });
    expect(plan.before).toEqual({ phone: '(415) 555-2671', email: 'Ada@X.co' });
  });

  it('sends a paired owner as its HighLevel user, and leaves an unpaired one out with a reason', () => {
    const remote = remoteView(doc({}, { assignedTo: 'h3' }), ownerMap);
    const paired = decidePush({ contact: contact({ ownerUserId: 'u1' }), remote, locationId: 'L', userMap });
    expect(paired.update?.body).toEqual({ assignedTo: 'h1' });
    expect(paired.before).toEqual({ assignedTo: 'h3' });
    const unpaired = decidePush({ contact: contact({ ownerUserId: 'u2' }), remote, locationId: 'L', userMap });
    expect(unpaired).toMatchObject({ action: 'unchanged', ownerSent: false, reason: expect.stringMatching(/^owner not sent: the contact's Tandem owner has no paired HighLevel user/) });
  });

  it('creates a contact HighLevel does not have, and skips one deleted there', () => {
    const created = decidePush({ contact: contact({ firstName: 'New', email: 'n@x.co', tags: ['t'], ownerUserId: 'u2' }), remote: null, locationId: 'L', userMap });
    expect(created).toMatchObject({ action: 'created', requests: 1, ownerSent: false, create: { locationId: 'L', firstName: 'New', email: 'n@x.co', tags: ['t'] } });
    expect(created.create).not.toHaveProperty('assignedTo');
    expect(decidePush({ contact: contact({ firstName: 'Gone' }), remote: null, goneRemote: true, locationId: 'L', userMap })).toMatchObject({ action: 'skipped', reason: 'deleted in HighLevel', requests: 0 });
  });

  it('after its writes there is nothing left to push, and HighLevel keeps every value Tandem has empty', () => {
    const text = fc.constantFrom(null, 'a', 'b');
    const side = fc.record({
      firstName: text, lastName: text, companyName: text, city: text,
      email: fc.constantFrom(null, 'a@x.co', 'A@x.co', 'b@x.co'),
      phone: fc.constantFrom(null, '+14155552671', '+491511234567'),
      tags: fc.subarray(['t1', 't2', 't3']),
      dnd: fc.boolean(),
      ownerUserId: fc.constantFrom(null, 'u1', 'u2', 'u3'),
      customFields: fc.dictionary(fc.constantFrom('k1', 'k2'), fc.constantFrom('x', 'y')),
    });
    fc.assert(
      fc.property(side, side, (mine, theirs) => {
        const d = doc(theirs);
        const plan = decidePush({ contact: contact(mine), remote: remoteView(d, ownerMap), locationId: 'L', userMap });
        const after = remoteView(applied(d, plan), ownerMap);
        expect(decidePush({ contact: contact(mine), remote: after, locationId: 'L', userMap }).action).toBe('unchanged');
        for (const f of ['firstName', 'lastName', 'companyName', 'city', 'email', 'phone'] as const) {
          if (theirs[f] !== null && mine[f] === null) expect(after.fields[f]).toBe(theirs[f]);
        }
        for (const t of theirs.tags) expect(after.fields.tags).toContain(t);
        if (theirs.dnd) expect(after.fields.dnd).toBe(true);
        for (const [k, v] of Object.entries(theirs.customFields)) if (!(k in mine.customFields)) expect(after.fields.customFields![k]).toBe(v);
      }),
      { numRuns: 300 },
    );
  });
});

describe('ledgerAfter', () => {
  it('applies the written fields and added tags to the old base, keeping Tandem-only pending changes pending', () => {
    const base = contact({ firstName: 'Old', lastName: 'Base', tags: ['a'] });
    const next = ledgerAfter({ baseBefore: base, contact: contact({ firstName: 'New', lastName: 'Pending' }), remote: null, ownerSent: true, written: { firstName: 'New', 'customFields.k1': 'x' }, addedTags: ['b'] });
    expect(next).toMatchObject({ firstName: 'New', lastName: 'Base', tags: ['a', 'b'], customFields: { k1: 'x' } });
  });

  it('a new link takes Tandem values, HighLevel\'s owner when Tandem\'s could not be sent, and Tandem\'s tags HighLevel holds', () => {
    const remote = remoteView(doc({ firstName: 'HL', tags: ['x'] }, { assignedTo: 'h3' }), ownerMap);
    const mine = contact({ firstName: 'Mine', companyName: null, tags: ['x', 'y', 'z'], ownerUserId: 'u2' });
    const next = ledgerAfter({ baseBefore: null, contact: mine, remote, ownerSent: false, written: { firstName: 'Mine' }, addedTags: ['y'] });
    expect(next).toMatchObject({ firstName: 'Mine', companyName: null, ownerUserId: 'u3', tags: ['x', 'y'] });
  });
});
