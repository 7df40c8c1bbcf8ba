// POST /webhooks/highlevel over real HTTP: T10's signature negatives (nothing stored), dedupe by
// webhookId, 429 when the event cannot be stored (and HighLevel's redelivery then lands), and the
// inbox processor: events applied outside the request, other types ignored, retries with backoff.
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getInboxEvent, listInboxEvents } from '../../db/webhook-inbox.ts';
import { WEBHOOK_MAX_AGE_MS } from '../../server/highlevel/webhook-events.ts';
import { INBOX_RETENTION_MS, retryDelayMs } from '../../server/installs/inbox-processor.ts';
import { control, ManualClock, until } from '../helpers/emulator.ts';
import {
  addLocation,
  createAgency,
  installAgency,
  installationOf,
  postWebhook,
  settle,
  startTestTandem,
  waitForProcessed,
  type TestTandem,
} from '../helpers/tandem.ts';

const clock = new ManualClock();
let t: TestTandem;
beforeAll(async () => {
  t = await startTestTandem({ clock, emulator: { config: { webhookRetryIntervalMs: 20 } } });
});
afterAll(async () => t?.close());

/** A ContactCreate as HighLevel sends it: compact JSON, timestamp and webhookId last. */
function contactEvent(overrides: Record<string, unknown> = {}): { body: string; webhookId: string } {
  const webhookId = randomUUID();
  const body = JSON.stringify({
    type: 'ContactCreate',
    locationId: 'loc-under-test',
    id: 'contact-1',
    email: 'ann@example.com',
    appId: t.app.appId,
    timestamp: new Date(clock.now()).toISOString(),
    webhookId,
    ...overrides,
  });
  return { body, webhookId };
}

const stored = (webhookId: string) => listInboxEvents(t.db).filter((e) => e.webhookId === webhookId).length;

describe('T10 signature negatives: refused, nothing stored', () => {
  it('accepts a correctly signed event once, however often it is delivered', async () => {
    const { body, webhookId } = contactEvent();
    const first = await postWebhook(t, body);
    expect(first).toMatchObject({ status: 200, body: { received: true, duplicate: false } });
    const again = await postWebhook(t, body);
    expect(again).toMatchObject({ status: 200, body: { received: true, duplicate: true } });
    expect(stored(webhookId)).toBe(1);
    expect(getInboxEvent(t.db, webhookId)).toMatchObject({ type: 'ContactCreate', locationId: 'loc-under-test', body });
  });

  it('refuses a missing or placeholder signature', async () => {
    const { body, webhookId } = contactEvent();
    expect((await postWebhook(t, body, { signature: null })).status).toBe(401);
    expect((await postWebhook(t, body, { signature: 'N/A' })).status).toBe(401);
    expect(stored(webhookId)).toBe(0);
  });

  it('refuses a signature made with another key', async () => {
    const { body, webhookId } = contactEvent();
    const res = await postWebhook(t, body, { key: generateKeyPairSync('ed25519').privateKey });
    expect(res).toMatchObject({ status: 401, body: { error: { code: 'invalid_signature' } } });
    expect(stored(webhookId)).toBe(0);
  });

  it('refuses a body with one byte changed after signing', async () => {
    const { body, webhookId } = contactEvent();
    const signature = sign(null, Buffer.from(body), t.emulator.emu.webhookKey.privateKey).toString('base64');
    const changed = Buffer.from(body.replace('ann@example.com', 'ann@example.org'));
    expect((await postWebhook(t, changed, { signature })).status).toBe(401);
    // Re-serialised JSON is a change too: only the exact bytes verify.
    const pretty = JSON.stringify(JSON.parse(body), null, 1);
    expect((await postWebhook(t, pretty, { signature })).status).toBe(401);
    expect(stored(webhookId)).toBe(0);
  });

  it("refuses another app's event even when HighLevel signed it", async () => {
    const { body, webhookId } = contactEvent({ appId: 'aaaaaaaaaaaaaaaaaaaaaaaa' });
    const res = await postWebhook(t, body);
    expect(res).toMatchObject({ status: 401, body: { error: { code: 'wrong_app' } } });
    expect(stored(webhookId)).toBe(0);
  });

  it('refuses stale and far-future timestamps, accepts the edge of the window', async () => {
    const stale = contactEvent({ timestamp: new Date(clock.now() - WEBHOOK_MAX_AGE_MS - 1000).toISOString() });
    expect(await postWebhook(t, stale.body)).toMatchObject({ status: 400, body: { error: { code: 'stale_event' } } });
    const future = contactEvent({ timestamp: new Date(clock.now() + 10 * 60_000).toISOString() });
    expect((await postWebhook(t, future.body)).status).toBe(400);
    // A redelivery after HighLevel's ~70 minutes of 429 retries still counts.
    const late = contactEvent({ timestamp: new Date(clock.now() - 80 * 60_000).toISOString() });
    expect((await postWebhook(t, late.body)).status).toBe(200);
    expect(stored(stale.webhookId) + stored(future.webhookId)).toBe(0);
    expect(stored(late.webhookId)).toBe(1);
  });

  it('refuses an oversized body before reading it all', async () => {
    const { body, webhookId } = contactEvent({ notes: 'x'.repeat(300 * 1024) });
    const res = await postWebhook(t, body);
    expect(res.status).toBe(413);
    expect(stored(webhookId)).toBe(0);
  });

  it('refuses signed bodies that are not an event', async () => {
    expect((await postWebhook(t, 'not json')).status).toBe(400);
    const res = await postWebhook(t, JSON.stringify({ type: 'ContactCreate', timestamp: new Date(clock.now()).toISOString() }));
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'invalid_body', message: expect.stringContaining('webhookId') } } });
  });
});

