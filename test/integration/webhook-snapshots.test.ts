// The sync loop applies a linked contact's webhook snapshot itself, versioned by the event's
// timestamp against the ledger, and re-reads the contact (GET) only when the snapshot cannot say
// everything (server/sync/webhook-drain.ts). Over real HTTP: HighLevel edits go through the
// location's private integration token, crafted events through the signed webhook endpoint. One
// manual clock for both: a change is applied from its snapshot only when stamped more than the
// drain's clock margin after the ledger's last write, which a test moves past explicitly.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getContact, type Contact } from '../../db/contacts.ts';
import { getLinkByRemote } from '../../db/links.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { listInboxEvents, type InboxEvent } from '../../db/webhook-inbox.ts';
import { call, ManualClock, until } from '../helpers/emulator.ts';
import { installedTandem, postWebhook, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem & { location: { id: string } };
let loc: string;
let clock: ManualClock;

function hl(method: string, path: string, body?: unknown) {
  const token = t.emulator.emu.world.locations[loc]!.privateToken;
  return call(t.highlevelUrl, method, path, { token, body });
}

function linked(highlevelId: string): Contact | undefined {
  const link = getLinkByRemote(t.db, loc, highlevelId);
  return link ? getContact(t.db, loc, link.contactId) : undefined;
}

/** Tandem's reads of this one contact (its app's token) since the request log's entry `since`. */
function readsOf(highlevelId: string, since: number): number {
  return t.emulator.emu.requestLog.filter(
    (r) => r.seq > since && r.appId === t.app.appId && r.method === 'GET' && r.path.split('?')[0] === `/contacts/${highlevelId}`,
  ).length;
}

const lastSeq = () => t.emulator.emu.requestLog.at(-1)?.seq ?? 0;

/** A HighLevel contact, created and linked in Tandem, with its ContactCreate event as stored. */
async function linkedContact(body: Record<string, unknown>): Promise<{ id: string; created: InboxEvent }> {
  const res = await hl('POST', '/contacts/', { locationId: loc, email: `${randomUUID().slice(0, 8)}@snapshots.example`, ...body });
  expect(res.status).toBe(201);
  const id = res.body.contact.id as string;
  await until(() => linked(id), 'the contact in Tandem');
  const created = await until(() => listInboxEvents(t.db).find((e) => e.type === 'ContactCreate' && JSON.parse(e.body).id === id && e.processedAt), 'the create applied');
  return { id, created };
}

/** Posts an event like HighLevel's, under a new webhookId, and waits until the loop has applied it. */
async function deliver(event: Record<string, unknown>): Promise<InboxEvent> {
  const webhookId = randomUUID();
  expect((await postWebhook(t, JSON.stringify({ ...event, webhookId }))).status).toBe(200);
  return until(() => listInboxEvents(t.db).find((e) => e.webhookId === webhookId && e.processedAt), 'the event applied');
}

beforeAll(async () => {
  clock = new ManualClock();
  t = await installedTandem({ clock });
  loc = t.location.id;
  await until(() => getSyncState(t.db, loc).lastFullSweepAt !== null, 'the first pull', 10_000);
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('webhook snapshots', () => {
  it('applies an update of a linked contact from the webhook, without reading the contact', async () => {
    const { id } = await linkedContact({ firstName: 'Snap', companyName: 'Snap Co' });
    clock.advance(5_000);
    const since = lastSeq();
    expect((await hl('PUT', `/contacts/${id}`, { firstName: 'Snapped', city: 'Reno' })).status).toBe(200);
    const updated = await until(() => (linked(id)?.fields.firstName === 'Snapped' ? linked(id) : undefined), 'the update in Tandem');
    expect(updated.fields).toMatchObject({ city: 'Reno', companyName: 'Snap Co' });
    expect(readsOf(id, since)).toBe(0);
  });

  it('drops an event older than the version Tandem holds, without reading the contact', async () => {
    const { id, created } = await linkedContact({ firstName: 'Kept' });
    const version = getLinkByRemote(t.db, loc, id)!.remoteUpdatedAt!;
    const since = lastSeq();
    const old = await deliver({ ...JSON.parse(created.body), firstName: 'Older', timestamp: new Date(version - 1).toISOString() });
    expect(old.outcome).toBe('applied: stale');
    expect(linked(id)?.fields.firstName).toBe('Kept');
    expect(readsOf(id, since)).toBe(0);
  });

  it('reads the contact when the payload leaves out a field Tandem holds (cleared, or a thin payload)', async () => {
    const { id, created } = await linkedContact({ firstName: 'Thin', companyName: 'Still There Inc' });
    clock.advance(5_000);
    const since = lastSeq();
    const { companyName: _left, ...thin } = JSON.parse(created.body) as Record<string, unknown>;
    const event = await deliver({ ...thin, firstName: 'Not HighLevel', timestamp: new Date(clock.now()).toISOString() });
    expect(event.outcome).toMatch(/^applied: /);
    expect(readsOf(id, since)).toBe(1);
    // The read, not the payload, is what Tandem applied: HighLevel still has both values.
    expect(linked(id)?.fields).toMatchObject({ firstName: 'Thin', companyName: 'Still There Inc' });
  });

  it('reads the contact when a change is not certainly newer than what Tandem holds', async () => {
    const { id, created } = await linkedContact({ firstName: 'Same' });
    const link = getLinkByRemote(t.db, loc, id)!;
    const since = lastSeq();
    // The ledger's own version (two changes in one millisecond), then a stamp within the clock
    // margin of the ledger's last write (it could be older than a write of Tandem's own).
    await deliver({ ...JSON.parse(created.body), firstName: 'Same Instant', timestamp: new Date(link.remoteUpdatedAt!).toISOString() });
    await deliver({ ...JSON.parse(created.body), firstName: 'Too Close', timestamp: new Date(link.updatedAt + 500).toISOString() });
    expect(readsOf(id, since)).toBe(2);
    expect(linked(id)?.fields.firstName).toBe('Same');
  });

  it('reads the contact when one batch holds two different states with the same stamp', async () => {
    const { id, created } = await linkedContact({ firstName: 'Twice' });
    clock.advance(5_000);
    const admin = { id: 'snapshot-test', name: 'Snapshot test' };
    // Paused, so both events wait in the queue and reach the loop in one batch.
    updateSyncSettings(t.db, { locationId: loc, patch: { paused: true }, user: admin, now: clock.now() });
    try {
      const stamp = new Date(clock.now()).toISOString();
      const ids = [randomUUID(), randomUUID()];
      for (const [i, name] of ['One', 'Two'].entries()) {
        const body = JSON.stringify({ ...JSON.parse(created.body), type: 'ContactUpdate', firstName: name, timestamp: stamp, webhookId: ids[i] });
        expect((await postWebhook(t, body)).status).toBe(200);
      }
      await until(() => ids.every((w) => listInboxEvents(t.db).find((e) => e.webhookId === w)?.outcome === 'queued'), 'both events queued');
      const since = lastSeq();
      updateSyncSettings(t.db, { locationId: loc, patch: { paused: false }, user: admin, now: clock.now() });
      t.services.sync.wake(loc);
      await until(() => ids.every((w) => listInboxEvents(t.db).find((e) => e.webhookId === w)?.processedAt), 'both events applied');
      expect(readsOf(id, since)).toBe(1);
      expect(linked(id)?.fields.firstName).toBe('Twice');
    } finally {
      updateSyncSettings(t.db, { locationId: loc, patch: { paused: false }, user: admin, now: clock.now() });
    }
  });

  it('recognises its own echo at the ledger\'s version without reading the contact', async () => {
    const { id, created } = await linkedContact({ firstName: 'Echo' });
    const version = getLinkByRemote(t.db, loc, id)!.remoteUpdatedAt!;
    const since = lastSeq();
    const echo = await deliver({ ...JSON.parse(created.body), type: 'ContactUpdate', timestamp: new Date(version).toISOString() });
    expect(echo.outcome).toBe('applied: echo');
    expect(readsOf(id, since)).toBe(0);
  });
});
