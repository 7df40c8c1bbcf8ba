// HighLevel → Tandem through webhooks, over real HTTP: a person edits contacts in HighLevel (the
// location's private integration token), the emulator sends the webhooks, Tandem's loop applies
// them. Duplicates (T07), reordering and delete-then-update (T08), owners, linking by email, and a
// 429 storm on one location while another keeps syncing (T05).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findContactsByEmail, getContact, restoreContact, updateContact, type Contact } from '../../db/contacts.ts';
import { getLinkByContact, getLinkByRemote } from '../../db/links.ts';
import { getOutbox, PARKED_AT } from '../../db/outbox.ts';
import { getSyncState, updateSyncState } from '../../db/sync-state.ts';
import { createUser, deactivateUser } from '../../db/users.ts';
import { createApiKey } from '../../db/api-keys.ts';
import { listInboxEvents } from '../../db/webhook-inbox.ts';
import { createContact } from '../../db/contacts.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { syncStatus } from '../../db/sync-status.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { call, control, until } from '../helpers/emulator.ts';
import { restCall } from '../helpers/rest.ts';
import { createAgency, installedTandem, installLocation, postWebhook, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem & { location: { id: string }; agency: { companyId: string } };
let loc: string;

/** HighLevel as a person uses it: the location's private integration token. */
function hl(method: string, path: string, body?: unknown, locationId = loc) {
  const token = t.emulator.emu.world.locations[locationId]!.privateToken;
  return call(t.highlevelUrl, method, path, { token, body });
}

async function hlCreate(body: Record<string, unknown>, locationId = loc): Promise<string> {
  const res = await hl('POST', '/contacts/', { locationId, ...body }, locationId);
  expect(res.status).toBe(201);
  return res.body.contact.id as string;
}

const unique = (name: string) => `${name}.${randomUUID().slice(0, 8)}@example.com`;

function tandemByEmail(email: string, locationId = loc): Contact[] {
  return findContactsByEmail(t.db, locationId, email, { includeArchived: true });
}

function linked(highlevelId: string, locationId = loc): Contact | undefined {
  const link = getLinkByRemote(t.db, locationId, highlevelId);
  return link ? getContact(t.db, locationId, link.contactId) : undefined;
}

async function firstPassDone(locationId: string): Promise<void> {
  await until(() => getSyncState(t.db, locationId).lastFullSweepAt !== null, `the first pull of ${locationId}`, 10_000);
}

beforeAll(async () => {
  // Users are listed every pass so a HighLevel user added by a test pairs at once.
  t = await installedTandem({ sync: { usersRefreshMs: 0 } });
  loc = t.location.id;
  await firstPassDone(loc);
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('webhooks into Tandem', () => {
  it('creates a contact made in HighLevel, updates it, and archives it when deleted (restorable)', async () => {
    const email = unique('Ann.Lee');
    const id = await hlCreate({ firstName: 'Ann', lastName: 'Lee', email, phone: '(415) 555-0101', tags: ['VIP', 'lead'], companyName: 'Lee Co' });

    const created = await until(() => linked(id), 'the contact in Tandem');
    expect(created.fields).toMatchObject({ firstName: 'Ann', lastName: 'Lee', email, phone: '+14155550101', companyName: 'Lee Co' });
    expect([...created.fields.tags].sort()).toEqual(['lead', 'vip']);
    // Applied from HighLevel: nothing is queued back.
    expect(getOutbox(t.db, loc, created.id)).toBeUndefined();
    await until(() => getSyncState(t.db, loc).lastInboundAt !== null, 'last change received');

    expect((await hl('PUT', `/contacts/${id}`, { firstName: 'Annie', city: 'Oakland' })).status).toBe(200);
    const updated = await until(() => (linked(id)?.fields.firstName === 'Annie' ? linked(id) : undefined), 'the update in Tandem');
    expect(updated.fields).toMatchObject({ city: 'Oakland', lastName: 'Lee' });
    expect(updated.id).toBe(created.id);

    expect((await hl('DELETE', `/contacts/${id}`)).status).toBe(200);
    const archived = await until(() => (linked(id)?.archivedAt ? linked(id) : undefined), 'the archive in Tandem');
    expect(getLinkByRemote(t.db, loc, id)?.remoteDeletedAt).not.toBeNull();
    expect(tandemByEmail(email)).toHaveLength(1);
    const restored = restoreContact(t.db, { locationId: loc, id: archived.id, now: Date.now(), origin: 'remote' });
    expect(restored.archivedAt).toBeNull();
    expect(restored.fields.firstName).toBe('Annie');
  });

  it('drops a Tandem edit held by Inbound updates when HighLevel deletes the contact: nothing is left to send', async () => {
    const id = await hlCreate({ firstName: 'Held', email: unique('held') });
    const contact = await until(() => linked(id), 'the contact in Tandem');
    // Updates are Inbound (the default): the edit waits in the outbox, counted on the panel.
    updateContact(t.db, { locationId: loc, id: contact.id, patch: { companyName: 'Held Co' }, now: Date.now(), origin: 'local' });
    t.services.sync.wake(loc);
    await until(() => getOutbox(t.db, loc, contact.id)?.nextAttemptAt === PARKED_AT || undefined, 'the edit parked');
    const before = syncStatus(t.db, loc).pendingOutbound;
    expect((await hl('DELETE', `/contacts/${id}`)).status).toBe(200);
    await until(() => (linked(id)?.archivedAt ? true : undefined), 'the archive in Tandem');
    // The deletion wins (the contact is archived, restorable); its held edit would never go out.
    expect(getOutbox(t.db, loc, contact.id)).toBeUndefined();
    expect(syncStatus(t.db, loc).pendingOutbound).toBe(before - 1);
    expect(linked(id)?.fields.companyName).toBe('Held Co');
  });

  it('T07 applies a duplicated webhook once', async () => {
    await control(t.highlevelUrl, 'POST', '/webhooks/faults', { mode: 'duplicate', count: 1, type: 'ContactCreate' });
    const email = unique('dup');
    const id = await hlCreate({ firstName: 'Dup', email });
    const contact = await until(() => linked(id), 'the contact in Tandem');
    await t.emulator.emu.webhooks.idle();
    const deliveries = (await control(t.highlevelUrl, 'GET', `/webhooks?appId=${t.app.appId}&type=ContactCreate`)).deliveries as { body?: string; webhookId: string; fault?: string }[];
    const copies = deliveries.filter((d) => d.fault === 'duplicate');
    expect(copies.length).toBeGreaterThan(0);
    // The same event again under a new webhookId (a redelivery HighLevel numbered anew) is an echo.
    const stored = listInboxEvents(t.db).find((e) => e.type === 'ContactCreate' && JSON.parse(e.body).id === id)!;
    const again = { ...JSON.parse(stored.body), webhookId: randomUUID(), timestamp: new Date().toISOString() };
    expect((await postWebhook(t, JSON.stringify(again))).status).toBe(200);
    const echo = await until(() => listInboxEvents(t.db).find((e) => e.webhookId === again.webhookId && e.processedAt), 'the copy applied');
    expect(echo.outcome).toBe('applied: echo');
    expect(tandemByEmail(email)).toHaveLength(1);
    expect(linked(id)?.version).toBe(contact.version);
  });

  it('T08 reordered webhooks end at HighLevel\'s latest values', async () => {
    const email = unique('order');
    const id = await hlCreate({ firstName: 'First', email });
    await until(() => linked(id), 'the contact in Tandem');
    // The first update is held back and delivered after the second.
    await control(t.highlevelUrl, 'POST', '/webhooks/faults', { mode: 'reorder', count: 1, type: 'ContactUpdate' });
    expect((await hl('PUT', `/contacts/${id}`, { firstName: 'Second' })).status).toBe(200);
    expect((await hl('PUT', `/contacts/${id}`, { firstName: 'Third' })).status).toBe(200);
    await t.emulator.emu.webhooks.idle();
    await until(() => linked(id)?.fields.firstName === 'Third', 'the latest name');
    await until(() => listInboxEvents(t.db).filter((e) => e.type === 'ContactUpdate' && JSON.parse(e.body).id === id && e.processedAt).length === 2, 'both updates applied');
    expect(linked(id)?.fields.firstName).toBe('Third');
  });

  it('T08 a late update after a delete never resurrects the contact', async () => {
    const email = unique('late');
    const id = await hlCreate({ firstName: 'Late', email });
    await until(() => linked(id), 'the contact in Tandem');
    expect((await hl('PUT', `/contacts/${id}`, { firstName: 'Later' })).status).toBe(200);
    const update = await until(
      () => listInboxEvents(t.db).find((e) => e.type === 'ContactUpdate' && JSON.parse(e.body).id === id && e.processedAt),
      'the update applied',
    );
    expect((await hl('DELETE', `/contacts/${id}`)).status).toBe(200);
    await until(() => linked(id)?.archivedAt, 'the archive');
    // The update arrives again, late, after the delete (a new webhookId, as a retry of the sender would).
    const late = { ...JSON.parse(update.body), firstName: 'Zombie', webhookId: randomUUID(), timestamp: new Date().toISOString() };
    expect((await postWebhook(t, JSON.stringify(late))).status).toBe(200);
    await until(() => listInboxEvents(t.db).find((e) => e.webhookId === late.webhookId && e.processedAt), 'the late update handled');
    const after = linked(id)!;
    expect(after.archivedAt).not.toBeNull();
    expect(after.fields.firstName).toBe('Later');
    expect(tandemByEmail(email)).toHaveLength(1);
  });

  it('links a HighLevel contact to the Tandem contact with the same email instead of duplicating it', async () => {
    const email = unique('Existing');
    const local = createContact(t.db, {
      locationId: loc,
      fields: { ...emptyContact(), email: email.toLowerCase(), lastName: 'Local', city: 'Austin' },
      now: Date.now(),
      origin: 'remote',
    });
    const id = await hlCreate({ firstName: 'Remote', email: email.toUpperCase() });
    const contact = await until(() => linked(id), 'the link');
    expect(contact.id).toBe(local.id);
    expect(tandemByEmail(email)).toHaveLength(1);
    // HighLevel's values come in; Tandem's own values stay.
    expect(contact.fields).toMatchObject({ firstName: 'Remote', lastName: 'Local', city: 'Austin' });
  });

  it('maps HighLevel owners to the Tandem user with the same email, and reports unmatched ones', async () => {
    const email = unique('owner');
    const tandemUser = createUser(t.db, { locationId: loc, name: 'Olga Owner', email: email.toUpperCase(), now: Date.now() });
    const paired = await control(t.highlevelUrl, 'POST', '/users', {
      companyId: t.agency.companyId, firstName: 'Olga', lastName: 'Owner', email, type: 'account', role: 'user', locationIds: [loc],
    });
    const strangerEmail = unique('stranger');
    const stranger = await control(t.highlevelUrl, 'POST', '/users', {
      companyId: t.agency.companyId, firstName: 'Sam', lastName: 'Stranger', email: strangerEmail, type: 'account', role: 'user', locationIds: [loc],
    });
    const owned = await hlCreate({ firstName: 'Owned', email: unique('owned'), assignedTo: paired.id });
    expect((await until(() => linked(owned), 'the owned contact')).fields.ownerUserId).toBe(tandemUser.id);

    const orphan = await hlCreate({ firstName: 'Orphan', email: unique('orphan'), assignedTo: stranger.id });
    expect((await until(() => linked(orphan), 'the contact of an unmatched owner')).fields.ownerUserId).toBeNull();
    await until(() => getSyncState(t.db, loc).lastError?.includes('no active Tandem user with the same email'), 'the unmatched owner reported');
    // A later pass that meets only paired owners keeps saying so: the owner is still unmatched.
    const later = await hlCreate({ firstName: 'Later', email: unique('later'), assignedTo: paired.id });
    await until(() => linked(later), 'the later contact');
    expect(getSyncState(t.db, loc).lastError).toMatch(/1 HighLevel user owns contacts but has no active Tandem user with the same email/);
    // Paired at last (a Tandem user with the same email): the notice goes.
    const sam = createUser(t.db, { locationId: loc, name: 'Sam Stranger', email: strangerEmail, now: Date.now() });
    t.services.sync.usersChanged(loc);
    await until(() => getSyncState(t.db, loc).lastError === null || undefined, 'the notice cleared once the owner is paired');
    expect(getSyncState(t.db, loc).unmatchedOwners).toEqual({ remote: [], local: [] });
    // The contact that came in without its owner gets it (a sweep), with no edit in HighLevel.
    await until(() => linked(orphan)?.fields.ownerUserId === sam.id || undefined, 'the paired owner on the contact that came without one');
  });

  it('clears the Tandem owner when HighLevel gives the contact to a user no Tandem user pairs with, and keeps it when only the pairing is lost (QA)', async () => {
    const email = unique('pia');
    const pia = createUser(t.db, { locationId: loc, name: 'Pia Paired', email, now: Date.now() });
    const piaHl = await control(t.highlevelUrl, 'POST', '/users', {
      companyId: t.agency.companyId, firstName: 'Pia', lastName: 'Paired', email, type: 'account', role: 'user', locationIds: [loc],
    });
    const newcomer = await control(t.highlevelUrl, 'POST', '/users', {
      companyId: t.agency.companyId, firstName: 'Nia', lastName: 'New', email: unique('nia'), type: 'account', role: 'user', locationIds: [loc],
    });
    const given = await hlCreate({ firstName: 'Given', email: unique('given'), assignedTo: piaHl.id });
    const kept = await hlCreate({ firstName: 'Kept', email: unique('kept'), assignedTo: piaHl.id });
    await until(() => linked(given)?.fields.ownerUserId === pia.id && linked(kept)?.fields.ownerUserId === pia.id, 'both owned by Pia in Tandem');
    // HighLevel gives one to Nia, whom no Tandem user pairs with: Pia no longer owns it.
    expect((await hl('PUT', `/contacts/${given}`, { assignedTo: newcomer.id })).status).toBe(200);
    await until(() => linked(given)?.fields.ownerUserId === null || undefined, 'the owner cleared in Tandem');
    expect(linked(kept)!.fields.ownerUserId).toBe(pia.id);
    // Nothing goes back: HighLevel keeps Nia.
    await until(() => (t.emulator.emu.contact(given)?.assignedTo === newcomer.id ? true : undefined), 'HighLevel to keep its owner');
    expect(getOutbox(t.db, loc, linked(given)!.id)).toBeUndefined();
    // Pia's pairing is lost (her Tandem user deactivated): HighLevel's next edit of the other
    // contact, still hers there, leaves her as its Tandem owner.
    deactivateUser(t.db, { locationId: loc, id: pia.id, now: Date.now() });
    expect((await hl('PUT', `/contacts/${kept}`, { lastName: 'Edited' })).status).toBe(200);
    await until(() => linked(kept)?.fields.lastName === 'Edited' || undefined, 'HighLevel’s edit in Tandem');
    expect(linked(kept)!.fields.ownerUserId).toBe(pia.id);
    // Both deleted in HighLevel: no owner of theirs is reported to the tests that follow.
    for (const id of [given, kept]) expect((await hl('DELETE', `/contacts/${id}`)).status).toBe(200);
    await until(() => [given, kept].every((id) => linked(id)?.archivedAt !== null) || undefined, 'both archived in Tandem');
  });

  it('pairs an unmatched HighLevel owner as soon as the vendor adds its Tandem user through the REST API', async () => {
    const email = unique('late.owner');
    const owner = await control(t.highlevelUrl, 'POST', '/users', {
      companyId: t.agency.companyId, firstName: 'Lena', lastName: 'Late', email, type: 'account', role: 'user', locationIds: [loc],
    });
    const id = await hlCreate({ firstName: 'Waiting', email: unique('waiting'), assignedTo: owner.id });
    await until(() => getSyncState(t.db, loc).unmatchedOwners.remote.includes(owner.id) || undefined, 'the unmatched owner reported');
    expect(linked(id)?.fields.ownerUserId).toBeNull();
    // A pull has read it too: the newest contact, at the cursor's instant, which incremental pulls
    // skip once applied (the catch-up sweep below must not).
    updateSyncState(t.db, loc, { nextPullAt: 0 }, Date.now());
    t.services.sync.wake(loc);
    await until(() => getSyncState(t.db, loc).cursor.seenIds.includes(id) || undefined, 'a pull past the contact');
    // Nothing else happens in HighLevel: only the user's creation can bring the next pass before
    // the next scheduled pull (minutes away).
    const key = createApiKey(t.db, { locationId: loc, name: 'vendor', createdBy: null, now: Date.now() }).key;
    const made = await restCall(t.url, 'POST', '/api/v1/users', { key, body: { name: 'Lena Late', email } });
    expect(made.status).toBe(201);
    await until(() => linked(id)?.fields.ownerUserId === made.body.id || undefined, 'the owner on its contact');
    expect(getSyncState(t.db, loc).unmatchedOwners.remote).not.toContain(owner.id);
  });

  it('sends a Tandem owner once it has a HighLevel user, and stops reporting one that owns nothing any more', async () => {
    const admin = { id: 'admin-1', name: 'Ada Admin' };
    updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: admin, now: Date.now() });
    try {
      const agentEmail = unique('agent');
      const agent = createUser(t.db, { locationId: loc, name: 'Dee Agent', email: agentEmail, now: Date.now() });
      const ghost = createUser(t.db, { locationId: loc, name: 'Gus Ghost', email: unique('ghost'), now: Date.now() });
      const mine = createContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Agented', email: unique('agented'), ownerUserId: agent.id }, now: Date.now(), origin: 'local' });
      const haunted = createContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Haunted', email: unique('haunted'), ownerUserId: ghost.id }, now: Date.now(), origin: 'local' });
      t.services.sync.wake(loc);
      await until(() => getSyncState(t.db, loc).lastError?.includes('2 Tandem users own contacts but have no active HighLevel user') || undefined, 'both owners reported');
      const highlevelId = getLinkByContact(t.db, loc, mine.id)!.highlevelId;
      expect(t.emulator.emu.contact(highlevelId)?.assignedTo).toBeFalsy();

      // The ghost owns nothing any more: the next pass stops counting it (no full sweep needed).
      updateContact(t.db, { locationId: loc, id: haunted.id, patch: { ownerUserId: null }, now: Date.now(), origin: 'local' });
      t.services.sync.wake(loc);
      await until(() => getSyncState(t.db, loc).lastError?.startsWith('1 Tandem user owns contacts') || undefined, 'only the agent reported');

      // The agent gets a HighLevel user with the same email: the contact's owner goes out, with no edit in Tandem.
      const hlAgent = await control(t.highlevelUrl, 'POST', '/users', {
        companyId: t.agency.companyId, firstName: 'Dee', lastName: 'Agent', email: agentEmail, type: 'account', role: 'user', locationIds: [loc],
      });
      t.services.sync.usersChanged(loc);
      await until(() => t.emulator.emu.contact(highlevelId)?.assignedTo === hlAgent.id || undefined, 'the owner sent to HighLevel');
      await until(() => getSyncState(t.db, loc).lastError === null || undefined, 'the notice cleared');
    } finally {
      updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'inbound' }, user: admin, now: Date.now() });
    }
  });
});

