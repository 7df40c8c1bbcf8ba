// Sync users' pure decisions: the user plan (pair by email among live users, add, repair, unpair,
// keys unique even when a deleted user's email came back) and each contact's owner decision.
import { describe, expect, it } from 'vitest';
import type { HighLevelUserRow, SeenHighLevelUser } from '../../db/highlevel-users.ts';
import type { User } from '../../db/users.ts';
import { decideOwner, pairingsAfter, planUsers, REASONS, userChanges } from '../../server/sync/operations/sync-users-plan.ts';

const LOC = 'loc1';
const tandemUser = (id: string, email: string, active = true): User => ({
  id, locationId: LOC, name: id.toUpperCase(), email, emailLower: email.toLowerCase(), active, createdAt: 0, updatedAt: 0,
});
const hlUser = (id: string, email: string | null, active = true): SeenHighLevelUser => ({ id, email, name: `HL ${id}`, active, deleted: false });
const stored = (highlevelId: string, email: string | null, userId: string | null, deleted = false): HighLevelUserRow => ({
  locationId: LOC, highlevelId, email, emailLower: email?.toLowerCase() ?? null, name: `HL ${highlevelId}`, active: !deleted, deleted, role: null, userId, updatedAt: 0,
});

describe('planUsers', () => {
  it('pairs, keeps, adds, repairs and unpairs by email among live users', () => {
    const tandem = [tandemUser('ta', 'a@x.io'), tandemUser('tb', 'b@x.io'), tandemUser('tc', 'c@x.io', false), tandemUser('tg', 'g@x.io')];
    const listed = [
      hlUser('ha', 'A@X.io'), // stored pairing kept
      hlUser('hb', 'b@x.io'), // not paired yet
      hlUser('hc', 'c@x.io'), // its Tandem user is deactivated
      hlUser('hd', 'd@x.io', false), // deactivated in HighLevel
      hlUser('he', 'e@x.io'), // nobody in Tandem: added
      hlUser('hg', 'g@x.io'), // paired with another Tandem user before
      hlUser('hn', null), // no email
    ];
    const rows = [stored('ha', 'a@x.io', 'ta'), stored('hc', 'c@x.io', 'tc'), stored('hd', 'd@x.io', 'ta'), stored('hg', 'old@x.io', 'tb'), stored('hz', 'z@x.io', 'tb')];
    const plan = planUsers(listed, rows, tandem);
    const by = Object.fromEntries(plan.map((d) => [d.hl.id, d]));
    expect(by.ha).toMatchObject({ action: 'unchanged', userId: 'ta', key: 'user:a@x.io' });
    expect(by.hb).toMatchObject({ action: 'paired', userId: 'tb' });
    expect(by.hc).toMatchObject({ action: 'unpaired', userId: null, fromUserId: 'tc' });
    expect(by.hd).toMatchObject({ action: 'unpaired', reason: 'Deactivated in HighLevel.' });
    expect(by.he).toMatchObject({ action: 'added', userId: null, fromUserId: null });
    expect(by.hg).toMatchObject({ action: 'repaired', userId: 'tg', fromUserId: 'tb' });
    expect(by.hn).toMatchObject({ action: 'unchanged', userId: null, key: 'user:hl:hn' });
    expect(by.hz).toMatchObject({ action: 'unpaired', reason: 'Deleted in HighLevel.', hl: { deleted: true, active: false } });
    expect(userChanges(plan).map((c) => c.action).sort()).toEqual(['add', 'pair', 'repair', 'unpair', 'unpair', 'unpair']);
  });

  it('keeps item keys unique when a deleted user’s email now belongs to a new HighLevel user', () => {
    const plan = planUsers([hlUser('new', 'a@x.io')], [stored('old', 'a@x.io', 'ta')], [tandemUser('ta', 'a@x.io')]);
    expect(plan.map((d) => [d.hl.id, d.action, d.key])).toEqual([
      ['new', 'paired', 'user:a@x.io'],
      ['old', 'unpaired', 'user:a@x.io#old'],
    ]);
  });

  it('leaves users deleted long ago and never paired out of the plan', () => {
    expect(planUsers([], [stored('gone', 'g@x.io', null, true)], [])).toEqual([]);
  });
});

describe('decideOwner', () => {
  const tandem = [tandemUser('ta', 'a@x.io'), tandemUser('tf', 'f@x.io', false), tandemUser('th', 'h@x.io')];
  const plan = planUsers(
    [hlUser('ha', 'a@x.io'), hlUser('hd', 'd@x.io', false), hlUser('he', 'e@x.io'), hlUser('hf', 'f@x.io'), hlUser('hn', null)],
    [stored('ha', 'a@x.io', 'ta'), stored('hx', 'x@x.io', 'ta')],
    tandem,
  );
  const pairings = pairingsAfter(plan, tandem, (d) => `new:${d.key}`);

  it("follows HighLevel's owner when it is paired (a user the run adds included)", () => {
    expect(decideOwner({ hlOwner: 'ha', current: 'th', baseOwner: 'th' }, pairings)).toEqual({ kind: 'update', from: 'th', to: 'ta' });
    expect(decideOwner({ hlOwner: 'he', current: null, baseOwner: null }, pairings)).toEqual({ kind: 'update', from: null, to: 'new:user:e@x.io' });
    expect(pairings.name('new:user:e@x.io')).toBe('HL he');
    expect(decideOwner({ hlOwner: 'ha', current: 'ta', baseOwner: 'ta' }, pairings)).toEqual({ kind: 'none' });
    expect(decideOwner({ hlOwner: 'ha', current: 'ta', baseOwner: null }, pairings)).toEqual({ kind: 'base', to: 'ta' });
  });

  it('says why an owner cannot follow', () => {
    const why = (hlOwner: string) => decideOwner({ hlOwner, current: 'th', baseOwner: 'th' }, pairings);
    expect(why('hd')).toEqual({ kind: 'skip', reason: REASONS.hlDeactivated });
    expect(why('hx')).toEqual({ kind: 'skip', reason: REASONS.hlDeleted });
    expect(why('hf')).toEqual({ kind: 'skip', reason: REASONS.hlTandemDeactivated });
    expect(why('hn')).toEqual({ kind: 'skip', reason: REASONS.hlNoEmail });
    expect(why('unknown')).toEqual({ kind: 'skip', reason: REASONS.hlUnknown });
    // A user the run failed to create owns nothing in Tandem.
    const failed = pairingsAfter(plan, tandem, () => null);
    expect(decideOwner({ hlOwner: 'he', current: null, baseOwner: null }, failed)).toEqual({ kind: 'skip', reason: REASONS.hlNotAdded });
  });

  it("queues a Tandem owner HighLevel never got once it is paired, and reports one that is not", () => {
    expect(decideOwner({ hlOwner: null, current: 'ta', baseOwner: null }, pairings)).toEqual({ kind: 'queue' });
    expect(decideOwner({ hlOwner: null, current: 'th', baseOwner: null }, pairings)).toEqual({ kind: 'skip', reason: REASONS.tandemNoUser });
    expect(decideOwner({ hlOwner: null, current: 'tf', baseOwner: null }, pairings)).toEqual({ kind: 'skip', reason: REASONS.tandemDeactivated });
    // HighLevel cleared an owner both sides had agreed on: the continuous sync's merge decides, not this run.
    expect(decideOwner({ hlOwner: null, current: 'ta', baseOwner: 'ta' }, pairings)).toEqual({ kind: 'none' });
  });
});
