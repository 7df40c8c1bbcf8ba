// Test helpers for Tandem itself: start the real Tandem (startTandem, temp data dir, free port)
// against a test emulator where it is registered as a marketplace app, seed agencies through the
// control API, install through the real consent flow, and wait for the webhook inbox.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { EmulatorOptions } from '../../emulator/emulator.ts';
import type { Db, Database } from '../../db/client.ts';
import { listInboxEvents, queuedInboxEvents, type InboxEvent } from '../../db/webhook-inbox.ts';
import { getInstallation, type Installation } from '../../db/installations.ts';
import { getSyncState } from '../../db/sync-state.ts';
import type { Clock } from '../../server/clock.ts';
import { TANDEM_SCOPES, type Config } from '../../server/config.ts';
import { appRegistration } from '../../server/sandbox.ts';
import { followConsent, installThroughBrowser, type BrowserInstall, type ConsentChoice } from '../../server/sandbox-install.ts';
import type { Services } from '../../server/services.ts';
import { freePort, startTandem, type RunningTandem } from '../../server/start.ts';
import type { OperationsOptions } from '../../server/sync/operations/runner.ts';
import type { PassResult, SyncOptions } from '../../server/sync/supervisor.ts';
import { control, testEmulator, until } from './emulator.ts';

export interface TestApp {
  appId: string;
  clientId: string;
  clientSecret: string;
  sharedSecret: string;
}