describe('the loop', () => {
  it('holds a paused location\'s events, and applies them once sync resumes (settings read each pass)', async () => {
    const admin = { id: 'admin-1', name: 'Ada Admin' };
    updateSyncSettings(t.db, { locationId: loc, patch: { paused: true }, user: admin, now: Date.now() });
    try {
      const id = await hlCreate({ firstName: 'Paused', email: unique('paused') });
      const queued = await until(
        () => listInboxEvents(t.db).find((e) => e.type === 'ContactCreate' && JSON.parse(e.body).id === id && e.outcome === 'queued'),
        'the event queued for the loop',
      );
      expect((await t.services.sync.runOnce(loc)).skipped).toBe('paused');
      expect(linked(id)).toBeUndefined();
      expect(listInboxEvents(t.db).find((e) => e.webhookId === queued.webhookId)?.processedAt).toBeNull();

      updateSyncSettings(t.db, { locationId: loc, patch: { paused: false }, user: admin, now: Date.now() });
      t.services.sync.wake(loc);
      await until(() => linked(id), 'the contact after resuming');
    } finally {
      updateSyncSettings(t.db, { locationId: loc, patch: { paused: false }, user: admin, now: Date.now() });
    }
  });

  it('closes the events still queued for a location that is uninstalled, instead of leaving them waiting', async () => {
    const agency = await createAgency(t, { name: 'Leaving Agency', locations: ['Leaving Location'] });
    const gone = agency.locations[0]!.id;
    expect((await installLocation(t, gone, { userId: agency.adminId })).status).toBe(200);
    await firstPassDone(gone);
    const admin = { id: 'admin-1', name: 'Ada Admin' };
    updateSyncSettings(t.db, { locationId: gone, patch: { paused: true }, user: admin, now: Date.now() });
    const id = await hlCreate({ firstName: 'Queued', email: unique('queued') }, gone);
    const queued = await until(
      () => listInboxEvents(t.db).find((e) => e.type === 'ContactCreate' && JSON.parse(e.body).id === id && e.outcome === 'queued'),
      'the event queued for the paused loop',
    );
    expect(syncStatus(t.db, gone).pendingInbound).toBeGreaterThan(0);

    await control(t.highlevelUrl, 'DELETE', '/installs', { appId: t.app.appId, locationId: gone });
    const closed = await until(() => listInboxEvents(t.db).find((e) => e.webhookId === queued.webhookId && e.processedAt !== null), 'the queued event closed');
    expect(closed.outcome).toMatch(/^ignored: location uninstalled/);
    expect(syncStatus(t.db, gone).pendingInbound).toBe(0);
  });

  it('T17 never runs two passes of one location at the same time', async () => {
    await control(t.highlevelUrl, 'DELETE', '/requests');
    // Each pass starts by listing the users (usersRefreshMs: 0); slow answers make any overlap visible.
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'GET', path: '/users/', locationId: loc, delayMs: 100, times: 4 });
    try {
      const passes = [t.services.sync.runOnce(loc), t.services.sync.runOnce(loc), t.services.sync.runOnce(loc)];
      t.services.sync.wake(loc);
      await Promise.all(passes);
    } finally {
      await control(t.highlevelUrl, 'DELETE', '/faults');
    }
    const { requests } = await control(t.highlevelUrl, 'GET', `/requests?method=GET&path=/users/&locationId=${loc}`);
    const spans = (requests as { at: string; durationMs: number }[])
      .map((r) => ({ end: Date.parse(r.at), start: Date.parse(r.at) - r.durationMs }))
      .sort((a, b) => a.end - b.end);
    expect(spans.length).toBeGreaterThanOrEqual(3);
    // The log's times are whole milliseconds: allow one of rounding.
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.end - 1);
  });
});

