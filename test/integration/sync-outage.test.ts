// The continuous sync through a HighLevel outage (QA): a failing search does not hold back Tandem's
// changes, a change in HighLevel after the outage is not held back by the grown backoff of the
// passes that failed during it, and Tandem changes whose sends failed go as soon as HighLevel
// answers again, not when each one's own backoff ends. A 429 that spends the day is the daily limit
// at once. Real Tandem against the emulator, manual clock.
import { afterEach, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { getContact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { getOutbox } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { PULL_INTERVAL_MS } from '../../server/sync/reconcile.ts';
import { call, control, ManualClock, until } from '../helpers/emulator.ts';
import { restCall } from '../helpers/rest.ts';
import { installedTandem, type TestTandem } from '../helpers/tandem.ts';

let t: (TestTandem & { location: { id: string } }) | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function setUp(sync: NonNullable<Parameters<typeof installedTandem>[0]>['sync']) {
  const clock = new ManualClock();
  const tandem = await installedTandem({ clock, sync });
  t = tandem;
  const loc = tandem.location.id;
  updateSyncSettings(tandem.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: { id: 'admin', name: 'Admin' }, now: clock.now() });
  const key = createApiKey(tandem.db, { locationId: loc, name: 'test', createdBy: null, now: clock.now() }).key;
  const rest = async (method: string, path: string, body?: unknown) => {
    const res = await restCall(tandem.url, method, path, { key, ...(body !== undefined ? { body } : {}) });
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    return res.body;
  };
  return { tandem, clock, loc, rest };
}

it('a failing search does not hold back Tandem’s changes: they go out in the same pass', async () => {
  const { tandem, clock, loc, rest } = await setUp({ start: false });
  const id = (await rest('POST', '/api/v1/contacts', { firstName: 'Ada', email: 'ada@example.com' })).id as string;
  await tandem.services.sync.runOnce(loc);
  const highlevelId = getLinkByContact(tandem.db, loc, id)!.highlevelId;

  await control(tandem.highlevelUrl, 'POST', '/faults', { path: '/contacts/search', status: 503, times: 1000 });
  clock.advance(PULL_INTERVAL_MS + 1);
  await rest('PATCH', `/api/v1/contacts/${id}`, { companyName: 'Through The Outage' });
  const result = await tandem.services.sync.runOnce(loc);
  expect(result.error).toBeDefined();
  expect(tandem.emulator.emu.contact(highlevelId)!.companyName).toBe('Through The Outage');
  expect(getOutbox(tandem.db, loc, id)).toBeUndefined();
});

it('sends the changes whose sends failed during an outage as soon as HighLevel answers again', async () => {
  const { tandem, clock, loc, rest } = await setUp({ start: false });
  const id = (await rest('POST', '/api/v1/contacts', { firstName: 'Bea', email: 'bea@example.com' })).id as string;
  await tandem.services.sync.runOnce(loc);
  const highlevelId = getLinkByContact(tandem.db, loc, id)!.highlevelId;

  await control(tandem.highlevelUrl, 'POST', '/faults', { path: '/contacts', status: 503, times: 10_000 });
  clock.advance(PULL_INTERVAL_MS + 1);
  await rest('PATCH', `/api/v1/contacts/${id}`, { companyName: 'After The Outage' });
  expect((await tandem.services.sync.runOnce(loc)).error).toBeDefined();
  const waiting = getOutbox(tandem.db, loc, id)!;
  expect(waiting).toMatchObject({ status: 'pending', attempts: 1 });
  expect(waiting.nextAttemptAt).toBeGreaterThan(clock.now());

  // Back: the clock has not moved, so the row's own backoff has not ended.
  await control(tandem.highlevelUrl, 'DELETE', '/faults');
  for (let i = 0; i < 3 && getOutbox(tandem.db, loc, id); i++) await tandem.services.sync.runOnce(loc);
  expect(tandem.emulator.emu.contact(highlevelId)!.companyName).toBe('After The Outage');
});

it('a change in HighLevel after an outage comes in within seconds of the last failure, not at the grown backoff', async () => {
  const { tandem, clock, loc, rest } = await setUp({ maxSleepMs: 20, passGapMs: 0 });
  const id = (await rest('POST', '/api/v1/contacts', { firstName: 'Cal', email: 'cal@example.com' })).id as string;
  const highlevelId = await until(() => getLinkByContact(tandem.db, loc, id)?.highlevelId, 'Cal in HighLevel');

  // Every pass fails for a while: the backoff grows to minutes.
  await control(tandem.highlevelUrl, 'POST', '/faults', { path: '/contacts', status: 503, times: 100_000 });
  for (let i = 0; i < 5; i++) {
    clock.advance(PULL_INTERVAL_MS + 1);
    expect((await tandem.services.sync.runOnce(loc)).error).toBeDefined();
  }
  await control(tandem.highlevelUrl, 'DELETE', '/faults');

  // HighLevel is back and someone edits there: its webhook wakes the loop.
  const token = tandem.emulator.emu.world.locations[loc]!.privateToken;
  const res = await call(tandem.highlevelUrl, 'PUT', `/contacts/${highlevelId}`, { token, body: { companyName: 'Edited After' } });
  expect(res.status).toBe(200);
  clock.advance(16_000);
  await until(() => getContact(tandem.db, loc, id)?.fields.companyName === 'Edited After', 'the edit in Tandem', 5_000);
  await until(() => getSyncState(tandem.db, loc).lastError === null, 'the outage notice gone', 5_000);
});

it('a 429 that spends the day is the daily limit at once', async () => {
  const { tandem, loc, rest } = await setUp({ start: false });
  await control(tandem.highlevelUrl, 'PATCH', '/config', { rateLimit: { dailyMax: 1 } });
  await rest('POST', '/api/v1/contacts', { firstName: 'Dee', email: 'dee@example.com' });
  // One pass: the next is not due before the day's reset, so it is this one that has to say it.
  await tandem.services.sync.runOnce(loc);
  expect(getSyncState(tandem.db, loc).lastError).toMatch(/^HighLevel’s daily request limit for this sub-account is used up/);
});
