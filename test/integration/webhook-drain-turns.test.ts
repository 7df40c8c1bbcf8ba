// The sync loop applies a burst of webhooks about linked contacts from their snapshots (no read,
// so nothing to wait for) CONTACTS_PER_TURN at a time, letting the event loop run in between: the
// webhooks arriving meanwhile are acknowledged instead of waiting for the whole batch
// (server/sync/webhook-drain.ts). Over real HTTP, passes driven by hand on a manual clock.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getContact } from '../../db/contacts.ts';
import { getLinkByRemote } from '../../db/links.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { listInboxEvents, queuedInboxEvents } from '../../db/webhook-inbox.ts';
import { CONTACTS_PER_TURN } from '../../server/sync/webhook-drain.ts';
import { call, ManualClock, until } from '../helpers/emulator.ts';
import { installedTandem, type TestTandem } from '../helpers/tandem.ts';

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

beforeAll(async () => {
  clock = new ManualClock();
  t = await installedTandem({ clock, sync: { start: false } });
  loc = t.location.id;
  await syncAll();
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('webhook drain', () => {
  it('applies a burst of snapshots a few contacts at a time, other work running in between', async () => {
    const n = 3 * CONTACTS_PER_TURN + 5;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await hl('POST', '/contacts/', { locationId: loc, firstName: `Burst${i}`, email: `burst${i}.${randomUUID().slice(0, 6)}@example.com` });
      ids.push(res.body.contact.id as string);
    }
    await t.emulator.emu.webhooks.idle();
    await t.services.inbox.runOnce();
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
});