describe('T05 a 429 storm on one location', () => {
  it('defers that location only; another keeps syncing quickly, and the stormed one catches up', async () => {
    const agency = await createAgency(t, { name: 'Calm Agency', locations: ['Calm Clinic'] });
    const calm = agency.locations[0]!.id;
    expect((await installLocation(t, calm, { userId: agency.adminId })).status).toBe(200);
    await firstPassDone(calm);

    // HighLevel answers the stormed location's first call of every pass (the users list) with a
    // 429 and its rate-limit headers; the emulator matches faults by the location in the query.
    await control(t.highlevelUrl, 'POST', '/faults', {
      locationId: loc,
      method: 'GET',
      path: '/users/',
      status: 429,
      headers: { 'x-ratelimit-max': '100', 'x-ratelimit-remaining': '0', 'x-ratelimit-interval-milliseconds': '1000' },
      body: { statusCode: 429, message: 'Too Many Requests' },
      times: 1000,
    });
    try {
      const stormed = await hlCreate({ firstName: 'Stormed', email: unique('stormed') });
      // The stormed location received its webhook and tried (a 429 answered).
      await until(async () => {
        const { requests } = await control(t.highlevelUrl, 'GET', `/requests?locationId=${loc}&path=/users/`);
        return (requests as { status: number }[]).some((r) => r.status === 429);
      }, 'a 429 for the stormed location');

      const started = Date.now();
      for (let i = 0; i < 5; i++) {
        const id = await hlCreate({ firstName: `Calm${i}`, email: unique(`calm${i}`) }, calm);
        await until(() => linked(id, calm), `calm contact ${i}`, 3000);
      }
      expect(Date.now() - started).toBeLessThan(3000);
      expect(linked(stormed)).toBeUndefined();

      await control(t.highlevelUrl, 'DELETE', '/faults');
      t.services.sync.wake(loc);
      await until(() => linked(stormed), 'the stormed location to catch up', 8000);
    } finally {
      await control(t.highlevelUrl, 'DELETE', '/faults');
    }
  }, 30_000);
});
