// Sync users over real HTTP against the emulator: HighLevel and Tandem users added, renamed,
// deactivated, deleted and reassigned on either side, thousands of contacts owned by them. The
// preview's counts are what the run then does (users and owners, requests included); owners are
// re-applied with HighLevel's owner winning; contacts left without an owner are reported with their
// reasons; a run crashed at its checkpoints resumes without a duplicate user or a double count (T16);
// a cancel leaves every contact and its ledger consistent; and owners the continuous loop could not
// copy (the notice says which Sync users repairs) travel after the run, both ways (Tandem's within the direction settings).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getContact, insertContact, createContact } from '../../db/contacts.ts';
import { listHighLevelUsers, ownerMapFor, upsertHighLevelUsers, userMapFor } from '../../db/highlevel-users.ts';
import { getLinkByContact, getLinkByRemote, saveLink } from '../../db/links.ts';
import { getOperationById, listItems, type OperationRow } from '../../db/operations.ts';
import { dueOutbox, getOutbox, outboxCounts } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { createUser, deactivateUser, findUserByEmail, listUsers, updateUser, type User } from '../../db/users.ts';
import { seedContacts } from '../../emulator/contact-seed.ts';
import { fromHighLevel } from '../../server/highlevel/contact-mapping.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { REASONS } from '../../server/sync/operations/sync-users-plan.ts';
import type { Preview, Progress } from '../../server/sync/operations/types.ts';
import { call, control, ManualClock, until } from '../helpers/emulator.ts';
import { addLocation, installedTandem, installLocation, type TestTandem, type TestAgency } from '../helpers/tandem.ts';

const LEASE_MS = 60_000;
const clock = new ManualClock();
let t: TestTandem & { agency: TestAgency; location: { id: string } };
let crashAt: ((point: string) => boolean) | undefined;

beforeAll(async () => {
  t = await installedTandem({
    clock,
    sync: { start: false },
    operations: { start: false, sweepMs: 0, leaseMs: LEASE_MS, crashAt: (_op, point) => crashAt?.(point) === true },
  });
}, 30_000);

afterAll(async () => {
  await t?.close();
}, 30_000);

async function newLocation(name: string): Promise<string> {
  const location = await addLocation(t, t.agency.companyId, name);
  const res = await installLocation(t, location.id, { userId: t.agency.adminId });
  expect(res.status).toBe(200);
  return location.id;
}

/** A fresh rate window on the shared manual clock (the emulator's and Tandem's budgets). */
const freshWindow = () => clock.advance(11_000);

async function hlUser(loc: string, first: string, email: string): Promise<string> {
  const u = await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
    companyId: t.agency.companyId, firstName: first, lastName: 'Tester', email, type: 'account', role: 'user', locationIds: [loc],
  });
  return u.id;
}

const ops = () => t.services.operations;
const requester = (loc: string) => ({ locationId: loc, userId: t.agency.adminId, userName: 'Ada Admin' });

async function previewOf(loc: string): Promise<{ row: OperationRow; preview: Preview }> {
  freshWindow();
  const started = ops().preview(requester(loc), 'sync_users');
  const row = await ops().settled(started.id);
  expect(row.status).toBe('previewed');
  return { row, preview: JSON.parse(row.preview!) as Preview };
}

const progressOf = (row: OperationRow) => JSON.parse(row.progress!) as Progress;

function userCounts(preview: Preview): Record<string, number> {
  const names = { add: 'added', pair: 'paired', repair: 'repaired', unpair: 'unpaired' } as const;
  const out: Record<string, number> = {};
  for (const u of preview.users ?? []) out[names[u.action]] = (out[names[u.action]] ?? 0) + 1;
  return out;
}

/** HighLevel requests of the location since the log was cleared, as "METHOD path". */
async function requestsOf(loc: string): Promise<string[]> {
  const { requests } = await control<{ requests: { method: string; path: string }[] }>(t.highlevelUrl, 'GET', `/requests?locationId=${loc}`);
  return requests.map((r) => `${r.method} ${r.path.split('?')[0]}`);
}

// ---- the scenario ------------------------------------------------------------------------------------

/** Contact i's owners, by i % 8: [HighLevel owner, Tandem owner, ledger owner] as user keys. */
const CATEGORIES = ['alice', 'bob', 'cara', 'dan', 'eve', 'fay', 'gus', 'hal'] as const;
type Category = (typeof CATEGORIES)[number];

