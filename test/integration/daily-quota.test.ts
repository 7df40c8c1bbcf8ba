// T06: HighLevel's daily request budget runs out for one location. The loop learns the budget from
// the X-RateLimit-*-Daily headers and stops before HighLevel has to refuse it (no 429), defers that
// location until the reset with a plain-words notice on the status strip, keeps another location
// syncing, and finishes the work once the day turns. And HighLevel refusing requests as too many
// (429s) for minutes is said on the status strip too. Injected clock, emulator over HTTP.
import { afterEach, expect, it } from 'vitest';
import { createContact } from '../../db/contacts.ts';
import { getOutbox } from '../../db/outbox.ts';
import { syncStatus } from '../../db/sync-status.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { control, ManualClock } from '../helpers/emulator.ts';
import { createAgency, installedTandem, installLocation, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const DAY_MS = 24 * 60 * 60_000;

it('T06: stops at the daily budget without a 429, says when it resumes, spares other locations, then finishes', async () => {
  // Mid-morning UTC, so the day's end is hours away.
  const clock = new ManualClock(Math.floor(Date.now() / DAY_MS) * DAY_MS + 10 * 3_600_000);
  const tandem = await installedTandem({ clock, sync: { start: false } });
  t = tandem;
  const loc = tandem.location.id;
  const other = await createAgency(tandem, { name: 'Other Agency', locations: ['Other Location'] });
  const otherLoc = other.locations[0]!.id;
  expect((await installLocation(tandem, otherLoc, { userId: other.adminId })).status).toBe(200);
  // The first passes (users, full sweep) while the budget is plentiful.
  expect((await tandem.services.sync.runOnce(loc)).error).toBeUndefined();
  expect((await tandem.services.sync.runOnce(otherLoc)).error).toBeUndefined();

  const used = tandem.emulator.emu.requestLog.filter((r) => r.appId === tandem.app.appId && r.locationId === loc).length;
  await control(tandem.highlevelUrl, 'PATCH', '/config', { rateLimit: { dailyMax: used + 12 } });
  const created = Array.from({ length: 15 }, (_, i) =>
    createContact(tandem.db, { locationId: loc, fields: { ...emptyContact(), firstName: `Daily${i}`, email: `daily${i}@example.com` }, now: clock.now(), origin: 'local' }),
  );
  const seq = tandem.emulator.emu.requestLog.at(-1)?.seq ?? 0;

  // Passes until the loop defers for the day (each pushes what the budget allows).
  let result = await tandem.services.sync.runOnce(loc);
  for (let i = 0; i < 10 && (result.deferredUntil ?? 0) < clock.now() + 3_600_000; i++) result = await tandem.services.sync.runOnce(loc);
  const nextDay = Math.floor(clock.now() / DAY_MS) * DAY_MS + DAY_MS;
  expect(result.deferredUntil).toBeGreaterThanOrEqual(nextDay);
  expect(result.deferredUntil).toBeLessThanOrEqual(nextDay + 60_000);
  const answered = tandem.emulator.emu.requestLog.filter((r) => r.seq > seq && r.appId === tandem.app.appId);
  expect(answered.filter((r) => r.status === 429)).toEqual([]);
  const waiting = created.filter((c) => getOutbox(tandem.db, loc, c.id) !== undefined);
  expect(waiting.length).toBeGreaterThan(0);
  expect(waiting.length).toBeLessThan(created.length);
  expect(syncStatus(tandem.db, loc).lastError?.message).toMatch(/daily request limit for this sub-account is used up; sync resumes at \d{4}-\d\d-\d\d 00:0\d UTC/);

  // Another location's budget is its own: it still syncs today.
  const elsewhere = createContact(tandem.db, { locationId: otherLoc, fields: { ...emptyContact(), firstName: 'Elsewhere', email: 'elsewhere@example.com' }, now: clock.now(), origin: 'local' });
  expect((await tandem.services.sync.runOnce(otherLoc)).deferredUntil).toBeUndefined();
  expect(getOutbox(tandem.db, otherLoc, elsewhere.id)).toBeUndefined();

  // The day turns (with a full day's budget): the rest goes out and the notice clears.
  await control(tandem.highlevelUrl, 'PATCH', '/config', { rateLimit: { dailyMax: 200_000 } });
  clock.set(nextDay + 1_000);
  result = await tandem.services.sync.runOnce(loc);
  expect(result.error).toBeUndefined();
  expect(created.filter((c) => getOutbox(tandem.db, loc, c.id) !== undefined)).toEqual([]);
  expect(syncStatus(tandem.db, loc).lastError).toBeNull();
  expect(tandem.emulator.emu.requestLog.filter((r) => r.seq > seq && r.status === 429)).toEqual([]);
}, 60_000);

it('says so on the status strip when HighLevel refuses requests as too many for more than a minute, and clears it once they go through', async () => {
  const clock = new ManualClock();
  const tandem = await installedTandem({ clock, sync: { start: false } });
  t = tandem;
  const loc = tandem.location.id;
  expect((await tandem.services.sync.runOnce(loc)).error).toBeUndefined();
  await control(tandem.highlevelUrl, 'POST', '/faults', { path: '/contacts', status: 429, times: 100_000 });
  const c = createContact(tandem.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Stormy', email: 'stormy@example.com' }, now: clock.now(), origin: 'local' });

  // The first 429s are pacing at work: nothing said.
  let result = await tandem.services.sync.runOnce(loc);
  expect(result.deferredUntil).toBeGreaterThan(clock.now());
  expect(syncStatus(tandem.db, loc).lastError).toBeNull();
  // Still refused a minute and more later: the strip says since when, and when Tandem tries again.
  const began = clock.now();
  while (clock.now() - began < 61_000) {
    clock.set(Math.max(result.deferredUntil ?? clock.now(), clock.now()) + 1);
    result = await tandem.services.sync.runOnce(loc);
  }
  expect(syncStatus(tandem.db, loc).lastError?.message).toMatch(/^HighLevel has been refusing Tandem’s requests as too many since \d{4}-\d\d-\d\d \d\d:\d\d UTC; changes wait, and Tandem tries again at /);
  expect(getOutbox(tandem.db, loc, c.id)).toBeDefined();

  await control(tandem.highlevelUrl, 'DELETE', '/faults');
  clock.set(Math.max(result.deferredUntil ?? clock.now(), clock.now()) + 1);
  expect((await tandem.services.sync.runOnce(loc)).error).toBeUndefined();
  expect(getOutbox(tandem.db, loc, c.id)).toBeUndefined();
  expect(syncStatus(tandem.db, loc).lastError).toBeNull();
}, 60_000);
