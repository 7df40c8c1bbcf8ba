// How the push spends a location's budget (server/sync/outbound.ts), over real HTTP against the
// emulator with its rate limit shortened to match the gate: several rows at once through the one
// gate without a 429, one lookup per new contact (email and phone in one question), and a lookup
// whose create the gate deferred is not asked again by the next pass (unless the contact changed).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { createContact, updateContact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { outboxCounts } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { LocationApi } from '../../server/highlevel/contacts.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { pushPending, type PushMemory, type PushResult } from '../../server/sync/outbound.ts';
import { control, ManualClock, testEmulator } from '../helpers/emulator.ts';
import { gatedTestLocationApi, testLocationApi } from '../helpers/location-api.ts';
import { RateBudget } from '../../server/highlevel/rate-budget.ts';
import { addLocation, addOauthToken } from '../helpers/world.ts';
import { memoryDatabase } from '../helpers/database.ts';

const SCOPES = ['contacts.readonly', 'contacts.write', 'users.readonly'];
const WINDOW_MS = 1000;

let emulator: RunningEmulator;
let clock: ManualClock;
let database: Database;
let db: Db;
let locationId: string;
let token: string;
let inFlight = 0;
let maxInFlight = 0;

/** The location's API behind a gate of `burstMax` per window, the emulator enforcing the same. */
async function gatedApi(burstMax: number): Promise<LocationApi> {
  const api = await gatedTestLocationApi(emulator.url, { locationId, clock, tokens: token, burstMax, windowMs: WINDOW_MS });
  // An observer, not a fake: every call goes to the emulator; this counts how many overlap.
  const observed = <A extends unknown[], R>(call: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      return await call(...args);
    } finally {
      inFlight--;
    }
  };
  return { ...api, findDuplicate: observed(api.findDuplicate), createContact: observed(api.createContact) };
}

function localCreate(i: number) {
  const fields = { ...emptyContact(), firstName: `P${i}`, email: `p${i}@example.com`, phone: `+1415555${String(i).padStart(4, '0')}` };
  return createContact(db, { locationId, fields, now: clock.now(), origin: 'local' });
}

type Logged = { method: string; path: string; status: number };
async function requestLog(): Promise<Logged[]> {
  return (await control<{ requests: Logged[] }>(emulator.url, 'GET', '/requests')).requests;
}

/** Passes as the supervisor runs them: a deferred pass runs again at its retryAt. */
async function pushUntilEmpty(api: LocationApi, concurrency: number, memory: PushMemory): Promise<PushResult[]> {
  const results: PushResult[] = [];
  while (outboxCounts(db, locationId).pending > 0) {
    if (results.length > 200) throw new Error('the outbox did not empty in 200 passes');
    const r = await pushPending({ db, clock, api, random: () => 0.5, concurrency, memory }, locationId);
    results.push(r);
    if (r.deferred !== null) clock.set(Math.max(clock.now(), r.deferred));
  }
  return results;
}

beforeEach(async () => {
  clock = new ManualClock();
  emulator = await testEmulator({ clock });
  const added = addLocation(emulator.emu, { name: 'Cedar Dental' });
  locationId = added.location.id;
  token = addOauthToken(emulator.emu, { authClass: 'Location', companyId: added.companyId, locationId, scopes: SCOPES });
  database = memoryDatabase();
  db = database.db;
  inFlight = 0;
  maxInFlight = 0;
});

afterEach(async () => {
  await emulator.close();
  database.close();
});