interface World {
  loc: string;
  hl: Record<string, string>;
  tandem: Record<string, User>;
  contacts: { highlevelId: string; contactId: string; category: Category }[];
}

/**
 * HighLevel users Alice, Cara, Dan, Eve, Fay, Gus (and the agency admin) paired by the loop's
 * listing with Tandem users of the same email; then: Bob added in HighLevel, Cara's email changed
 * in HighLevel (her Tandem user's follows: she is the same person), Dan deactivated and Eve deleted in HighLevel, Fay deactivated in Tandem, Gus's email
 * reassigned in Tandem to a new Tandem user, Ivy added on both sides, Hal a Tandem-only owner.
 * `n` contacts in both, linked, owned by category.
 */
async function scenario(loc: string, n: number): Promise<World> {
  const tag = loc.slice(0, 8).toLowerCase();
  const email = (name: string) => `${name}.${tag}@team.example`;
  const now = clock.now();
  const mk = (name: string, address: string) => createUser(t.db, { locationId: loc, name, email: address, now });
  const admin = t.emulator.emu.world.users[t.agency.adminId]!;
  mk('Ada Admin', admin.email);
  const hl: Record<string, string> = {};
  const tandem: Record<string, User> = {};
  for (const name of ['alice', 'cara', 'dan', 'eve', 'fay', 'gus']) {
    hl[name] = await hlUser(loc, name, email(name).toUpperCase());
    tandem[name] = mk(name, email(name));
  }
  tandem.hal = mk('hal', email('hal'));
  freshWindow();
  upsertHighLevelUsers(t.db, loc, await t.services.sync.locationApi(loc).listUsers(), clock.now(), { complete: true });

  hl.bob = await hlUser(loc, 'bob', email('bob'));
  await control(t.highlevelUrl, 'PATCH', `/users/${hl.cara}`, { email: email('cara.new') });
  await control(t.highlevelUrl, 'PATCH', `/users/${hl.dan}`, { deactivated: true });
  await control(t.highlevelUrl, 'DELETE', `/users/${hl.eve}`);
  deactivateUser(t.db, { locationId: loc, id: tandem.fay!.id, now });
  updateUser(t.db, { locationId: loc, id: tandem.gus!.id, patch: { email: email('gus.old') }, now });
  tandem.gus2 = mk('gus second', email('gus'));
  hl.ivy = await hlUser(loc, 'ivy', email('ivy'));
  tandem.ivy = mk('ivy', email('ivy'));

  const emu = t.emulator.emu;
  const docs = seedContacts(emu, loc, n);
  const contacts: World['contacts'] = [];
  const hlOwner = (c: Category) => (c === 'hal' ? undefined : hl[c]);
  const tandemOwner = (c: Category) => (c === 'bob' ? null : tandem[c]!.id);
  t.db.transaction(() => {
    docs.forEach((doc, i) => {
      const category = CATEGORIES[i % 8]!;
      const owner = hlOwner(category);
      const stored = owner ? { ...doc, assignedTo: owner } : doc;
      if (owner) emu.writeContact(doc.id, loc, stored);
      const fields = { ...emptyContact(), ...fromHighLevel(stored, () => null, { complete: true }).fields, ownerUserId: tandemOwner(category) };
      const contact = insertContact(t.db, { locationId: loc, fields, now, origin: 'remote' });
      // The ledger: what both sides agreed on (Hal's owner never reached HighLevel, Bob's never Tandem).
      const baseOwner = category === 'hal' ? null : fields.ownerUserId;
      saveLink(t.db, { locationId: loc, contactId: contact.id, highlevelId: doc.id, base: { ...fields, ownerUserId: baseOwner }, now });
      contacts.push({ highlevelId: doc.id, contactId: contact.id, category });
    });
  });
  return { loc, hl, tandem, contacts };
}

/** Every contact's owner and ledger owner as the scenario expects them after a complete run. */
function expectOwners(w: World, only?: Set<string>): void {
  const bob = findUserByEmail(t.db, w.loc, `bob.${w.loc.slice(0, 8).toLowerCase()}@team.example`)!;
  const cara = findUserByEmail(t.db, w.loc, `cara.new.${w.loc.slice(0, 8).toLowerCase()}@team.example`)!;
  const expected: Record<Category, string> = {
    alice: w.tandem.alice!.id, bob: bob.id, cara: cara.id, dan: w.tandem.dan!.id, eve: w.tandem.eve!.id,
    fay: w.tandem.fay!.id, gus: w.tandem.gus2!.id, hal: w.tandem.hal!.id,
  };
  for (const c of w.contacts) {
    if (only && !only.has(c.contactId)) continue;
    expect(getContact(t.db, w.loc, c.contactId)!.fields.ownerUserId).toBe(expected[c.category]);
    expect(getLinkByContact(t.db, w.loc, c.contactId)!.base.ownerUserId).toBe(c.category === 'hal' ? null : expected[c.category]);
  }
}

