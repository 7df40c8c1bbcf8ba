// Sync users, QA round: two HighLevel users whose emails differ only in case are one email for
// Tandem, so neither is added nor paired (no silent merge), and preview, run, records and summary
// say so alike; a HighLevel user whose email changed keeps their Tandem user, whose email follows
// HighLevel's (no second person); and the status strip's unmatched owners notice counts owners as
// soon as they lose their pairing, saying for each why and whether Sync users repairs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContact, getContact } from '../../db/contacts.ts';
import { listHighLevelUsers, ownerMapFor, saveHighLevelUserPairing, userMapFor } from '../../db/highlevel-users.ts';
import { getLinkByContact, getLinkByRemote } from '../../db/links.ts';
import { listItems, type OperationRow } from '../../db/operations.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { createUser, deactivateUser, findUserByEmail, getUser, listUsers } from '../../db/users.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { REASONS } from '../../server/sync/operations/sync-users-plan.ts';
import type { Preview, Progress } from '../../server/sync/operations/types.ts';
import { call, control, ManualClock } from '../helpers/emulator.ts';
import { addLocation, installedTandem, installLocation, passesUntilQuiet, type TestAgency, type TestTandem } from '../helpers/tandem.ts';

const clock = new ManualClock();
let t: TestTandem & { agency: TestAgency; location: { id: string } };
/** Called at each of a run's crash points (never crashes it): a test's chance to act mid-run. */
let atStep: ((point: string) => void) | undefined;

beforeAll(async () => {
  t = await installedTandem({ clock, sync: { start: false }, operations: { start: false, sweepMs: 0, crashAt: (_op, point) => (atStep?.(point), false) } });
}, 30_000);

afterAll(async () => {
  await t?.close();
}, 30_000);

/** A fresh rate window on the shared manual clock (the emulator's and Tandem's budgets). */
const freshWindow = () => clock.advance(11_000);
const ops = () => t.services.operations;

/** A new installed location whose agency admin already has a Tandem user (so Sync users leaves them be). */
async function newLocation(name: string): Promise<{ loc: string; tag: string }> {
  const location = await addLocation(t, t.agency.companyId, name);
  expect((await installLocation(t, location.id, { userId: t.agency.adminId })).status).toBe(200);
  const admin = t.emulator.emu.world.users[t.agency.adminId]!;
  createUser(t.db, { locationId: location.id, name: 'Ada Admin', email: admin.email, now: clock.now() });
  return { loc: location.id, tag: location.id.slice(0, 8).toLowerCase() };
}

async function hlUser(loc: string, firstName: string, lastName: string, email: string): Promise<string> {
  const u = await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
    companyId: t.agency.companyId, firstName, lastName, email, type: 'account', role: 'user', locationIds: [loc],
  });
  return u.id;
}

/** A HighLevel contact owned by `owner`, made through HighLevel's API; its id. */
async function hlContact(loc: string, firstName: string, owner: string): Promise<string> {
  const token = t.emulator.emu.world.locations[loc]!.privateToken;
  const email = `${firstName.toLowerCase()}.${loc.slice(0, 8).toLowerCase()}@patients.example`;
  const res = await call(t.highlevelUrl, 'POST', '/contacts/', { token, body: { locationId: loc, firstName, email, assignedTo: owner } });
  expect(res.status).toBe(201);
  return res.body.contact.id as string;
}

async function hlContactOwner(loc: string, id: string): Promise<string | undefined> {
  const token = t.emulator.emu.world.locations[loc]!.privateToken;
  return (await call(t.highlevelUrl, 'GET', `/contacts/${id}`, { token })).body.contact.assignedTo;
}

/** The location's loop, by hand, until it has nothing left to do (users listed again first). */
async function settleLoop(loc: string): Promise<void> {
  t.services.sync.usersChanged(loc);
  freshWindow();
  await passesUntilQuiet(t, loc, clock);
}