describe('push pacing', () => {
  it('pushes several rows at once through the one gate: two requests per new contact, no 429', async () => {
    const api = await gatedApi(10);
    const ids = Array.from({ length: 12 }, (_, i) => localCreate(i).id);
    const results = await pushUntilEmpty(api, 4, { lookups: new Map() });

    expect(ids.every((id) => getLinkByContact(db, locationId, id))).toBe(true);
    expect(new Set(ids.map((id) => getLinkByContact(db, locationId, id)!.highlevelId)).size).toBe(12);
    expect(results.reduce((n, r) => n + r.sent, 0)).toBe(12);
    expect(results.some((r) => r.deferred !== null)).toBe(true);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(4);
    const log = await requestLog();
    expect(log.filter((r) => r.status === 429)).toEqual([]);
    // No lookup repeated, even across the deferrals between windows.
    expect(log.filter((r) => r.path.startsWith('/contacts/search/duplicate'))).toHaveLength(12);
    expect(log.filter((r) => r.method === 'POST' && r.path === '/contacts/')).toHaveLength(12);
  });

  it('asks HighLevel first when it starts, so a window an earlier process spent is not overrun', async () => {
    const api = await gatedApi(20);
    // The process before a restart spent 17 of this window (the same app and location: one count at HighLevel).
    const before = testLocationApi(emulator.url, { locationId, clock, tokens: token, budget: new RateBudget({ clock, max: 20, intervalMs: WINDOW_MS }) });
    for (let i = 0; i < 17; i++) await before.findDuplicate({ email: `earlier${i}@example.com` });
    for (let i = 0; i < 6; i++) localCreate(i);
    await control(emulator.url, 'DELETE', '/requests');

    // Four rows at once would send four lookups into the three requests left; the first goes alone,
    // and its answer says how many are left.
    await pushUntilEmpty(api, 4, { lookups: new Map() });
    const log = await requestLog();
    expect(log.filter((r) => r.status === 429)).toEqual([]);
    expect(log.filter((r) => r.method === 'POST' && r.path === '/contacts/')).toHaveLength(6);
  });

  it('one row at a time by default', async () => {
    const api = await gatedApi(10);
    for (let i = 0; i < 3; i++) localCreate(i);
    const r = await pushPending({ db, clock, api, random: () => 0.5 }, locationId);
    expect(r).toMatchObject({ sent: 3, deferred: null });
    expect(maxInFlight).toBe(1);
  });

  it('begins the push of a linked contact only with room for its read and writes: a window freeing one slot at a time does not starve it', async () => {
    // Three requests per window (the gate keeps 2 of 5 free).
    const api = await gatedApi(5);
    const memory: PushMemory = { lookups: new Map() };
    updateSyncSettings(db, { locationId, patch: { updateDirection: 'bidirectional' }, user: { id: 'test', name: null }, now: clock.now() });
    const a = localCreate(1);
    await pushUntilEmpty(api, 1, memory);
    const { highlevelId } = getLinkByContact(db, locationId, a.id)!;
    clock.advance(WINDOW_MS);
    // Other work fills the window a millisecond apart, so it frees one slot at a time.
    for (let i = 0; i < 3; i++) {
      await api.getContact(highlevelId);
      clock.advance(1);
    }
    updateContact(db, { locationId, id: a.id, patch: { firstName: 'Renamed' }, tags: { add: ['vip'], remove: [] }, now: clock.now(), origin: 'local' });
    await control(emulator.url, 'DELETE', '/requests');

    // Begun on one free slot, each attempt spent its read and had its write refused, for ever.
    const results = await pushUntilEmpty(api, 1, memory);
    expect(results.reduce((n, r) => n + r.sent, 0)).toBe(1);
    expect(emulator.emu.contact(highlevelId)).toMatchObject({ firstName: 'Renamed', tags: ['vip'] });
    const log = await requestLog();
    expect(log.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /contacts/${highlevelId}`, `PUT /contacts/${highlevelId}`, `POST /contacts/${highlevelId}/tags`]);
  });

  it('does not ask again for a lookup whose create was deferred, unless the contact changed since', async () => {
    // One request per window (the gate keeps 2 of 3 free).
    const api = await gatedApi(3);
    const memory: PushMemory = { lookups: new Map() };
    const a = localCreate(1);
    const first = await pushPending({ db, clock, api, random: () => 0.5, memory }, locationId);
    expect(first).toMatchObject({ sent: 0, deferred: clock.now() + WINDOW_MS, deferredReason: 'burst' });
    clock.set(first.deferred!);
    expect(await pushPending({ db, clock, api, random: () => 0.5, memory }, locationId)).toMatchObject({ sent: 1, deferred: null });
    expect(getLinkByContact(db, locationId, a.id)).toMatchObject({ contactId: a.id });
    expect((await requestLog()).map((r) => `${r.method} ${r.path.split('?')[0]}`)).toEqual(['GET /contacts/search/duplicate', 'POST /contacts/']);
    expect(memory.lookups.size).toBe(0);

    // A contact edited between the lookup and its create is asked about again (its email may have changed).
    clock.advance(WINDOW_MS);
    const b = localCreate(2);
    const deferred = await pushPending({ db, clock, api, random: () => 0.5, memory }, locationId);
    expect(deferred).toMatchObject({ sent: 0, deferred: clock.now() + WINDOW_MS, deferredReason: 'burst' });
    updateContact(db, { locationId, id: b.id, patch: { email: 'changed@example.com' }, now: clock.now(), origin: 'local' });
    await pushUntilEmpty(api, 1, memory);
    const lookups = (await requestLog()).filter((r) => r.path.startsWith('/contacts/search/duplicate'));
    expect(lookups).toHaveLength(3);
    expect(getLinkByContact(db, locationId, b.id)).toMatchObject({ base: expect.objectContaining({ email: 'changed@example.com' }) });
  });
});