const N = 2400;
const PER = N / 8;
const SKIP_REASONS = [
  { reason: REASONS.hlDeactivated, contacts: PER },
  { reason: REASONS.hlDeleted, contacts: PER },
  { reason: REASONS.hlTandemDeactivated, contacts: PER },
  { reason: REASONS.tandemNoUser, contacts: PER },
];
const USER_ACTIONS = { added: 1, paired: 1, repaired: 2, unpaired: 3 };

describe('Sync users', () => {
  it('previews user changes and owner changes, then does exactly that: pairs by email, adds, repairs, unpairs, re-applies owners', async () => {
    const w = await scenario(t.location.id, N);
    const { row, preview } = await previewOf(w.loc);

    // Unchanged: the contacts whose owner stays (QA: a table of only changes read as wrong).
    expect(preview.counts.tandem).toEqual({ created: 0, updated: 2 * PER, unchanged: 2 * PER, skipped: 4 * PER, failed: 0, removed: 0 });
    expect(preview.counts.highlevel).toEqual({ created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0, removed: 0 });
    expect(userCounts(preview)).toEqual(USER_ACTIONS);
    const byEmail = new Map((preview.users ?? []).map((u) => [u.email.toLowerCase(), u]));
    const tag = w.loc.slice(0, 8).toLowerCase();
    expect(byEmail.get(`bob.${tag}@team.example`)).toMatchObject({ action: 'add', name: 'bob Tester' });
    expect(byEmail.get(`cara.new.${tag}@team.example`)).toMatchObject({
      action: 'repair', reason: `Emails differ: cara.new.${tag}@team.example in HighLevel, cara.${tag}@team.example in Tandem. Their Tandem user’s email becomes cara.new.${tag}@team.example, and they stay paired.`,
    });
    expect(byEmail.get(`dan.${tag}@team.example`)).toMatchObject({ action: 'unpair', reason: 'Deactivated in HighLevel.' });
    expect(byEmail.get(`eve.${tag}@team.example`)).toMatchObject({ action: 'unpair', reason: 'Deleted in HighLevel.' });
    expect(byEmail.get(`fay.${tag}@team.example`)?.reason).toMatch(/is deactivated/);
    expect(byEmail.get(`gus.${tag}@team.example`)).toMatchObject({ action: 'repair' });
    expect(byEmail.get(`ivy.${tag}@team.example`)).toMatchObject({ action: 'pair' });
    expect(preview.owners).toMatchObject({ change: 2 * PER, lose: 4 * PER });
    expect(new Set(preview.owners!.reasons.map((r) => JSON.stringify(r)))).toEqual(new Set(SKIP_REASONS.map((r) => JSON.stringify(r))));
    expect(preview.owners!.sample).toHaveLength(20);
    expect(preview.owners!.sample[0]).toMatchObject({ from: null, to: 'bob Tester' });
    // One users listing and five search pages of 500; nothing is written to HighLevel.
    expect(preview.requests).toBe(1 + Math.ceil(N / 500));
    // The preview wrote nothing: no Tandem user was created.
    expect(findUserByEmail(t.db, w.loc, `bob.${tag}@team.example`)).toBeUndefined();

    await control(t.highlevelUrl, 'DELETE', '/requests');
    freshWindow();
    ops().confirm(w.loc, row.id);
    const done = await ops().settled(row.id);
    expect(done.status).toBe('completed');
    const progress = progressOf(done);
    expect(progress.counts).toEqual(preview.counts);
    expect(progress.users).toEqual({ ...USER_ACTIONS, unchanged: 2 });
    const requests = await requestsOf(w.loc);
    expect(requests).toHaveLength(preview.requests);
    expect(requests.filter((r) => r !== 'POST /contacts/search' && r !== 'GET /users/')).toEqual([]);

    // Pairings as decided.
    const bob = findUserByEmail(t.db, w.loc, `bob.${tag}@team.example`)!;
    const cara = findUserByEmail(t.db, w.loc, `cara.new.${tag}@team.example`)!;
    expect(bob).toMatchObject({ name: 'bob Tester', active: true });
    // Cara is still the Tandem user she was, with HighLevel's new email.
    expect(cara.id).toBe(w.tandem.cara!.id);
    const pairing = new Map(listHighLevelUsers(t.db, w.loc).map((r) => [r.highlevelId, r]));
    expect(pairing.get(w.hl.alice!)?.userId).toBe(w.tandem.alice!.id);
    expect(pairing.get(w.hl.bob!)?.userId).toBe(bob.id);
    expect(pairing.get(w.hl.cara!)?.userId).toBe(cara.id);
    expect(pairing.get(w.hl.dan!)?.userId).toBeNull();
    expect(pairing.get(w.hl.eve!)).toMatchObject({ userId: null, deleted: true });
    expect(pairing.get(w.hl.fay!)?.userId).toBeNull();
    expect(pairing.get(w.hl.gus!)?.userId).toBe(w.tandem.gus2!.id);
    expect(pairing.get(w.hl.ivy!)?.userId).toBe(w.tandem.ivy!.id);
    // What the continuous loop now maps, both ways.
    const ownerMap = ownerMapFor(t.db, w.loc);
    const userMap = userMapFor(t.db, w.loc);
    expect([ownerMap(w.hl.dan!), ownerMap(w.hl.eve!), ownerMap(w.hl.fay!), ownerMap(w.hl.gus!)]).toEqual([null, null, null, w.tandem.gus2!.id]);
    expect([userMap(cara.id), userMap(w.tandem.gus!.id)]).toEqual([w.hl.cara!, null]);

    expectOwners(w);
    // Owners are Tandem-side writes from HighLevel: nothing is queued back.
    expect(outboxCounts(t.db, w.loc).pending).toBe(0);
    // Skipped contacts are recorded one by one with their reason.
    const skipped = listItems(t.db, done.id, { actions: ['skipped'], limit: N });
    const reasons = new Map<string, number>();
    for (const item of skipped) reasons.set(item.reason!, (reasons.get(item.reason!) ?? 0) + 1);
    expect(new Set([...reasons].map(([reason, contacts]) => JSON.stringify({ reason, contacts })))).toEqual(new Set(SKIP_REASONS.map((r) => JSON.stringify(r))));
    const updated = listItems(t.db, done.id, { actions: ['updated'], limit: 1 })[0]!;
    expect(updated).toMatchObject({ entity: 'contact', side: 'tandem', state: 'done', contactId: updated.key });
    const users = listItems(t.db, done.id, { limit: 100 }).filter((i) => i.entity === 'user');
    expect(users.find((i) => i.key === `user:bob.${tag}@team.example`)).toMatchObject({ action: 'added', side: 'tandem' });

    // The loop's next listing keeps the pairings as decided, and a second Sync users has nothing
    // left to change; the contacts without an owner remain reported.
    freshWindow();
    upsertHighLevelUsers(t.db, w.loc, await t.services.sync.locationApi(w.loc).listUsers(), clock.now(), { complete: true });
    expect(listHighLevelUsers(t.db, w.loc).map((r) => [r.highlevelId, r.userId])).toEqual([...pairing.values()].map((r) => [r.highlevelId, r.userId]));
    const again = await previewOf(w.loc);
    expect(again.preview.users).toEqual([]);
    expect(again.preview.counts.tandem).toMatchObject({ updated: 0, skipped: 4 * PER });
    ops().cancel(w.loc, again.row.id);
  }, 60_000);

  it('T16: a run crashed at its checkpoints resumes without a duplicate user or a double count', async () => {
    const w = await scenario(await newLocation('Crash Harbor'), 1200);
    const per = 1200 / 8;
    const { row, preview } = await previewOf(w.loc);
    // Crash between creating a Tandem user and recording it, in the middle of a page, and right after a page.
    const plan = [
      { point: 'user-created', at: 1 },
      { point: 'owner', at: 90 },
      { point: 'after-page', at: 2 },
    ];
    const seen = new Map<string, number>();
    let crashes = 0;
    crashAt = (point) => {
      seen.set(point, (seen.get(point) ?? 0) + 1);
      const next = plan[crashes];
      if (!next || next.point !== point || seen.get(point) !== next.at) return false;
      crashes++;
      seen.clear();
      return true;
    };
    try {
      freshWindow();
      ops().confirm(w.loc, row.id);
      for (let i = 1; i <= plan.length; i++) {
        await until(() => crashes === i, `crash ${i}`);
        // The crashed run keeps its lease until it expires; the sweep then resumes it from its checkpoint.
        await until(async () => {
          clock.advance(LEASE_MS + 1);
          await ops().sweep();
          const current = getOperationById(t.db, row.id)!;
          // Claimed again (a fresh lease), or already finished by the resumed run.
          return current.status !== 'running' || (current.leaseUntil !== null && current.leaseUntil > clock.now());
        }, `resume ${i}`);
      }
      const done = await ops().settled(row.id);
      expect(done.status).toBe('completed');
      expect(progressOf(done).counts).toEqual(preview.counts);
      expect(progressOf(done).counts.tandem).toMatchObject({ updated: 2 * per, skipped: 4 * per });
      expect(progressOf(done).users).toEqual({ ...USER_ACTIONS, unchanged: 2 });
    } finally {
      crashAt = undefined;
    }
    const emails = listUsers(t.db, w.loc, { includeInactive: true }).map((u) => u.emailLower);
    expect(new Set(emails).size).toBe(emails.length);
    expect(listItems(t.db, row.id, { limit: 5000 }).filter((i) => i.entity === 'contact')).toHaveLength(8 * per);
    expectOwners(w);
  }, 60_000);

  it('a cancelled run stops between two contacts: each contact and its ledger hold either the old owner or the new one', async () => {
    const w = await scenario(await newLocation('Cancel Creek'), 1200);
    const { row } = await previewOf(w.loc);
    let owners = 0;
    crashAt = (point) => {
      if (point === 'owner' && ++owners === 200) ops().cancel(w.loc, row.id);
      return false;
    };
    try {
      freshWindow();
      ops().confirm(w.loc, row.id);
      const done = await ops().settled(row.id);
      expect(done.status).toBe('cancelled');
      const items = listItems(t.db, row.id, { limit: 5000 }).filter((i) => i.entity === 'contact');
      expect(items).toHaveLength(200);
      const counts = progressOf(done).counts.tandem;
      expect(counts.updated + counts.skipped + counts.unchanged).toBe(200);
      expect(counts.updated).toBe(items.filter((i) => i.action === 'updated').length);
      // The users were all applied before the owners; the contacts the run reached have their new owner.
      expect(progressOf(done).users).toEqual({ ...USER_ACTIONS, unchanged: 2 });
      const reached = new Set(items.map((i) => i.contactId!));
      expectOwners(w, reached);
      // The others are as they were: Tandem's old owner and its ledger.
      for (const c of w.contacts) {
        if (reached.has(c.contactId) || c.category === 'alice') continue;
        const contact = getContact(t.db, w.loc, c.contactId)!;
        const old = c.category === 'bob' ? null : w.tandem[c.category]!.id;
        expect(contact.fields.ownerUserId).toBe(old);
        expect(getLinkByContact(t.db, w.loc, c.contactId)!.base.ownerUserId).toBe(c.category === 'hal' ? null : old);
      }
    } finally {
      crashAt = undefined;
    }
  }, 60_000);

  it('stops before any write when the users changed since the preview, saying to preview again (QA: it did what it had not shown)', async () => {
    const loc = await newLocation('Changed Users Cove');
    const tag = loc.slice(0, 8).toLowerCase();
    const { row, preview } = await previewOf(loc);
    const shown = userCounts(preview);
    // Before the admin confirms, a HighLevel user is added: the run would add and pair them.
    await hlUser(loc, 'zara', `zara.${tag}@team.example`);
    freshWindow();
    ops().confirm(loc, row.id);
    const done = await ops().settled(row.id);
    expect(done.status).toBe('failed');
    expect(done.error).toBe('HighLevel’s or Tandem’s users changed since the preview, so Sync users changed nothing. Preview it again to see what it would do now.');
    expect(findUserByEmail(t.db, loc, `zara.${tag}@team.example`)).toBeUndefined();
    expect(listItems(t.db, row.id, { limit: 10 })).toEqual([]);
    // Previewed again, it shows the change, and the run does it.
    const again = await previewOf(loc);
    expect(userCounts(again.preview)).toEqual({ ...shown, added: (shown.added ?? 0) + 1 });
    freshWindow();
    ops().confirm(loc, again.row.id);
    expect((await ops().settled(again.row.id)).status).toBe('completed');
    expect(findUserByEmail(t.db, loc, `zara.${tag}@team.example`)).toBeDefined();
  });

  it('owners the continuous loop could not copy travel after the run, both ways', async () => {
    const loc = await newLocation('Owner Falls');
    const tag = loc.slice(0, 8).toLowerCase();
    const token = t.emulator.emu.world.locations[loc]!.privateToken;
    const hl = (method: string, path: string, body?: unknown) => call(t.highlevelUrl, method, path, { token, body });
    const admin = t.emulator.emu.world.users[t.agency.adminId]!;
    createUser(t.db, { locationId: loc, name: 'Ada Admin', email: admin.email, now: clock.now() });
    // Zed owns a HighLevel contact but has no Tandem user; Hal owns a Tandem contact but has no HighLevel user.
    const zed = await hlUser(loc, 'zed', `zed.${tag}@team.example`);
    const hal = createUser(t.db, { locationId: loc, name: 'Hal', email: `hal.${tag}@team.example`, now: clock.now() });
    const created = await hl('POST', '/contacts/', { locationId: loc, firstName: 'Remote', email: `remote.${tag}@example.com`, assignedTo: zed });
    expect(created.status).toBe(201);
    const remoteId = created.body.contact.id as string;
    const local = createContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Local', email: `local.${tag}@example.com`, ownerUserId: hal.id }, now: clock.now(), origin: 'local' });

    const syncAll = async () => {
      for (let i = 0; i < 20; i++) {
        freshWindow();
        const r = await t.services.sync.runOnce(loc);
        if (r.deferredUntil !== undefined && r.deferredUntil > clock.now()) clock.set(r.deferredUntil);
        if (!r.more && r.deferredUntil === undefined && getSyncState(t.db, loc).cursor.run === null && dueOutbox(t.db, loc, clock.now()).length === 0) return;
      }
      throw new Error('the location never settled');
    };
    await syncAll();
    const imported = getLinkByRemote(t.db, loc, remoteId)!;
    expect(getContact(t.db, loc, imported.contactId)!.fields.ownerUserId).toBeNull();
    const localLink = getLinkByContact(t.db, loc, local.id)!;
    expect((await hl('GET', `/contacts/${localLink.highlevelId}`)).body.contact).not.toHaveProperty('assignedTo');
    expect(getSyncState(t.db, loc).lastError).toBe(
      '1 HighLevel user owns contacts but has no active Tandem user with the same email: that owner was not copied (Sync users repairs it). ' +
        '1 Tandem user owns contacts but has no active HighLevel user with the same email: their contacts keep the owner they have on each side, and Sync users cannot pair it.',
    );

    // Hal gets a HighLevel user; Sync users adds Zed to Tandem and pairs Hal.
    const halHl = await hlUser(loc, 'hal', `HAL.${tag}@team.example`);
    const { row, preview } = await previewOf(loc);
    expect(userCounts(preview)).toEqual({ added: 1, paired: 1 });
    expect(preview.counts.tandem).toMatchObject({ updated: 1, skipped: 0 });
    expect(preview.notes).toEqual([expect.stringMatching(/^1 contact has a Tandem owner HighLevel never got.*sends this owner to HighLevel once contact updates are set to Bi-directional\.$/)]);
    freshWindow();
    ops().confirm(loc, row.id);
    expect((await ops().settled(row.id)).status).toBe('completed');
    const zedUser = findUserByEmail(t.db, loc, `zed.${tag}@team.example`)!;
    expect(getContact(t.db, loc, imported.contactId)!.fields.ownerUserId).toBe(zedUser.id);
    expect(getOutbox(t.db, loc, local.id)?.status).toBe('pending');

    // Contact updates are Inbound (the default): Hal's ownership waits, as any Tandem change does.
    await syncAll();
    expect(getOutbox(t.db, loc, local.id)?.lastError).toMatch(/^Waiting: contact updates are set to Inbound/);
    expect((await hl('GET', `/contacts/${localLink.highlevelId}`)).body.contact).not.toHaveProperty('assignedTo');
    // Bi-directional: the next pass sends it.
    updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: { id: t.agency.adminId, name: 'Ada Admin' }, now: clock.now() });
    await syncAll();
    expect(getOutbox(t.db, loc, local.id)).toBeUndefined();
    expect((await hl('GET', `/contacts/${localLink.highlevelId}`)).body.contact.assignedTo).toBe(halHl);
    expect((await hl('GET', `/contacts/${remoteId}`)).body.contact.assignedTo).toBe(zed);
    expect(getSyncState(t.db, loc).lastError).toBeNull();
  }, 60_000);
});