async function previewOf(loc: string): Promise<{ row: OperationRow; preview: Preview }> {
  freshWindow();
  const row = await ops().settled(ops().preview({ locationId: loc, userId: t.agency.adminId, userName: 'Ada Admin' }, 'sync_users').id);
  expect(row.status).toBe('previewed');
  return { row, preview: JSON.parse(row.preview!) as Preview };
}

async function runSyncUsers(loc: string): Promise<{ preview: Preview; done: OperationRow; progress: Progress }> {
  const { row, preview } = await previewOf(loc);
  freshWindow();
  ops().confirm(loc, row.id);
  const done = await ops().settled(row.id);
  expect(done.status).toBe('completed');
  return { preview, done, progress: JSON.parse(done.progress!) as Progress };
}

const ownerOf = (loc: string, highlevelId: string) => getContact(t.db, loc, getLinkByRemote(t.db, loc, highlevelId)!.contactId)!.fields.ownerUserId;
const notice = (loc: string) => getSyncState(t.db, loc).lastError;

describe('Sync users, QA round', () => {
  it('M1: two HighLevel users whose emails differ only in case are neither added nor paired, and every account of the run says so', async () => {
    const { loc, tag } = await newLocation('Twin Pines');
    const upper = await hlUser(loc, 'Sam', 'Upper', `Sam.Twin@${tag}.example`);
    const lower = await hlUser(loc, 'Sam', 'Lower', `sam.twin@${tag}.example`);
    const upperContact = await hlContact(loc, 'Una', upper);
    const lowerContact = await hlContact(loc, 'Lou', lower);
    await settleLoop(loc);

    const { preview, done, progress } = await runSyncUsers(loc);
    // The preview: nobody to add or pair, both named in a note, their contacts left as they are.
    expect(preview.users).toEqual([]);
    expect(preview.notes).toEqual([
      `Sam Lower and Sam Upper have the same email in HighLevel (sam.twin@${tag}.example, in any case): Tandem cannot tell which of them is the person, so it pairs neither and leaves their contacts’ owners as they are. Give one of them another email in HighLevel, then run Sync users again.`,
    ]);
    expect(preview.owners).toMatchObject({ change: 0, lose: 2, reasons: [{ reason: REASONS.hlSharedEmail, contacts: 2 }] });
    expect(preview.counts.tandem).toMatchObject({ updated: 0, skipped: 2 });

    // The run did exactly that: no Tandem user, no pairing, both recorded as skipped with why.
    expect(findUserByEmail(t.db, loc, `sam.twin@${tag}.example`)).toBeUndefined();
    const pairing = new Map(listHighLevelUsers(t.db, loc).map((r) => [r.highlevelId, r.userId]));
    expect([pairing.get(upper), pairing.get(lower)]).toEqual([null, null]);
    const users = listItems(t.db, done.id, { limit: 100 }).filter((i) => i.entity === 'user' && i.action !== 'unchanged');
    expect(users.map((i) => [i.label, i.action, i.reason]).sort()).toEqual([
      ['Sam Lower', 'skipped', `Another HighLevel user, Sam Upper, has the same email (sam.twin@${tag}.example, in any case): Tandem cannot tell which of them is the person, so it pairs neither.`],
      ['Sam Upper', 'skipped', `Another HighLevel user, Sam Lower, has the same email (sam.twin@${tag}.example, in any case): Tandem cannot tell which of them is the person, so it pairs neither.`],
    ]);
    expect(progress.users).toEqual({ skipped: 2, unchanged: 1 });
    expect(progress.counts).toEqual(preview.counts);
    expect([ownerOf(loc, upperContact), ownerOf(loc, lowerContact)]).toEqual([null, null]);

    // A Tandem user with that email later on: the loop pairs neither of them with it either.
    const sam = createUser(t.db, { locationId: loc, name: 'Sam Twin', email: `SAM.twin@${tag}.example`, now: clock.now() });
    await settleLoop(loc);
    expect([ownerMapFor(t.db, loc)(upper), ownerMapFor(t.db, loc)(lower), userMapFor(t.db, loc)(sam.id)]).toEqual([null, null, null]);
    expect([ownerOf(loc, upperContact), ownerOf(loc, lowerContact)]).toEqual([null, null]);
    const again = await runSyncUsers(loc);
    expect(again.preview.users).toEqual([]);
    expect(again.progress.users).toEqual({ skipped: 2, unchanged: 1 });
    expect(notice(loc)).toBe(
      '2 HighLevel users own contacts but share their email with another HighLevel user: their contacts keep the owner they have on each side, and Sync users cannot pair them.',
    );
  }, 60_000);

  it('M1: a location where both were merged into one Tandem user stops using that pairing at once, and Sync users undoes it', async () => {
    const { loc, tag } = await newLocation('Twin Oaks');
    const sam = createUser(t.db, { locationId: loc, name: 'Sam Twin', email: `sam.twin@${tag}.example`, now: clock.now() });
    const upper = await hlUser(loc, 'Sam', 'Upper', `Sam.Twin@${tag}.example`);
    const lower = await hlUser(loc, 'Sam', 'Lower', `sam.twin@${tag}.example`);
    // As an earlier Sync users left them: both paired with the one Tandem user.
    for (const [id, last] of [[upper, 'Upper'], [lower, 'Lower']] as const) {
      saveHighLevelUserPairing(t.db, loc, { id, email: `${last === 'Upper' ? 'Sam.Twin' : 'sam.twin'}@${tag}.example`, name: `Sam ${last}`, active: true, deleted: false }, sam.id, clock.now());
    }
    const lowerContact = await hlContact(loc, 'Lou', lower);
    const local = createContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Tia', email: `tia.${tag}@patients.example`, ownerUserId: sam.id }, now: clock.now(), origin: 'local' });
    await settleLoop(loc);
    // Sam Lower's contact is not given to Sam Twin, and Sam Twin's contact reaches HighLevel with no owner.
    expect(ownerOf(loc, lowerContact)).toBeNull();
    expect(await hlContactOwner(loc, getLinkByContact(t.db, loc, local.id)!.highlevelId)).toBeUndefined();
    expect(notice(loc)).toBe(
      '1 HighLevel user owns contacts but shares their email with another HighLevel user; 1 Tandem user owns contacts but has the same email as more than one HighLevel user: their contacts keep the owner they have on each side, and Sync users cannot pair them.',
    );

    const { preview } = await runSyncUsers(loc);
    expect(preview.users?.map((u) => [u.name, u.action]).sort()).toEqual([
      ['Sam Lower', 'unpair'],
      ['Sam Upper', 'unpair'],
    ]);
    expect(preview.users!.find((u) => u.name === 'Sam Lower')!.reason).toMatch(/^Another HighLevel user, Sam Upper, has the same email/);
    const pairing = new Map(listHighLevelUsers(t.db, loc).map((r) => [r.highlevelId, r.userId]));
    expect([pairing.get(upper), pairing.get(lower)]).toEqual([null, null]);
  }, 60_000);

  it('M2: a HighLevel user whose email changed keeps their Tandem user, whose email follows HighLevel’s', async () => {
    const { loc, tag } = await newLocation('Raman Heights');
    const priya = await hlUser(loc, 'Priya', 'Raman', `priya.raman@${tag}.example`);
    const owned = await hlContact(loc, 'Pam', priya);
    await settleLoop(loc);
    await runSyncUsers(loc);
    const paired = findUserByEmail(t.db, loc, `priya.raman@${tag}.example`)!;
    expect(ownerOf(loc, owned)).toBe(paired.id);

    await control(t.highlevelUrl, 'PATCH', `/users/${priya}`, { email: `Priya.R@${tag}.example` });
    await settleLoop(loc);
    const { preview, done, progress } = await runSyncUsers(loc);
    expect(preview.users).toEqual([
      {
        name: 'Priya Raman', email: `Priya.R@${tag}.example`, action: 'repair',
        reason: `Emails differ: Priya.R@${tag}.example in HighLevel, priya.raman@${tag}.example in Tandem. Their Tandem user’s email becomes Priya.R@${tag}.example, and they stay paired.`,
      },
    ]);
    expect(progress.users).toEqual({ repaired: 1, unchanged: 1 });
    // One Priya Raman, the same Tandem user, with HighLevel's email, still paired.
    expect(listUsers(t.db, loc).filter((u) => u.name === 'Priya Raman').map((u) => [u.id, u.email])).toEqual([[paired.id, `Priya.R@${tag}.example`]]);
    expect(userMapFor(t.db, loc)(paired.id)).toBe(priya);
    const item = listItems(t.db, done.id, { limit: 100 }).find((i) => i.entity === 'user' && i.action === 'repaired')!;
    expect([JSON.parse(item.before!), JSON.parse(item.after!)]).toEqual([
      { userId: paired.id, email: `priya.raman@${tag}.example` },
      { userId: paired.id, email: `Priya.R@${tag}.example` },
    ]);
    expect(ownerOf(loc, owned)).toBe(paired.id);

    // A contact given her in Tandem reaches HighLevel with her as the owner.
    const local = createContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Lena', email: `lena.${tag}@patients.example`, ownerUserId: paired.id }, now: clock.now(), origin: 'local' });
    await settleLoop(loc);
    expect(await hlContactOwner(loc, getLinkByContact(t.db, loc, local.id)!.highlevelId)).toBe(priya);
    // Nothing left to do.
    expect((await previewOf(loc)).preview.users).toEqual([]);
  }, 60_000);

  it('M2: when another Tandem user has the new email, the HighLevel user is paired with them and the preview says what becomes of the first one’s contacts', async () => {
    const { loc, tag } = await newLocation('Quinn Crossing');
    const quinn = await hlUser(loc, 'Quinn', 'Ortiz', `quinn@${tag}.example`);
    const first = createUser(t.db, { locationId: loc, name: 'Quinn Ortiz', email: `quinn@${tag}.example`, now: clock.now() });
    const second = createUser(t.db, { locationId: loc, name: 'Quinn Oak', email: `q.ortiz@${tag}.example`, now: clock.now() });
    const owned = await hlContact(loc, 'Quade', quinn);
    await settleLoop(loc);
    expect(ownerOf(loc, owned)).toBe(first.id);

    // Sync users run before the loop lists HighLevel's users again (the loop's listing would pair
    // them by email by itself, and Sync users would only move the owners).
    await control(t.highlevelUrl, 'PATCH', `/users/${quinn}`, { email: `q.ortiz@${tag}.example` });
    const { preview } = await runSyncUsers(loc);
    expect(preview.users).toEqual([
      {
        name: 'Quinn Ortiz', email: `q.ortiz@${tag}.example`, action: 'repair',
        reason: `Was paired with Quinn Ortiz (quinn@${tag}.example), whose email no longer matches; q.ortiz@${tag}.example is Tandem user Quinn Oak. The contacts Quinn Ortiz owns in HighLevel get Quinn Oak as their owner in Tandem; Quinn Ortiz (quinn@${tag}.example) stays as is, and any other contacts they own reach HighLevel without an owner.`,
      },
    ]);
    expect(ownerOf(loc, owned)).toBe(second.id);
    expect(getUser(t.db, loc, first.id)).toMatchObject({ email: `quinn@${tag}.example`, active: true });
    expect(listUsers(t.db, loc)).toHaveLength(3);
    await settleLoop(loc);
    expect([ownerMapFor(t.db, loc)(quinn), userMapFor(t.db, loc)(first.id)]).toEqual([second.id, null]);
  }, 60_000);

  it('M2: a Tandem user given the new email while the run goes on: the email is left as it is and the record says why', async () => {
    const { loc, tag } = await newLocation('Race Point');
    const rae = await hlUser(loc, 'Rae', 'Vance', `rae@${tag}.example`);
    const first = createUser(t.db, { locationId: loc, name: 'Rae Vance', email: `rae@${tag}.example`, now: clock.now() });
    await settleLoop(loc);
    await control(t.highlevelUrl, 'PATCH', `/users/${rae}`, { email: `rae.v@${tag}.example` });
    let other: string | undefined;
    atStep = (point) => {
      if (point === 'user' && !other) other = createUser(t.db, { locationId: loc, name: 'Someone Else', email: `RAE.V@${tag}.example`, now: clock.now() }).id;
    };
    try {
      const { done, progress } = await runSyncUsers(loc);
      expect(progress.users).toMatchObject({ failed: 1 });
      const item = listItems(t.db, done.id, { limit: 100 }).find((i) => i.action === 'failed')!;
      expect(item).toMatchObject({ label: 'Rae Vance', reason: `Another Tandem user took rae.v@${tag}.example after the run began, so this Tandem user’s email was left as it is. Run Sync users again.` });
    } finally {
      atStep = undefined;
    }
    expect(getUser(t.db, loc, first.id)!.email).toBe(`rae@${tag}.example`);
    // The next run pairs her with the user who has that email now.
    const again = await runSyncUsers(loc);
    expect(again.preview.users?.map((u) => [u.name, u.action])).toEqual([['Rae Vance', 'repair']]);
    expect(ownerMapFor(t.db, loc)(rae)).toBe(other);
  }, 60_000);

  it('L1: the unmatched owners notice counts owners as soon as they lose their pairing, and says for each why and whether Sync users repairs it', async () => {
    const { loc, tag } = await newLocation('Owner Flats');
    const email = (name: string) => `${name}.${tag}@team.example`;
    const hl: Record<string, string> = {};
    for (const name of ['dan', 'eve', 'gil', 'fay', 'zed']) {
      hl[name] = await hlUser(loc, name, 'Tester', email(name));
      if (name !== 'zed') createUser(t.db, { locationId: loc, name, email: email(name), now: clock.now() });
      await hlContact(loc, `${name}client`, hl[name]!);
    }
    await settleLoop(loc);
    expect(notice(loc)).toBe('1 HighLevel user owns contacts but has no active Tandem user with the same email: that owner was not copied (Sync users repairs it).');

    // Two deactivated and one deleted in HighLevel: their contacts did not change, yet they are counted at once.
    await control(t.highlevelUrl, 'PATCH', `/users/${hl.dan}`, { deactivated: true });
    await control(t.highlevelUrl, 'PATCH', `/users/${hl.gil}`, { deactivated: true });
    await control(t.highlevelUrl, 'DELETE', `/users/${hl.eve}`);
    await settleLoop(loc);
    expect(notice(loc)).toBe(
      '1 HighLevel user owns contacts but has no active Tandem user with the same email: that owner was not copied (Sync users repairs it). ' +
        '2 HighLevel users own contacts but are deactivated in HighLevel; 1 HighLevel user owns contacts but was deleted in HighLevel: their contacts keep the owner they have on each side, and Sync users cannot pair them.',
    );
    expect(getSyncState(t.db, loc).unmatchedOwners.remote.sort()).toEqual([hl.dan, hl.eve, hl.gil, hl.zed].sort());

    // Sync users adds Zed and unpairs the three; the notice keeps them, and no longer offers Sync users.
    await runSyncUsers(loc);
    await settleLoop(loc);
    expect(notice(loc)).toBe(
      '2 HighLevel users own contacts but are deactivated in HighLevel; 1 HighLevel user owns contacts but was deleted in HighLevel: their contacts keep the owner they have on each side, and Sync users cannot pair them.',
    );

    // Fay's Tandem user deactivated: the HighLevel user is live, the Tandem one is not.
    deactivateUser(t.db, { locationId: loc, id: findUserByEmail(t.db, loc, email('fay'))!.id, now: clock.now() });
    await settleLoop(loc);
    expect(notice(loc)).toBe(
      '2 HighLevel users own contacts but are deactivated in HighLevel; 1 HighLevel user owns contacts but was deleted in HighLevel; 1 HighLevel user owns contacts but has the same email as a deactivated Tandem user: their contacts keep the owner they have on each side, and Sync users cannot pair them.',
    );
  }, 60_000);
});