export interface TestTandem {
  /** Tandem's base URL. */
  url: string;
  /** The emulated HighLevel's base URL. */
  highlevelUrl: string;
  emulator: RunningEmulator;
  app: TestApp;
  tandem: RunningTandem;
  config: Config;
  database: Database;
  db: Db;
  services: Services;
  clock: Clock;
  dataDir: string;
  /** The environment Tandem was started with (a restart, or the same Tandem in two threads). */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface TestTandemOptions {
  /** Shared by the emulator and Tandem (e.g. a ManualClock). */
  clock?: Clock;
  emulator?: Omit<EmulatorOptions, 'clock'>;
  /** Extra environment for Tandem (e.g. TOKEN_ENCRYPTION_KEY). */
  env?: Record<string, string>;
  /** Reuse a data dir (a restart); it is then not deleted on close. */
  dataDir?: string;
  /** Reuse an emulator and its app (a restart); they are then not closed. */
  reuse?: { emulator: RunningEmulator; app: TestApp };
  /** The sync loop's tuning; `{ start: false }` to drive `services.sync.runOnce` by hand. */
  sync?: SyncOptions;
  /** One-time operations' tuning (lease, sweep, crash points); `{ start: false }` to call `sweep` by hand. */
  operations?: OperationsOptions & { start?: boolean };
}

// Tests and benchmarks register Tandem with the emulator as the sandbox does.
export { appRegistration };

/** The environment of a Tandem at `url` that is `app` of the emulator at `highlevelUrl` (a fresh token key, silent logs). */
export function tandemEnv(app: TestApp, highlevelUrl: string, webhookPublicKeyPem: string, url: string): Record<string, string> {
  return {
    HIGHLEVEL_CLIENT_ID: app.clientId,
    HIGHLEVEL_CLIENT_SECRET: app.clientSecret,
    HIGHLEVEL_SHARED_SECRET: app.sharedSecret,
    HIGHLEVEL_API_URL: highlevelUrl,
    HIGHLEVEL_MARKETPLACE_URL: highlevelUrl,
    HIGHLEVEL_WEBHOOK_PUBLIC_KEY: webhookPublicKeyPem,
    TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    PUBLIC_URL: url,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
  };
}

/** Tandem on a free port, registered as a marketplace app of a fresh test emulator. */
export async function startTestTandem(options: TestTandemOptions = {}): Promise<TestTandem> {
  const emulator = options.reuse?.emulator ?? (await testEmulator({ ...options.emulator, ...(options.clock ? { clock: options.clock } : {}) }));
  const ownsDir = !options.dataDir;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tandem-test-'));
  try {
    // The port is reserved first so the app's redirect and webhook URLs are known before it is registered.
    const port = await freePort('127.0.0.1');
    const url = `http://127.0.0.1:${port}`;
    const registration = appRegistration(url);
    const app: TestApp = options.reuse
      ? (await control(emulator.url, 'PATCH', `/apps/${options.reuse.app.appId}`, registration), options.reuse.app)
      : await control<TestApp>(emulator.url, 'POST', '/apps', registration);
    const env = { ...tandemEnv(app, emulator.url, emulator.emu.webhookKey.publicKeyPem, url), ...options.env };
    const tandem = await startTandem({
      env,
      port,
      dataDir,
      quiet: true,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.sync ? { sync: options.sync } : {}),
      ...(options.operations ? { operations: options.operations } : {}),
    });
    let closed: Promise<void> | undefined;
    return {
      url,
      highlevelUrl: emulator.url,
      emulator,
      app,
      tandem,
      config: tandem.config,
      database: tandem.database,
      db: tandem.database.db,
      services: tandem.services,
      clock: tandem.services.clock,
      dataDir,
      env,
      close() {
        closed ??= (async () => {
          await tandem.close();
          if (!options.reuse) await emulator.close();
          if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
        })();
        return closed;
      },
    };
  } catch (err) {
    if (!options.reuse) await emulator.close();
    if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

export interface TestAgency {
  companyId: string;
  adminId: string;
  /** With each location's private integration token (HighLevel's API as the location itself). */
  locations: { id: string; name: string; privateToken?: string }[];
}

/** An agency (company) with an agency admin and named locations, through the control API. */
export async function createAgency(
  t: Pick<TestTandem, 'highlevelUrl'>,
  opts: { name?: string; locations?: string[]; whitelabelDomain?: string } = {},
): Promise<TestAgency> {
  const base = t.highlevelUrl;
  const company = await control<{ id: string }>(base, 'POST', '/companies', {
    name: opts.name ?? 'Acme Agency',
    ...(opts.whitelabelDomain ? { whitelabelDomain: opts.whitelabelDomain } : {}),
  });
  const locations: TestAgency['locations'] = [];
  for (const name of opts.locations ?? ['Downtown Dental', 'Uptown Roofing']) {
    const l = await control<{ id: string; name: string; privateToken: string }>(base, 'POST', '/locations', { name, companyId: company.id });
    locations.push({ id: l.id, name: l.name, privateToken: l.privateToken });
  }
  const admin = await control<{ id: string }>(base, 'POST', '/users', {
    companyId: company.id,
    firstName: 'Ada',
    lastName: 'Admin',
    email: `ada+${company.id.toLowerCase()}@agency.example`,
    type: 'agency',
    role: 'admin',
    locationIds: [],
  });
  return { companyId: company.id, adminId: admin.id, locations };
}

/** A location added to a company later (HighLevel installs future locations of agency installs). */
export function addLocation(t: Pick<TestTandem, 'highlevelUrl'>, companyId: string, name: string): Promise<{ id: string; name: string }> {
  return control(t.highlevelUrl, 'POST', '/locations', { name, companyId });
}

/**
 * Installs on one location through the consent flow: from Tandem's /oauth/install (state checked)
 * by default, or from a marketplace install link (no state of ours) with `fromMarketplace`.
 */
export function installLocation(
  t: Pick<TestTandem, 'url' | 'highlevelUrl' | 'app'>,
  locationId: string,
  opts: { userId?: string; fromMarketplace?: boolean } = {},
): Promise<BrowserInstall> {
  const choice: ConsentChoice = { target: locationId, ...(opts.userId ? { userId: opts.userId } : {}) };
  return opts.fromMarketplace ? followConsent(marketplaceInstallUrl(t), choice) : installThroughBrowser(t.url, choice);
}

/** An agency (bulk) install through Tandem's /oauth/install and the consent page. */
export function installAgency(
  t: Pick<TestTandem, 'url'>,
  opts: { userId?: string; locationIds?: string[]; installToFutureLocations?: boolean } = {},
): Promise<BrowserInstall> {
  return installThroughBrowser(t.url, {
    target: 'agency',
    ...(opts.userId ? { userId: opts.userId } : {}),
    ...(opts.locationIds ? { locationIds: opts.locationIds } : {}),
    ...(opts.installToFutureLocations ? { installToFutureLocations: true } : {}),
  });
}

/** The install link HighLevel's marketplace generates: no state, version_id = app id. */
export function marketplaceInstallUrl(t: Pick<TestTandem, 'url' | 'highlevelUrl' | 'app'>): string {
  const q = new URLSearchParams({
    response_type: 'code',
    redirect_uri: `${t.url}/oauth/callback`,
    client_id: t.app.clientId,
    scope: TANDEM_SCOPES.join(' '),
    version_id: t.app.appId,
  });
  return `${t.highlevelUrl}/v2/oauth/chooselocation?${q.toString()}`;
}

/** Waits until an inbox row matches (e.g. the INSTALL for a location has been processed). */
export function waitForInbox(t: Pick<TestTandem, 'db'>, match: (e: InboxEvent) => boolean, what = 'an inbox event', timeoutMs = 5000): Promise<InboxEvent> {
  return until(() => listInboxEvents(t.db).find(match), what, timeoutMs);
}

/** The processed inbox event of a type (and location), once it is processed. */
export function waitForProcessed(t: Pick<TestTandem, 'db'>, type: string, locationId?: string): Promise<InboxEvent> {
  return waitForInbox(
    t,
    (e) => e.type === type && e.processedAt !== null && (locationId === undefined || e.locationId === locationId),
    `${type}${locationId ? ` for ${locationId}` : ''} processed`,
  );
}

/** Every webhook delivered and every stored event applied (or waiting for a later retry). */
export async function settle(t: Pick<TestTandem, 'db' | 'emulator' | 'services' | 'clock'>): Promise<void> {
  await t.emulator.emu.webhooks.idle();
  await until(() => {
    const now = t.clock.now();
    return listInboxEvents(t.db).every((e) => e.processedAt !== null || (e.nextAttemptAt !== null && e.nextAttemptAt > now));
  }, 'the webhook inbox to settle');
  await t.services.inbox.runOnce();
}

/**
 * A location synced by hand (sync `{ start: false }`, manual clock): webhooks delivered and stored,
 * then passes of its loop until it has nothing to do now, the clock moved to each deferral's end.
 */
export async function syncLocation(t: Pick<TestTandem, 'db' | 'emulator' | 'services'>, locationId: string, clock: { now(): number; set(t: number): void }): Promise<void> {
  await t.emulator.emu.webhooks.idle();
  await t.services.inbox.runOnce();
  for (let i = 0; i < 40; i++) {
    const r = await t.services.sync.runOnce(locationId);
    if (r.deferredUntil !== undefined && r.deferredUntil > clock.now()) clock.set(r.deferredUntil);
    else if (!r.more && getSyncState(t.db, locationId).cursor.run === null && queuedInboxEvents(t.db, locationId).length === 0) return;
  }
  throw new Error('the location never settled');
}

export function installationOf(t: Pick<TestTandem, 'db'>, locationId: string): Installation | undefined {
  return getInstallation(t.db, locationId);
}

/** Waits for an installation row in the given status. */
export function waitForInstallation(t: Pick<TestTandem, 'db'>, locationId: string, status: Installation['status']): Promise<Installation> {
  return until(() => {
    const i = getInstallation(t.db, locationId);
    return i?.status === status ? i : undefined;
  }, `installation ${locationId} to be ${status}`);
}

/** POSTs a webhook body to Tandem signed with `key` (default: the emulator's key Tandem trusts). */
export async function postWebhook(
  t: Pick<TestTandem, 'url' | 'emulator'>,
  body: string | Buffer,
  opts: { key?: KeyObject; signature?: string | null; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const signature =
    opts.signature === undefined ? sign(null, bytes, opts.key ?? t.emulator.emu.webhookKey.privateKey).toString('base64') : opts.signature;
  const res = await fetch(`${t.url}/webhooks/highlevel`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature !== null ? { 'x-ghl-signature': signature } : {}), ...opts.headers },
    body: new Uint8Array(bytes),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * Passes of the location's loop, driven by hand, until it has nothing more to do now: no more work
 * ready, no pull under way, no deferral. A deferral moves the manual clock to its end.
 */
export async function passesUntilQuiet(
  t: Pick<TestTandem, 'services' | 'db'>,
  locationId: string,
  clock: { now(): number; set(ms: number): void },
  maxPasses = 60,
): Promise<PassResult[]> {
  const passes: PassResult[] = [];
  for (let i = 0; i < maxPasses; i++) {
    const r = await t.services.sync.runOnce(locationId);
    passes.push(r);
    if (r.deferredUntil !== undefined && r.deferredUntil > clock.now()) clock.set(r.deferredUntil);
    const pulling = getSyncState(t.db, locationId).cursor.run !== null;
    if (!r.more && !pulling && r.deferredUntil === undefined) return passes;
  }
  throw new Error(`location ${locationId} never settled in ${maxPasses} passes`);
}

/** Tandem with one location installed through the consent flow: the usual starting point of a test. */
export async function installedTandem(
  options: TestTandemOptions & { locationName?: string } = {},
): Promise<TestTandem & { agency: TestAgency; location: { id: string; name: string } }> {
  const t = await startTestTandem(options);
  try {
    const agency = await createAgency(t, { locations: [options.locationName ?? 'Cedar Dental Studio'] });
    const location = agency.locations[0]!;
    const result = await installLocation(t, location.id, { userId: agency.adminId });
    if (result.status !== 200) throw new Error(`install failed: ${result.status} ${result.html.slice(0, 300)}`);
    return Object.assign(t, { agency, location });
  } catch (err) {
    await t.close();
    throw err;
  }
}
