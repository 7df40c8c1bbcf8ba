// A location HighLevel reports inactive ("Location is not active") is paused with its tokens kept,
// and becomes active again by itself once HighLevel reactivates it (the same refresh token works).
import { afterEach, expect, it } from 'vitest';
import { LocationPausedError } from '../../server/highlevel/token-provider.ts';
import { control, ManualClock } from '../helpers/emulator.ts';
import { installationOf, installedTandem, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

it('pauses an inactive location, keeps probing, and resumes when HighLevel reactivates it', async () => {
  const clock = new ManualClock(Date.now());
  const tandem = await installedTandem({ clock, sync: { start: false } });
  t = tandem;
  const id = tandem.location.id;
  await control(tandem.highlevelUrl, 'PATCH', `/locations/${id}`, { active: false });

  const current = await tandem.services.tokens.locationToken(id);
  await expect(tandem.services.tokens.refreshLocationToken(id, current)).rejects.toBeInstanceOf(LocationPausedError);
  expect(installationOf(tandem, id)?.status).toBe('paused');

  clock.advance(16 * 60_000);
  await tandem.services.sync.probePausedLocations();
  expect(installationOf(tandem, id)?.status).toBe('paused');

  await control(tandem.highlevelUrl, 'PATCH', `/locations/${id}`, { active: true });
  clock.advance(16 * 60_000);
  await tandem.services.sync.probePausedLocations();
  expect(installationOf(tandem, id)).toMatchObject({ status: 'active', statusReason: null });
  // The refreshed token works against HighLevel.
  const token = await tandem.services.tokens.locationToken(id);
  const res = await fetch(`${tandem.highlevelUrl}/locations/${id}`, { headers: { authorization: `Bearer ${token}`, version: '2021-07-28' } });
  expect(res.status).toBe(200);
});
