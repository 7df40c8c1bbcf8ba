// Sync users' pure decisions: the user plan (pair by email among live users, add, repair, unpair,
// keys unique even when a deleted user's email came back; an email live HighLevel users share pairs
// none of them; a paired user's Tandem email follows HighLevel's) and each contact's owner decision.
import { describe, expect, it } from 'vitest';
import type { HighLevelUserRow, SeenHighLevelUser } from '../../db/highlevel-users.ts';
import type { User } from '../../db/users.ts';
import { decideOwner, pairingsAfter, planUsers, REASONS, sharedEmailNotes, userChanges } from '../../server/sync/operations/sync-users-plan.ts';

const LOC = 'loc1';
const tandemUser = (id: string, email: string, active = true): User => ({
  id, locationId: LOC, name: id.toUpperCase(), email, emailLower: email.toLowerCase(), active, createdAt: 0, updatedAt: 0,
});
const hlUser = (id: string, email: string | null, active = true): SeenHighLevelUser => ({ id, email, name: `HL ${id}`, active, deleted: false });
const actions = (plan: ReturnType<typeof planUsers>) => plan.map((d) => [d.hl.id, d.action, d.userId]);
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

describe('planUsers: HighLevel users sharing an email', () => {
  // QA: Sam.Twin@ and sam.twin@ were both "added", as one Tandem user both were paired with.
  it('adds and pairs none of them, says why for each, and leaves their contacts’ owners as they are', () => {
    const listed = [hlUser('upper', 'Sam.Twin@x.io'), hlUser('lower', 'sam.twin@x.io'), hlUser('gone', 'SAM.TWIN@x.io', false)];
    const plan = planUsers(listed, [], []);
    expect(actions(plan)).toEqual([
      ['gone', 'unchanged', null],
      ['lower', 'skipped', null],
      ['upper', 'skipped', null],
    ]);
    const lower = plan.find((d) => d.hl.id === 'lower')!;
    expect(lower).toMatchObject({
      sharedWith: ['HL upper'],
      reason: 'Another HighLevel user, HL upper, has the same email (sam.twin@x.io, in any case): Tandem cannot tell which of them is the person, so it pairs neither.',
    });
    expect(userChanges(plan)).toEqual([]);
    expect(sharedEmailNotes(plan)).toEqual([
      'HL lower and HL upper have the same email in HighLevel (sam.twin@x.io, in any case): Tandem cannot tell which of them is the person, so it pairs neither and leaves their contacts’ owners as they are. Give one of them another email in HighLevel, then run Sync users again.',
    ]);
    const pairings = pairingsAfter(plan, [], (d) => `new:${d.key}`);
    expect(decideOwner({ hlOwner: 'lower', current: null, baseOwner: null }, pairings)).toEqual({ kind: 'skip', reason: REASONS.hlSharedEmail });
  });

  it('undoes the pairings they had, even with a Tandem user of that very email', () => {
    const tandem = [tandemUser('tsam', 'sam.twin@x.io')];
    const listed = [hlUser('a', 'Sam.Twin@x.io'), hlUser('b', 'sam.twin@x.io'), hlUser('c', 'SAM.twin@x.io')];
    const plan = planUsers(listed, [stored('a', 'Sam.Twin@x.io', 'tsam'), stored('b', 'sam.twin@x.io', 'tsam')], tandem);
    expect(actions(plan)).toEqual([
      ['a', 'unpaired', null],
      ['b', 'unpaired', null],
      ['c', 'skipped', null],
    ]);
    expect(plan[0]!.reason).toBe(
      'Other HighLevel users, HL b and HL c, have the same email (sam.twin@x.io, in any case): Tandem cannot tell which of them is the person, so it pairs none of them.',
    );
    expect(new Set(plan.map((d) => d.key)).size).toBe(3);
    expect(sharedEmailNotes(plan)).toEqual([
      'HL a, HL b and HL c have the same email in HighLevel (sam.twin@x.io, in any case): Tandem cannot tell which of them is the person, so it pairs none of them and leaves their contacts’ owners as they are. Give all but one of them another email in HighLevel, then run Sync users again.',
    ]);
    const pairings = pairingsAfter(plan, tandem, () => null);
    expect(pairings.tandemUnpaired('tsam')).toBe(REASONS.tandemNoUser);
  });
});