describe('storage failure', () => {
  it('answers 429 while the database cannot take the event, and the redelivery is stored once', async () => {
    await settle(t);
    await control(t.highlevelUrl, 'DELETE', '/webhooks');
    const agency = await createAgency(t, { name: 'Locked Agency', locations: [] });
    // Another process holds the write lock; Tandem's writer gives up quickly instead of after 5 s.
    t.database.sqlite.pragma('busy_timeout = 50');
    const other = new Sqlite(t.config.databasePath);
    other.exec('BEGIN IMMEDIATE');
    let released = false;
    try {
      await control(t.highlevelUrl, 'POST', '/installs', { appId: t.app.appId, companyId: agency.companyId, locationIds: [] });
      const refused = await until(async () => {
        const { deliveries } = await control(t.highlevelUrl, 'GET', `/webhooks?appId=${t.app.appId}&type=INSTALL`);
        return deliveries.find((d: { status?: number }) => d.status === 429);
      }, 'a 429 answer to the INSTALL delivery');
      expect(refused.outcome).toBe('retry-scheduled');
      expect(getInboxEvent(t.db, refused.webhookId)).toBeUndefined();
      const direct = contactEvent();
      const busy = await postWebhook(t, direct.body);
      expect(busy).toMatchObject({ status: 429, body: { error: { code: 'try_again' } } });
      expect(busy.headers.get('retry-after')).toBe('60');
      expect(stored(direct.webhookId)).toBe(0);

      other.exec('ROLLBACK');
      released = true;
      const delivered = await until(async () => {
        const { deliveries } = await control(t.highlevelUrl, 'GET', `/webhooks?appId=${t.app.appId}&type=INSTALL`);
        return deliveries.find((d: { webhookId: string; outcome: string }) => d.webhookId === refused.webhookId && d.outcome === 'delivered');
      }, 'the redelivery');
      expect(delivered.attempt).toBeGreaterThan(1);
      expect(stored(refused.webhookId)).toBe(1);
    } finally {
      if (!released) other.exec('ROLLBACK');
      other.close();
      t.database.sqlite.pragma('busy_timeout = 5000');
    }
  });
});

describe('inbox processing', () => {
  it('marks contact events of a location Tandem is not installed on as ignored, keeping the body', async () => {
    const { body, webhookId } = contactEvent();
    await postWebhook(t, body);
    const event = await until(() => {
      const e = getInboxEvent(t.db, webhookId);
      return e?.processedAt ? e : undefined;
    }, 'the ContactCreate to be processed');
    expect(event.outcome).toBe('ignored: location not installed');
    expect(event.body).toBe(body);
  });

  it('retries a failed install with backoff on the injected clock', async () => {
    const agency = await createAgency(t, { name: 'Flaky Agency', locations: ['Steady'] });
    await installAgency(t, { userId: agency.adminId, installToFutureLocations: true });
    await settle(t);
    // HighLevel fails the next two location-token mints.
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/oauth/locationToken', status: 503, times: 2 });
    const later = await addLocation(t, agency.companyId, 'Flaky');

    const failed = await until(() => {
      const e = listInboxEvents(t.db).find((x) => x.type === 'INSTALL' && x.locationId === later.id);
      return e?.attempts === 1 ? e : undefined;
    }, 'the first failed attempt');
    expect(failed.processedAt).toBeNull();
    expect(failed.outcome).toMatch(/^failed: /);
    expect(failed.nextAttemptAt).toBe(clock.now() + retryDelayMs(1));
    expect(installationOf(t, later.id)).toBeUndefined();

    // Not due yet: a pass leaves it alone.
    await t.services.inbox.runOnce();
    expect(getInboxEvent(t.db, failed.webhookId)?.attempts).toBe(1);

    clock.advance(retryDelayMs(1));
    await t.services.inbox.runOnce();
    expect(getInboxEvent(t.db, failed.webhookId)).toMatchObject({ attempts: 2, nextAttemptAt: clock.now() + retryDelayMs(2) });

    clock.advance(retryDelayMs(2));
    await t.services.inbox.runOnce();
    const done = await waitForProcessed(t, 'INSTALL', later.id);
    expect(done.outcome).toBe("applied: installed with a location token from the agency's authorization");
    expect(installationOf(t, later.id)?.status).toBe('active');
  });

  it('forgets processed events after a week, never pending ones', async () => {
    await settle(t);
    const { body, webhookId } = contactEvent();
    await postWebhook(t, body);
    await until(() => getInboxEvent(t.db, webhookId)?.processedAt, 'the event to be processed');
    // An INSTALL Tandem cannot act on yet waits for its callback: pending, not processed.
    const waiting = contactEvent({ type: 'INSTALL', locationId: 'pending-location', companyId: 'pending-company' });
    await postWebhook(t, waiting.body);
    await until(() => getInboxEvent(t.db, waiting.webhookId)?.outcome?.startsWith('deferred'), 'the INSTALL to wait');
    const pending = listInboxEvents(t.db).filter((e) => e.processedAt === null).map((e) => e.webhookId);
    expect(pending).toContain(waiting.webhookId);

    clock.advance(INBOX_RETENTION_MS + 60 * 60_000);
    await t.services.inbox.runOnce();
    expect(getInboxEvent(t.db, webhookId)).toBeUndefined();
    for (const id of pending) expect(getInboxEvent(t.db, id)).toBeDefined();
  });
});
