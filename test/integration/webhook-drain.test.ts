// The sync loop's drain of queued webhooks (server/sync/webhook-drain.ts, supervisor.ts), over
// real HTTP with passes driven by hand on a manual clock; the tests run in order and share the
// location. Webhooks about many contacts Tandem does not know yet (an import in HighLevel) are
// read by the pull, 500 a request, instead of one read each, and while such an import goes on its
// next ones wait for the next pull (at most every BULK_PULL_EVERY_MS); otherwise a few are still read
// one by one, so each arrives at once, and they are counted across passes (BULK_UNKNOWN). A burst of snapshots of
// linked contacts (no read, nothing to wait for) is applied CONTACTS_PER_TURN at a time, letting
// the event loop run in between: webhooks arriving meanwhile are acknowledged, not held. A contact
// HighLevel will not let the location read (another location's, 403) is set aside as failed and
// the pass goes on; a refusal of the location itself (401) still holds the pass back.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContact, getContact } from '../../db/contacts.ts';
import { createUser } from '../../db/users.ts';
import { getLinkByContact, getLinkByRemote } from '../../db/links.ts';
import { getSyncState, updateSyncState } from '../../db/sync-state.ts';
import { webhookPayload } from '../../emulator/contact-model.ts';
import { getInboxEvent, listInboxEvents, queuedInboxEvents } from '../../db/webhook-inbox.ts';
import { BULK_PULL_EVERY_MS, BULK_UNKNOWN, IMPORT_MODE_MS } from '../../server/sync/supervisor.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { CONTACTS_PER_TURN } from '../../server/sync/webhook-drain.ts';
import { call, control, ManualClock, until } from '../helpers/emulator.ts';
import { createAgency, installedTandem, postWebhook, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem & { location: { id: string } };
let loc: string;
let clock: ManualClock;

function hl(method: string, path: string, body?: unknown) {
  return call(t.highlevelUrl, method, path, { token: t.emulator.emu.world.locations[loc]!.privateToken, body });
}

/** Passes until the location has nothing queued and nothing more to do now. */
async function syncAll(): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const r = await t.services.sync.runOnce(loc);
    if (!r.more && r.deferredUntil === undefined && getSyncState(t.db, loc).cursor.run === null && queuedInboxEvents(t.db, loc).length === 0) return;
    if (r.deferredUntil !== undefined && r.deferredUntil > clock.now()) clock.set(r.deferredUntil);
  }
  throw new Error('the location never settled');
}

/** `n` contacts created in HighLevel, their ContactCreate webhooks stored and queued for the loop. */
async function created(n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await hl('POST', '/contacts/', { locationId: loc, firstName: `${tag}${i}`, email: `${tag}${i}.${randomUUID().slice(0, 6)}@example.com` });
    expect(res.status).toBe(201);
    ids.push(res.body.contact.id as string);
  }
  await t.emulator.emu.webhooks.idle();
  await t.services.inbox.runOnce();
  await until(() => queuedInboxEvents(t.db, loc).length >= n || undefined, 'the creates queued for the loop');
  return ids;
}

/** Tandem's requests since the log entry `since`, by kind. */
function requestsSince(since: number): { reads: number; searches: number } {
  const mine = t.emulator.emu.requestLog.filter((r) => r.seq > since && r.appId === t.app.appId);
  return {
    reads: mine.filter((r) => r.method === 'GET' && /^\/contacts\/[^/]+$/.test(r.path.split('?')[0]!)).length,
    searches: mine.filter((r) => r.method === 'POST' && r.path.startsWith('/contacts/search')).length,
  };
}

const lastSeq = () => t.emulator.emu.requestLog.at(-1)?.seq ?? 0;