describe('planUsers: a paired HighLevel user whose email changed', () => {
  it('keeps the pairing and gives the Tandem user HighLevel’s email when no Tandem user has it', () => {
    const tandem = [tandemUser('tp', 'priya.raman@x.io')];
    const plan = planUsers([hlUser('hp', 'Priya.R@x.io')], [stored('hp', 'priya.raman@x.io', 'tp')], tandem);
    expect(plan).toEqual([
      {
        key: 'user:priya.r@x.io', action: 'repaired', hl: hlUser('hp', 'Priya.R@x.io'), userId: 'tp', fromUserId: 'tp', label: 'HL hp',
        email: { from: 'priya.raman@x.io', to: 'Priya.R@x.io' },
        reason: 'Emails differ: Priya.R@x.io in HighLevel, priya.raman@x.io in Tandem. Their Tandem user’s email becomes Priya.R@x.io, and they stay paired.',
      },
    ]);
    expect(userChanges(plan)).toEqual([{ name: 'HL hp', email: 'Priya.R@x.io', action: 'repair', reason: plan[0]!.reason }]);
    expect(decideOwner({ hlOwner: 'hp', current: 'tp', baseOwner: 'tp' }, pairingsAfter(plan, tandem, () => null))).toEqual({ kind: 'none' });
  });

  it('frees the old email for whoever has it in HighLevel now, renaming first, in an order the run can apply', () => {
    // a: a@ → b@ (b@ is freed by b: b@ → c@); n: a new HighLevel user with a@.
    const tandem = [tandemUser('ta', 'a@x.io'), tandemUser('tb', 'b@x.io')];
    const listed = [hlUser('n', 'a@x.io'), hlUser('a', 'b@x.io'), hlUser('b', 'c@x.io')];
    const plan = planUsers(listed, [stored('a', 'a@x.io', 'ta'), stored('b', 'b@x.io', 'tb')], tandem);
    expect(plan.map((d) => [d.hl.id, d.action, d.userId, d.email?.to])).toEqual([
      ['b', 'repaired', 'tb', 'c@x.io'],
      ['a', 'repaired', 'ta', 'b@x.io'],
      ['n', 'added', null, undefined],
    ]);
  });

  it('moves the pairing when another Tandem user has the new email, and says what becomes of the first one', () => {
    const tandem = [tandemUser('tq', 'quinn@x.io'), tandemUser('tq2', 'q@x.io')];
    const plan = planUsers([hlUser('hq', 'q@x.io')], [stored('hq', 'quinn@x.io', 'tq')], tandem);
    expect(plan[0]).toMatchObject({ action: 'repaired', userId: 'tq2', fromUserId: 'tq' });
    expect(plan[0]!.reason).toBe(
      'Was paired with TQ (quinn@x.io), whose email no longer matches; q@x.io is Tandem user TQ2. The contacts HL hq owns in HighLevel get TQ2 as their owner in Tandem; TQ (quinn@x.io) stays as is, and any other contacts they own reach HighLevel without an owner.',
    );
    // Another HighLevel user has the first one's email: they are paired with it.
    const both = planUsers([hlUser('hq', 'q@x.io'), hlUser('hn', 'quinn@x.io')], [stored('hq', 'quinn@x.io', 'tq')], tandem);
    expect(both.find((d) => d.hl.id === 'hq')!.reason).toMatch(/; TQ \(quinn@x\.io\) stays, paired with HL hn\.$/);
  });

  it('follows neither of two HighLevel users paired with one Tandem user, nor a swap of emails', () => {
    const tandem = [tandemUser('ta', 'a@x.io'), tandemUser('tb', 'b@x.io')];
    const two = planUsers([hlUser('h1', 'one@x.io'), hlUser('h2', 'two@x.io')], [stored('h1', 'a@x.io', 'ta'), stored('h2', 'a@x.io', 'ta')], tandem);
    expect(two.map((d) => [d.hl.id, d.action, d.email])).toEqual([
      ['h1', 'added', undefined],
      ['h2', 'added', undefined],
    ]);
    // One of them still has the Tandem user's email: the email match keeps them, the other is added.
    const kept = planUsers([hlUser('h1', 'one@x.io'), hlUser('h2', 'a@x.io')], [stored('h1', 'a@x.io', 'ta'), stored('h2', 'a@x.io', 'ta')], tandem);
    expect(kept.map((d) => [d.hl.id, d.action, d.email])).toEqual([
      ['h2', 'unchanged', undefined],
      ['h1', 'added', undefined],
    ]);
    const swap = planUsers([hlUser('ha', 'b@x.io'), hlUser('hb', 'a@x.io')], [stored('ha', 'a@x.io', 'ta'), stored('hb', 'b@x.io', 'tb')], tandem);
    expect(swap.map((d) => [d.hl.id, d.action, d.userId, d.email])).toEqual([
      ['hb', 'repaired', 'ta', undefined],
      ['ha', 'repaired', 'tb', undefined],
    ]);
  });

  it('gives a deactivated Tandem user the new email too, and unpairs them', () => {
    const tandem = [tandemUser('tp', 'p@x.io', false)];
    const plan = planUsers([hlUser('hp', 'p.new@x.io')], [stored('hp', 'p@x.io', 'tp')], tandem);
    expect(plan[0]).toMatchObject({ action: 'unpaired', userId: null, fromUserId: 'tp', email: { from: 'p@x.io', to: 'p.new@x.io' } });
    expect(plan[0]!.reason).toBe('Emails differ: p.new@x.io in HighLevel, p@x.io in Tandem. Their Tandem user’s email becomes p.new@x.io; that user is deactivated, so they are unpaired.');
    expect(decideOwner({ hlOwner: 'hp', current: 'tp', baseOwner: 'tp' }, pairingsAfter(plan, tandem, () => null))).toEqual({ kind: 'skip', reason: REASONS.hlTandemDeactivated });
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
