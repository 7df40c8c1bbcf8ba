// T24: a restart after downtime, without a thundering herd. Nine locations are installed and in
// sync; Tandem is then down for 25 hours (every access token expires, every location's daily
// sweep comes due) while people keep editing in HighLevel, whose webhooks are lost (HighLevel
// redelivers only after a 429, never to a closed port). A new process on the same data must catch
// every location up with its own loop started, and:
//   - work on several locations at once, never more than the loop's concurrency allows (a 30 ms
//     delay on HighLevel's answers makes the passes overlap, so the count is seen, not assumed),
//   - refresh each location's token once (no refresh storm, no invalid_grant from a second use),
//   - take no 429,
//   - end with both sides equal: every HighLevel contact linked once, with HighLevel's values,
//     nothing pending in the outbox or the inbox.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findContactsByEmail, getContact } from '../../db/contacts.ts';
import { getLinkByRemote } from '../../db/links.ts';
import { outboxCounts } from '../../db/outbox.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { listInboxEvents } from '../../db/webhook-inbox.ts';
import { call, control, ManualClock, until } from '../helpers/emulator.ts';
import { createAgency, installLocation, startTestTandem, type TestAgency, type TestTandem } from '../helpers/tandem.ts';

const LOCATIONS = 9;
const MAX_CONCURRENT = 3;
const CONTACTS = 4;
const HOUR = 60 * 60_000;
/** Fixed so the restarted process opens the tokens the first one stored. */
const env = { TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') };
const SYNC = { maxConcurrent: MAX_CONCURRENT };

let clock: ManualClock;
let first: TestTandem;
let agency: TestAgency;

function hl(locationId: string, method: string, path: string, body?: unknown) {
  const token = first.emulator.emu.world.locations[locationId]!.privateToken;
  return call(first.highlevelUrl, method, path, { token, body });
}

/** Every HighLevel contact of the location linked to one Tandem contact with HighLevel's names. */
function inSync(t: TestTandem, locationId: string): boolean {
  const remote = [...first.emulator.emu.contactIds(locationId)].map((id) => first.emulator.emu.contact(id)).filter((c) => c !== null);
  if (remote.length === 0) return false;
  return remote.every((doc) => {
    const link = getLinkByRemote(t.db, locationId, doc.id as string);
    const local = link ? getContact(t.db, locationId, link.contactId) : undefined;
    return local !== undefined && local.fields.firstName === doc.firstName && local.fields.lastName === (doc.lastName ?? null);
  });
}

beforeAll(async () => {
  clock = new ManualClock();
  first = await startTestTandem({ clock, env, sync: SYNC });
  agency = await createAgency(first, { locations: Array.from({ length: LOCATIONS }, (_, i) => `Branch ${i + 1}`) });
  for (const location of agency.locations) {
    for (let i = 0; i < CONTACTS; i++) {
      const res = await hl(location.id, 'POST', '/contacts/', { locationId: location.id, firstName: `P${i}`, lastName: 'Before', email: `p${i}.${location.id.toLowerCase()}@example.com` });
      expect(res.status).toBe(201);
    }
    const installed = await installLocation(first, location.id, { userId: agency.adminId });
    expect(installed.status).toBe(200);
  }
  // The first process imports every location with its own loop.
  await until(() => agency.locations.every((l) => inSync(first, l.id)), 'every location imported', 20_000);
}, 60_000);

afterAll(async () => {
  await first?.close();
});

describe('T24 restart after downtime', () => {
  it('catches every location up, a bounded number at a time, one token refresh each, no 429', async () => {
    await first.tandem.close();
    clock.advance(25 * HOUR);
    // Work in HighLevel while Tandem is down: an edit and a new contact per location.
    for (const location of agency.locations) {
      const [someone] = [...first.emulator.emu.contactIds(location.id)];
      expect((await hl(location.id, 'PUT', `/contacts/${someone}`, { lastName: 'During downtime' })).status).toBe(200);
      const created = await hl(location.id, 'POST', '/contacts/', { locationId: location.id, firstName: 'New', lastName: 'While down', email: `new.${location.id.toLowerCase()}@example.com` });
      expect(created.status).toBe(201);
    }
    await first.emulator.emu.webhooks.idle();
    const lost = first.emulator.emu.webhooks.log.filter((a) => a.outcome === 'failed' && a.body.includes('While down'));
    expect(lost.length).toBe(LOCATIONS);

    await control(first.highlevelUrl, 'DELETE', '/requests');
    // Slow answers, so passes of different locations overlap in time and their number shows.
    await control(first.highlevelUrl, 'POST', '/faults', { path: '/contacts', delayMs: 30, times: 10_000 });
    const emu = first.emulator.emu;
    const inFlight = new Map<string, number>();
    let mostLocations = 0;
    const takeFault = emu.takeFault.bind(emu);
    const logRequest = emu.logRequest.bind(emu);
    emu.takeFault = (method, path, locationId) => {
      if (locationId) inFlight.set(locationId, (inFlight.get(locationId) ?? 0) + 1);
      mostLocations = Math.max(mostLocations, [...inFlight.values()].filter((n) => n > 0).length);
      return takeFault(method, path, locationId);
    };
    emu.logRequest = (entry) => {
      if (entry.locationId && (inFlight.get(entry.locationId) ?? 0) > 0) inFlight.set(entry.locationId, inFlight.get(entry.locationId)! - 1);
      logRequest(entry);
    };

    const again = await startTestTandem({ clock, env, dataDir: first.dataDir, reuse: { emulator: first.emulator, app: first.app }, sync: SYNC });
    try {
      await until(() => agency.locations.every((l) => inSync(again, l.id)), 'every location caught up', 30_000);
      await until(() => agency.locations.every((l) => getSyncState(again.db, l.id).cursor.run === null), 'every pull finished', 10_000);

      expect(mostLocations).toBeGreaterThan(1);
      expect(mostLocations).toBeLessThanOrEqual(MAX_CONCURRENT);
      const { requests } = await control<{ requests: { path: string; status: number }[] }>(first.highlevelUrl, 'GET', '/requests');
      expect(requests.filter((r) => r.status === 429)).toEqual([]);
      // Nothing was installed meanwhile: every token request is a refresh, one per location.
      expect(requests.filter((r) => r.path === '/oauth/token').map((r) => r.status)).toEqual(Array<number>(LOCATIONS).fill(200));

      for (const l of agency.locations) {
        // The edit and the new contact came by the catch-up pull; nobody was duplicated.
        expect(findContactsByEmail(again.db, l.id, `new.${l.id.toLowerCase()}@example.com`)).toHaveLength(1);
        for (let i = 0; i < CONTACTS; i++) expect(findContactsByEmail(again.db, l.id, `p${i}.${l.id.toLowerCase()}@example.com`)).toHaveLength(1);
        expect(outboxCounts(again.db, l.id).pending).toBe(0);
      }
      expect(listInboxEvents(again.db).filter((e) => e.processedAt === null)).toEqual([]);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('after a short stop, the edits and deletions made meanwhile arrive at the start, not at the next scheduled pull', async () => {
    const reuse = { emulator: first.emulator, app: first.app };
    const l = agency.locations[0]!;
    const running = await startTestTandem({ clock, env, dataDir: first.dataDir, reuse, sync: SYNC });
    await until(() => inSync(running, l.id) && getSyncState(running.db, l.id).cursor.run === null, 'the location in step', 20_000);
    await running.close();
    // A minute down: the scheduled pull (every 5 minutes) is not due at the next start, the clock
    // stands still from there on, and the webhooks of the minute went nowhere.
    clock.advance(60_000);
    const [edited, deleted] = [...first.emulator.emu.contactIds(l.id)].filter((id) => first.emulator.emu.contact(id));
    expect((await hl(l.id, 'PUT', `/contacts/${edited}`, { lastName: 'Short stop' })).status).toBe(200);
    expect((await hl(l.id, 'DELETE', `/contacts/${deleted}`)).status).toBe(200);
    await first.emulator.emu.webhooks.idle();

    const next = await startTestTandem({ clock, env, dataDir: first.dataDir, reuse, sync: SYNC });
    try {
      const contactOf = (id: string) => {
        const link = getLinkByRemote(next.db, l.id, id);
        return link ? getContact(next.db, l.id, link.contactId) : undefined;
      };
      await until(() => contactOf(edited!)?.fields.lastName === 'Short stop' || undefined, 'the edit made while Tandem was stopped', 20_000);
      await until(() => (contactOf(deleted!)?.archivedAt ?? null) !== null || undefined, 'the deletion made while Tandem was stopped', 20_000);
      expect(getLinkByRemote(next.db, l.id, deleted!)!.remoteDeletedAt).not.toBeNull();
    } finally {
      await next.close();
    }
  }, 60_000);
});
