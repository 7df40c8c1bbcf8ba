// A location HighLevel reports inactive ("Location is not active") is paused with its tokens kept,
// and becomes active again by itself once HighLevel reactivates it (the same refresh token works):
// at its next probe, or at once when HighLevel's LocationUpdate comes. An agency install that
// reaches a location while it is inactive installs it paused, and its token is minted once it is active.
import { afterEach, expect, it } from 'vitest';
import { hasTokens } from '../../db/tokens.ts';
import { LocationPausedError, PAUSED_REASON } from '../../server/highlevel/token-provider.ts';
import { AUTHORIZATION_GRACE_MS } from '../../server/installs/installs.ts';
import { control, ManualClock } from '../helpers/emulator.ts';
import {
  createAgency,
  installAgency,
  installationOf,
  installedTandem,
  settle,
  startTestTandem,
  waitForInbox,
  waitForInstallation,
  type TestTandem,
} from '../helpers/tandem.ts';

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

it('asks HighLevel at once when its LocationUpdate comes for a paused location, not 15 minutes later', async () => {
  const clock = new ManualClock(Date.now());
  const tandem = await installedTandem({ clock });
  t = tandem;
  const id = tandem.location.id;
  await control(tandem.highlevelUrl, 'PATCH', `/locations/${id}`, { active: false });
  const current = await tandem.services.tokens.locationToken(id);
  await expect(tandem.services.tokens.refreshLocationToken(id, current)).rejects.toBeInstanceOf(LocationPausedError);
  expect(installationOf(tandem, id)?.status).toBe('paused');
  // Probed now, while still inactive: its next probe is PAUSED_PROBE_MS away, and the clock stands
  // still, so nothing but the webhook can bring it back.
  await tandem.services.sync.probePausedLocations();
  expect(installationOf(tandem, id)?.status).toBe('paused');

  // The deactivation's own LocationUpdate came before Tandem knew: nothing to ask then.
  const first = await waitForInbox(tandem, (e) => e.type === 'LocationUpdate' && e.processedAt !== null, 'the first LocationUpdate processed');
  expect(first.outcome).toBe('ignored: not a location Tandem holds paused');

  // The reactivation's LocationUpdate (CONTRACT §5.3) is the only thing that happens.
  await control(tandem.highlevelUrl, 'PATCH', `/locations/${id}`, { active: true });
  const event = await waitForInbox(
    tandem,
    (e) => e.type === 'LocationUpdate' && e.webhookId !== first.webhookId && e.processedAt !== null,
    'the reactivation LocationUpdate processed',
  );
  expect(event.outcome).toBe('applied: paused location: HighLevel is asked now whether it is active again');
  await waitForInstallation(tandem, id, 'active');
  expect(installationOf(tandem, id)?.statusReason).toBeNull();
});

it('ignores a LocationUpdate for a location that is not paused', async () => {
  const clock = new ManualClock(Date.now());
  const tandem = await installedTandem({ clock, sync: { start: false } });
  t = tandem;
  const id = tandem.location.id;
  await control(tandem.highlevelUrl, 'PATCH', `/locations/${id}`, { name: 'Renamed Dental' });
  const event = await waitForInbox(tandem, (e) => e.type === 'LocationUpdate' && e.processedAt !== null, 'the LocationUpdate processed');
  expect(event.outcome).toBe('ignored: not a location Tandem holds paused');
  expect(installationOf(tandem, id)?.status).toBe('active');
});

it('installs an agency location HighLevel reports inactive as paused, and connects it once HighLevel reactivates it', async () => {
  const clock = new ManualClock(Date.now());
  const tandem = await startTestTandem({ clock, sync: { start: false } });
  t = tandem;
  const agency = await createAgency(tandem, { name: 'Paused Branch Agency', locations: ['Open Branch', 'Closed Branch'] });
  const [open, closed] = agency.locations as [{ id: string; name: string }, { id: string; name: string }];
  await control(tandem.highlevelUrl, 'PATCH', `/locations/${closed.id}`, { active: false });

  const result = await installAgency(tandem, { userId: agency.adminId });
  expect(result.status).toBe(200);
  expect(result.html).toContain('Tandem is installed on 1 of 2 sub-accounts');
  expect(result.html).toMatch(/Closed Branch <span class="muted">\([^)]+\)<\/span> — paused in HighLevel: HighLevel reports this sub-account as inactive\. Tandem connects it by itself once HighLevel reactivates it/);
  await settle(tandem);
  // Paused (what HighLevel said, in Tandem's words), not needing a re-authorization it does not need.
  expect(installationOf(tandem, closed.id)).toMatchObject({ status: 'paused', statusReason: PAUSED_REASON, companyId: agency.companyId, locationName: closed.name });
  expect(installationOf(tandem, open.id)?.status).toBe('active');
  expect(hasTokens(tandem.db, { type: 'location', id: closed.id })).toBe(false);
  // Its INSTALL webhook, applied after the grace period for a callback, leaves it paused too.
  clock.advance(AUTHORIZATION_GRACE_MS + 1);
  await tandem.services.inbox.runOnce();
  await settle(tandem);
  expect(installationOf(tandem, closed.id)?.status).toBe('paused');

  // Still inactive: the probe leaves it paused.
  await tandem.services.sync.probePausedLocations();
  expect(installationOf(tandem, closed.id)?.status).toBe('paused');

  // Reactivated: the probe mints its token with the agency's (the webhook is not needed here).
  await control(tandem.highlevelUrl, 'PATCH', `/locations/${closed.id}`, { active: true });
  await tandem.services.sync.probePausedLocations();
  await waitForInstallation(tandem, closed.id, 'active');
  const token = await tandem.services.tokens.locationToken(closed.id);
  const res = await fetch(`${tandem.highlevelUrl}/locations/${closed.id}`, { headers: { authorization: `Bearer ${token}`, version: '2021-07-28' } });
  expect(res.status).toBe(200);
});
