// CONTRACT §6 / §9.8: budgets per app per resource, the X-RateLimit-* headers, 429 past either limit.
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../emulator/server.ts';
import { call, ManualClock, testEmulator } from '../helpers/emulator.ts';
import { addLocation, addOauthToken } from '../helpers/world.ts';

let running: RunningEmulator | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const READ = ['locations.readonly', 'contacts.readonly'];

describe('rate limits', () => {
  it('counts a burst window per app and location, reports the headers, and answers 429 past it', async () => {
    const clock = new ManualClock();
    running = await testEmulator({ clock, config: { rateLimit: { burstMax: 5, burstWindowMs: 1000, dailyMax: 1000 } } });
    const { emu, url } = running;
    const a = addLocation(emu);
    const b = addLocation(emu);
    const appA = addOauthToken(emu, { authClass: 'Location', companyId: a.companyId, locationId: a.location.id, scopes: READ, appId: 'app1' });
    const appB = addOauthToken(emu, { authClass: 'Location', companyId: b.companyId, locationId: b.location.id, scopes: READ, appId: 'app1' });
    const otherApp = addOauthToken(emu, { authClass: 'Location', companyId: a.companyId, locationId: a.location.id, scopes: READ, appId: 'app2' });
    const get = (token: string, id: string) => call(url, 'GET', `/locations/${id}`, { token });

    const first = await get(appA, a.location.id);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-max')).toBe('5');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('4');
    expect(first.headers.get('x-ratelimit-interval-milliseconds')).toBe('1000');
    expect(first.headers.get('x-ratelimit-limit-daily')).toBe('1000');
    expect(first.headers.get('x-ratelimit-daily-remaining')).toBe('999');
    expect(Number(first.headers.get('x-ratelimit-daily-reset'))).toBeGreaterThan(0);
    for (let i = 0; i < 4; i++) expect((await get(appA, a.location.id)).status).toBe(200);

    const limited = await get(appA, a.location.id);
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ statusCode: 429, message: 'Too Many Requests' });
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');

    // Another location of the same app, and another app on the same location, have their own budgets.
    expect((await get(appB, b.location.id)).status).toBe(200);
    expect((await get(otherApp, a.location.id)).status).toBe(200);

    clock.advance(1000);
    expect((await get(appA, a.location.id)).status).toBe(200);
  });

  it('answers 429 once the daily budget is spent, until the next UTC day', async () => {
    const clock = new ManualClock(Date.parse('2026-03-01T23:59:00.000Z'));
    running = await testEmulator({ clock, config: { rateLimit: { burstMax: 100, burstWindowMs: 10_000, dailyMax: 3 } } });
    const { emu, url } = running;
    const a = addLocation(emu);
    const token = addOauthToken(emu, { authClass: 'Location', companyId: a.companyId, locationId: a.location.id, scopes: READ });
    const get = () => call(url, 'GET', `/locations/${a.location.id}`, { token });

    for (let i = 0; i < 3; i++) expect((await get()).status).toBe(200);
    const spent = await get();
    expect(spent.status).toBe(429);
    expect(spent.headers.get('x-ratelimit-daily-remaining')).toBe('0');
    expect(spent.headers.get('x-ratelimit-daily-reset')).toBe(String(60_000));

    clock.advance(60_000);
    const nextDay = await get();
    expect(nextDay.status).toBe(200);
    expect(nextDay.headers.get('x-ratelimit-daily-remaining')).toBe('2');
  });
});