beforeAll(async () => {
  clock = new ManualClock();
  t = await installedTandem({ clock, sync: { start: false } });
  loc = t.location.id;
  await syncAll();
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('webhooks about contacts Tandem does not know', () => {
  it('reads an import of many through the pull, not one request each', async () => {
    const ids = await created(6 * BULK_UNKNOWN, 'import');
    const since = lastSeq();
    await syncAll();
    for (const id of ids) expect(getLinkByRemote(t.db, loc, id)).toBeDefined();
    expect(requestsSince(since)).toEqual({ reads: 0, searches: 1 });
    // Every event is closed: applied (an echo of what the pull wrote), none left waiting.
    const events = listInboxEvents(t.db).filter((e) => e.type === 'ContactCreate' && ids.includes(JSON.parse(e.body).id));
    expect(events).toHaveLength(ids.length);
    expect(events.every((e) => e.processedAt !== null && e.outcome?.startsWith('applied'))).toBe(true);
  });

  it('goes on reading an import through the pull while it trickles in, a pull at most every BULK_PULL_EVERY_MS', async () => {
    // Right after the pull above: the location is importing, so even a few new contacts wait for a pull.
    const first = await created(3, 'trickle');
    const since = lastSeq();
    const pass = await t.services.sync.runOnce(loc);
    // Too soon after the last pull (the manual clock has not moved): the pass leaves them queued.
    expect(pass.deferredUntil).toBeGreaterThan(clock.now());
    expect(pass.deferredUntil! - clock.now()).toBeLessThanOrEqual(BULK_PULL_EVERY_MS);
    expect(first.every((id) => getLinkByRemote(t.db, loc, id) === undefined)).toBe(true);
    const more = await created(4, 'trickle2');
    await syncAll();
    for (const id of [...first, ...more]) expect(getLinkByRemote(t.db, loc, id)).toBeDefined();
    expect(requestsSince(since)).toEqual({ reads: 0, searches: 1 });
  });

  it('reads a few one by one, each with its complete record', async () => {
    // Long after the import: a new contact is read at once again.
    clock.advance(IMPORT_MODE_MS);
    const ids = await created(BULK_UNKNOWN - 1, 'few');
    const since = lastSeq();
    await syncAll();
    for (const id of ids) expect(getLinkByRemote(t.db, loc, id)).toBeDefined();
    expect(requestsSince(since)).toEqual({ reads: BULK_UNKNOWN - 1, searches: 0 });
  });

  it('counts them across passes, as an import trickles in: the next new ones bring a pull', async () => {
    // BULK_UNKNOWN - 1 were read one by one just before; these three arrive in a later pass.
    const ids = await created(3, 'later');
    const since = lastSeq();
    await syncAll();
    for (const id of ids) expect(getLinkByRemote(t.db, loc, id)).toBeDefined();
    expect(requestsSince(since)).toEqual({ reads: 0, searches: 1 });
  });
  it('leaves what comes in while the pull runs for the next pull, instead of reading it', async () => {
    clock.advance(IMPORT_MODE_MS);
    const first = await created(2 * BULK_UNKNOWN, 'during');
    // HighLevel's search shows a write a second later; the first ones are older than that. The
    // pull's search answers slowly, and the import goes on meanwhile: those it cannot show yet.
    t.emulator.emu.setConfig({ searchLagMs: 1_000 });
    clock.advance(2_000);
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/contacts/search', delayMs: 300, times: 1 });
    const since = lastSeq();
    const passing = t.services.sync.runOnce(loc);
    await until(async () => ((await control<{ faults: unknown[] }>(t.highlevelUrl, 'GET', '/faults')).faults.length === 0) || undefined, 'the search under way');
    clock.advance(1);
    const late = await created(3, 'late');
    await passing;
    for (const id of first) expect(getLinkByRemote(t.db, loc, id)).toBeDefined();
    expect(late.every((id) => getLinkByRemote(t.db, loc, id) === undefined)).toBe(true);
    expect(requestsSince(since)).toEqual({ reads: 0, searches: 1 });
    clock.advance(1_000);
    t.emulator.emu.setConfig({ searchLagMs: 0 });
    await syncAll();
    for (const id of late) expect(getLinkByRemote(t.db, loc, id)).toBeDefined();
    expect(requestsSince(since)).toEqual({ reads: 0, searches: 2 });
  });
});

describe('a burst of snapshots', () => {
  it('applies them a few contacts at a time, other work running in between', async () => {
    // A new burst window for the private token's own rate limit (the tests above used much of it).
    clock.advance(10_000);
    const n = 3 * CONTACTS_PER_TURN + 5;
    const ids = await created(n, 'burst');
    await syncAll();
    for (const id of ids) expect(getLinkByRemote(t.db, loc, id)).toBeDefined();

    // Edited in HighLevel well after Tandem's last write: each webhook's snapshot is applied without a read.
    clock.advance(10_000);
    for (const id of ids) expect((await hl('PUT', `/contacts/${id}`, { lastName: 'Edited' })).status).toBe(200);
    await t.emulator.emu.webhooks.idle();
    await t.services.inbox.runOnce();
    await until(() => queuedInboxEvents(t.db, loc).length === n || undefined, 'the updates queued for the loop');
    const reads = t.emulator.emu.requestLog.length;

    const applied = () => listInboxEvents(t.db).filter((e) => e.type === 'ContactUpdate' && e.processedAt !== null).length;
    const seenByOthers = new Set<number>();
    let next: NodeJS.Immediate | undefined;
    const other = () => {
      seenByOthers.add(applied());
      next = setImmediate(other);
    };
    other();
    try {
      await syncAll();
    } finally {
      clearImmediate(next);
    }

    for (const id of ids) expect(getContact(t.db, loc, getLinkByRemote(t.db, loc, id)!.contactId)?.fields.lastName).toBe('Edited');
    expect(t.emulator.emu.requestLog.slice(reads).filter((r) => r.method === 'GET' && r.path.startsWith('/contacts/'))).toEqual([]);
    // Between groups of CONTACTS_PER_TURN, not only before and after the burst.
    expect([...seenByOthers].filter((k) => k < n).sort((a, b) => a - b)).toEqual([0, CONTACTS_PER_TURN, 2 * CONTACTS_PER_TURN, 3 * CONTACTS_PER_TURN]);
  });

  it('keeps the contacts applied before one that fails, and leaves the ones after it queued', async () => {
    clock.advance(10_000);
    const ids = await created(4, 'faulty');
    await syncAll();
    clock.advance(10_000);
    for (const id of ids) expect((await hl('PUT', `/contacts/${id}`, { lastName: 'Again' })).status).toBe(200);
    await t.emulator.emu.webhooks.idle();
    await t.services.inbox.runOnce();
    await until(() => queuedInboxEvents(t.db, loc).length === ids.length || undefined, 'the updates queued for the loop');

    // In the order the loop applies them (the order received); the third one's write fails in the
    // database (as a full disk would).
    const order = queuedInboxEvents(t.db, loc).map((e) => JSON.parse(e.body).id as string);
    expect(new Set(order)).toEqual(new Set(ids));
    const contactOf = (id: string) => getLinkByRemote(t.db, loc, id)!.contactId;
    t.database.sqlite.exec(`CREATE TRIGGER fail_one BEFORE UPDATE ON contacts WHEN NEW.id = '${contactOf(order[2]!)}' BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
    try {
      const failedPass = await t.services.sync.runOnce(loc);
      // In words for the panel; the log keeps the error itself.
      expect(failedPass.error).toBe('Sync stopped on an unexpected problem; Tandem will try again.');
      expect(order.map((id) => getContact(t.db, loc, contactOf(id))?.fields.lastName === 'Again')).toEqual([true, true, false, false]);
      const eventOf = (id: string) => listInboxEvents(t.db).find((e) => e.type === 'ContactUpdate' && e.body.includes('"lastName":"Again"') && JSON.parse(e.body).id === id)!;
      expect(order.map((id) => eventOf(id).processedAt !== null)).toEqual([true, true, false, false]);
      // The failed one counts an attempt (retried, then recorded as failed); the one after it was not tried.
      expect(order.slice(2).map((id) => eventOf(id).attempts)).toEqual([1, 0]);
    } finally {
      t.database.sqlite.exec('DROP TRIGGER fail_one');
    }
    await syncAll();
    for (const id of ids) expect(getContact(t.db, loc, contactOf(id))?.fields.lastName).toBe('Again');
  });
});

describe('a contact HighLevel will not let the location read', () => {
  it("sets that contact's event aside as failed, and the pass goes on with the location's other work", async () => {
    clock.advance(10_000);
    const [mine] = await created(1, 'neighbour');
    await syncAll();
    // A contact of another location: reading it with this location's token answers 403.
    const other = await createAgency(t, { name: 'Other Agency', locations: ['Elsewhere'] });
    const foreign = await call(t.highlevelUrl, 'POST', '/contacts/', {
      token: other.locations[0]!.privateToken,
      body: { locationId: other.locations[0]!.id, firstName: 'Foreign', email: `foreign.${randomUUID().slice(0, 6)}@example.com` },
    });
    expect(foreign.status).toBe(201);
    const foreignId = foreign.body.contact.id as string;

    // A correctly signed ContactUpdate naming this location and that contact, queued first; then an
    // edit made in HighLevel here, and a contact made in Tandem.
    clock.advance(10_000);
    const webhookId = randomUUID();
    const body = { type: 'ContactUpdate', appId: t.app.appId, locationId: loc, id: foreignId, firstName: 'Foreign', webhookId, timestamp: new Date(clock.now()).toISOString() };
    expect((await postWebhook(t, JSON.stringify(body))).status).toBe(200);
    clock.advance(1);
    expect((await hl('PUT', `/contacts/${mine}`, { lastName: 'Edited next door' })).status).toBe(200);
    await t.emulator.emu.webhooks.idle();
    await t.services.inbox.runOnce();
    await until(() => queuedInboxEvents(t.db, loc).length === 2 || undefined, 'both events queued for the loop');
    expect(JSON.parse(queuedInboxEvents(t.db, loc)[0]!.body).id).toBe(foreignId);
    const local = createContact(t.db, {
      locationId: loc,
      fields: { ...emptyContact(), firstName: 'Made', lastName: 'In Tandem', email: `made.${randomUUID().slice(0, 6)}@example.com` },
      now: clock.now(),
      origin: 'local',
    });

    const pass = await t.services.sync.runOnce(loc);
    expect(pass.error).toBeUndefined();
    expect(getContact(t.db, loc, getLinkByRemote(t.db, loc, mine!)!.contactId)?.fields.lastName).toBe('Edited next door');
    // The Tandem contact reached HighLevel in the same pass.
    expect(t.emulator.emu.contact(getLinkByContact(t.db, loc, local.id)!.highlevelId)?.email).toBe(local.fields.email);
    expect(queuedInboxEvents(t.db, loc)).toEqual([]);
    expect(getInboxEvent(t.db, webhookId)?.outcome).toBe('failed: HighLevel refused to read this contact (403 The token does not have access to this location.)');
    expect(getLinkByRemote(t.db, loc, foreignId)).toBeUndefined();
  });

  it('sets aside a contact HighLevel answers 422 about, too', async () => {
    clock.advance(10_000);
    const [id] = await created(1, 'invalid');
    const fault = { method: 'GET', path: `/contacts/${id}`, status: 422, body: { statusCode: 422, message: ['id must be a valid contact id'], error: 'Unprocessable Entity' }, times: 1 };
    await control(t.highlevelUrl, 'POST', '/faults', fault);
    try {
      expect((await t.services.sync.runOnce(loc)).error).toBeUndefined();
    } finally {
      await control(t.highlevelUrl, 'DELETE', '/faults');
    }
    expect(queuedInboxEvents(t.db, loc)).toEqual([]);
    const event = listInboxEvents(t.db).find((e) => e.type === 'ContactCreate' && JSON.parse(e.body).id === id);
    expect(event?.outcome).toBe('failed: HighLevel refused to read this contact (422 id must be a valid contact id)');
  });

  it('still holds the whole pass back when the location itself is refused (401)', async () => {
    clock.advance(10_000);
    const [id] = await created(1, 'unauthorized');
    const fault = { method: 'GET', path: `/contacts/${id}`, status: 401, body: { statusCode: 401, message: 'The token is not authorized for this scope.', error: 'Unauthorized' }, times: 1 };
    await control(t.highlevelUrl, 'POST', '/faults', fault);
    try {
      const pass = await t.services.sync.runOnce(loc);
      expect(pass.error).toBeDefined();
      // Still queued, one attempt counted, for the pass the backoff brings.
      expect(queuedInboxEvents(t.db, loc).map((e) => [JSON.parse(e.body).id, e.attempts])).toEqual([[id, 1]]);
    } finally {
      await control(t.highlevelUrl, 'DELETE', '/faults');
    }
    await syncAll();
    expect(getLinkByRemote(t.db, loc, id!)).toBeDefined();
  });
});

describe('the way in', () => {
  // Last: it closes the inbox processor.
  it('stores a contact webhook of an installed location already queued for its loop: no inbox processor pass is needed', async () => {
    await syncAll();
    await t.services.inbox.close();
    clock.advance(10_000);
    const res = await hl('POST', '/contacts/', { locationId: loc, firstName: 'Straight', email: `straight.${randomUUID().slice(0, 6)}@example.com` });
    expect(res.status).toBe(201);
    const id = res.body.contact.id as string;
    await t.emulator.emu.webhooks.idle();
    // Acknowledged means committed, and committed queued.
    expect(queuedInboxEvents(t.db, loc).map((e) => JSON.parse(e.body).id)).toEqual([id]);
    await syncAll();
    expect(getContact(t.db, loc, getLinkByRemote(t.db, loc, id)!.contactId)?.fields.firstName).toBe('Straight');
    expect(listInboxEvents(t.db).find((e) => e.type === 'ContactCreate' && JSON.parse(e.body).id === id)?.outcome).toMatch(/^applied/);
  });
});

describe('a webhook stamped after the write it announces', () => {
  it('lets a later read of that same write bring what the snapshot cannot carry (the timezone)', async () => {
    const [id] = await created(1, 'stamped');
    await syncAll();
    const contactId = getLinkByRemote(t.db, loc, id!)!.contactId;
    // An edit in HighLevel whose webhook HighLevel stamps two seconds after the write (HighLevel's
    // dateUpdated): its own delivery is dropped, and the stamped copy delivered by hand.
    await control(t.highlevelUrl, 'POST', '/webhooks/faults', { mode: 'drop', count: 1, type: 'ContactUpdate' });
    expect((await hl('PUT', `/contacts/${id}`, { city: 'Porto', timezone: 'Europe/Lisbon' })).status).toBe(200);
    await t.emulator.emu.webhooks.idle();
    const doc = t.emulator.emu.contact(id!)!;
    clock.advance(2_000);
    const body = JSON.stringify({ ...webhookPayload('ContactUpdate', doc), timestamp: new Date(clock.now()).toISOString(), webhookId: randomUUID() });
    expect((await postWebhook(t, body)).status).toBe(200);
    await t.services.inbox.runOnce();
    await syncAll();
    expect(getContact(t.db, loc, contactId)?.fields).toMatchObject({ city: 'Porto', timezone: null });
    // The next full sweep reads that very write, dated two seconds before the webhook.
    updateSyncState(t.db, loc, { lastFullSweepAt: null, nextPullAt: 0 }, clock.now());
    await syncAll();
    expect(getContact(t.db, loc, contactId)?.fields).toMatchObject({ city: 'Porto', timezone: 'Europe/Lisbon' });
  });

  it('refuses an older write whose only difference is its owner, once it is older than a stamp could be late', async () => {
    const [id] = await created(1, 'owners');
    const users = [];
    for (const name of ['Ada', 'Bo']) {
      const email = `${name.toLowerCase()}.${randomUUID().slice(0, 6)}@example.com`;
      const hlUser = await control(t.highlevelUrl, 'POST', '/users', { companyId: t.emulator.emu.world.locations[loc]!.companyId, firstName: name, lastName: 'Owner', email, type: 'account', role: 'user', locationIds: [loc] });
      users.push({ highlevelId: hlUser.id as string, tandem: createUser(t.db, { locationId: loc, name, email, now: clock.now() }) });
    }
    t.services.sync.usersChanged(loc);
    await syncAll();
    const contactId = getLinkByRemote(t.db, loc, id!)!.contactId;
    const owner = () => getContact(t.db, loc, contactId)?.fields.ownerUserId;
    expect((await hl('PUT', `/contacts/${id}`, { assignedTo: users[0]!.highlevelId })).status).toBe(200);
    await t.emulator.emu.webhooks.idle();
    await t.services.inbox.runOnce();
    await syncAll();
    expect(owner()).toBe(users[0]!.tandem.id);
    // Search lags a minute behind; 70 s later the owner changes, applied from its webhook.
    t.emulator.emu.setConfig({ searchLagMs: 60_000 });
    try {
      clock.advance(70_000);
      expect((await hl('PUT', `/contacts/${id}`, { assignedTo: users[1]!.highlevelId })).status).toBe(200);
      await t.emulator.emu.webhooks.idle();
      await t.services.inbox.runOnce();
      await syncAll();
      expect(owner()).toBe(users[1]!.tandem.id);
      // A sweep now reads the write before (Ada's), 70 s older: not the webhook's own write.
      updateSyncState(t.db, loc, { lastFullSweepAt: null, nextPullAt: 0 }, clock.now());
      await syncAll();
      expect(owner()).toBe(users[1]!.tandem.id);
    } finally {
      t.emulator.emu.setConfig({ searchLagMs: 0 });
    }
  });

  it('still refuses a read of an older write', async () => {
    const [id] = await created(1, 'older');
    await syncAll();
    const contactId = getLinkByRemote(t.db, loc, id!)!.contactId;
    expect((await hl('PUT', `/contacts/${id}`, { city: 'Braga' })).status).toBe(200);
    await t.emulator.emu.webhooks.idle();
    await t.services.inbox.runOnce();
    await syncAll();
    expect(getContact(t.db, loc, contactId)?.fields.city).toBe('Braga');
    // Search still shows the write before (it lags): a sweep then must not bring 'Braga' back to before.
    const link = getLinkByRemote(t.db, loc, id!)!;
    t.emulator.emu.setConfig({ searchLagMs: 60_000 });
    try {
      clock.advance(1_000);
      expect((await hl('PUT', `/contacts/${id}`, { city: 'Faro' })).status).toBe(200);
      await t.emulator.emu.webhooks.idle();
      await t.services.inbox.runOnce();
      await syncAll();
      expect(getContact(t.db, loc, contactId)?.fields.city).toBe('Faro');
      expect(getLinkByRemote(t.db, loc, id!)!.remoteUpdatedAt).toBeGreaterThan(link.remoteUpdatedAt!);
      updateSyncState(t.db, loc, { lastFullSweepAt: null, nextPullAt: 0 }, clock.now());
      await syncAll();
      expect(getContact(t.db, loc, contactId)?.fields.city).toBe('Faro');
    } finally {
      t.emulator.emu.setConfig({ searchLagMs: 0 });
    }
  });
});
