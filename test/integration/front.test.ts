// Tandem in two threads, as `npm start` runs it (server/front.ts): the front receives webhooks
// itself and answers them exactly as the app's own route does, stages them in a file of its own
// and the app thread moves them into the inbox; every other request is passed on to the app.
// (The browser tests in test/e2e run the whole sandbox this way.)
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../db/client.ts';
import { openStagedInbox, stagedInboxPath } from '../../db/staged-inbox.ts';
import { getInboxEvent } from '../../db/webhook-inbox.ts';
import { APP_THREAD_NAME, APP_THREAD_NICE } from '../../server/app-thread.ts';
import { EXCHANGE_LIMIT } from '../../server/routes/panel-api.ts';
import { BAD_KEY_LIMIT } from '../../server/auth/api-rate-limit.ts';
import { FRONT_SECRET_HEADER } from '../../server/security/front-secret.ts';
import { startFront, type RunningFront } from '../../server/front.ts';
import { WEBHOOK_BODY_LIMIT } from '../../server/highlevel/webhook-events.ts';
import { ConfigError } from '../../server/config.ts';
import { freePort, StartError } from '../../server/start.ts';
import { control, testEmulator, until } from '../helpers/emulator.ts';
import { readOnlyFiles } from '../helpers/read-only.ts';
import { appRegistration, tandemEnv, type TestApp } from '../helpers/tandem.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'tandem-front-'));
const running: { front?: RunningFront; db?: Database } = {};
afterAll(async () => {
  running.db?.close();
  await running.front?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(reset = false, env: Record<string, string> = {}): Promise<{ front: RunningFront; db: Database; key: KeyObject }> {
  const front = await startFront({ dataDir, port: 0, emulatorPort: 0, quiet: true, env, reset });
  running.front = front;
  running.db = openDatabase(front.databasePath);
  // The sandbox's emulated HighLevel signs with this key; Tandem trusts its public half.
  const key = createPrivateKey(readFileSync(join(dataDir, 'emulator-webhook-key.pem'), 'utf8'));
  return { front, db: running.db, key };
}

async function stop(): Promise<void> {
  running.db?.close();
  await running.front?.close();
  running.front = undefined;
  running.db = undefined;
}

/** An event staged as the front stages it, while Tandem is stopped. */
function stage(webhookId: string): void {
  const staged = openStagedInbox(stagedInboxPath(join(dataDir, 'tandem.db')));
  const body = JSON.stringify({ type: 'TandemFrontProbe', webhookId, timestamp: new Date().toISOString() });
  try {
    expect(staged.stage([{ webhookId, type: 'TandemFrontProbe', locationId: null, companyId: null, body, receivedAt: Date.now() }]).stored).toEqual([true]);
  } finally {
    staged.close();
  }
}

/** What is staged now. */
function stagedIds(): string[] {
  const reader = openStagedInbox(stagedInboxPath(join(dataDir, 'tandem.db')), { readonly: true });
  try {
    return reader.after(0, 1000).map((e) => e.webhookId);
  } finally {
    reader.close();
  }
}

function event(webhookId: string, extra: Record<string, unknown> = {}): string {
  const companyId = running.front!.sandbox!.company.id;
  return JSON.stringify({ type: 'TandemFrontProbe', webhookId, timestamp: new Date().toISOString(), companyId, ...extra });
}

async function post(url: string, body: string | Buffer, key: KeyObject | null): Promise<{ status: number; body: any; retryAfter: string | null }> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['x-ghl-signature'] = sign(null, bytes, key).toString('base64');
  const res = await fetch(`${url}/webhooks/highlevel`, { method: 'POST', headers, body: new Uint8Array(bytes) });
  return { status: res.status, body: await res.json(), retryAfter: res.headers.get('retry-after') };
}

describe('Tandem in two threads', () => {
  it('answers webhooks as the app route does: refusals, new events, redeliveries', async () => {
    const { front, db, key } = await start();
    const url = front.tandemUrl;

    expect(await post(url, event('front-unsigned'), null)).toMatchObject({ status: 401, body: { error: { code: 'invalid_signature' } } });
    expect(await post(url, 'not json', key)).toMatchObject({ status: 400, body: { error: { code: 'invalid_body', message: 'The webhook body is not JSON.' } } });
    expect(await post(url, JSON.stringify({ type: 'X' }), key)).toMatchObject({ status: 400, body: { error: { code: 'invalid_body' } } });
    const stale = event('front-stale', { timestamp: new Date(Date.now() - 3 * 3600_000).toISOString() });
    expect(await post(url, stale, key)).toMatchObject({ status: 400, body: { error: { code: 'stale_event' } } });
    expect(await post(url, event('front-other-app', { appId: 'another-app' }), key)).toMatchObject({ status: 401, body: { error: { code: 'wrong_app' } } });
    const huge = event('front-huge', { padding: 'x'.repeat(WEBHOOK_BODY_LIMIT) });
    expect((await post(url, huge, key)).status).toBe(413);
    for (const id of ['front-unsigned', 'front-stale', 'front-other-app', 'front-huge']) expect(getInboxEvent(db.db, id)).toBeUndefined();

    const body = event('front-new');
    expect(await post(url, body, key)).toEqual({ status: 200, body: { received: true, duplicate: false }, retryAfter: null });
    // Redelivered at once (still staged, or already moved) and once it is in the inbox: a duplicate either way.
    expect((await post(url, body, key)).body).toEqual({ received: true, duplicate: true });
    const stored = await until(() => getInboxEvent(db.db, 'front-new'), 'the event in the inbox');
    expect(stored).toMatchObject({ type: 'TandemFrontProbe', companyId: front.sandbox!.company.id, body });
    expect((await post(url, body, key)).body).toEqual({ received: true, duplicate: true });
    // The inbox processor applies it in the app thread (an event type Tandem does not use is ignored).
    await until(() => getInboxEvent(db.db, 'front-new')?.processedAt, 'the event processed');
  });

  it.runIf(process.platform === 'linux')('runs the app thread behind the front in the CPU queue', () => {
    // This process hosts the front (its main thread) and the app thread, a worker named tandem-app;
    // the threads the app thread starts (its checkpoint worker) inherit both name and priority.
    const nice = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    const app = readdirSync('/proc/self/task').filter((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === APP_THREAD_NAME);
    expect(app.length).toBeGreaterThan(0);
    for (const tid of app) expect(nice(tid)).toBe(nice(String(process.pid)) + APP_THREAD_NICE);
  });

  it('passes every other request on to the app, bodies and answers whole', async () => {
    const url = running.front!.tandemUrl;
    expect(await (await fetch(`${url}/health`)).json()).toMatchObject({ status: 'ok', db: 'ok' });
    const missing = await fetch(`${url}/no/such/route?x=1`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'No route for GET /no/such/route' } });
    const apiKey = running.front!.sandbox!.apiKey!.key;
    const email = `front-${Date.now()}@example.com`;
    const created = await fetch(`${url}/api/v1/contacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ firstName: 'Fronted', email }),
    });
    expect(created.status).toBe(201);
    const contact = (await created.json()) as { id: string; email: string };
    expect(contact.email).toBe(email);
    const read = await fetch(`${url}/api/v1/contacts/${contact.id}`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(await read.json()).toMatchObject({ id: contact.id, firstName: 'Fronted', email });
  });

  it("believes a client's forwarded address only from the front, not from whoever reaches the app thread's port", async () => {
    /** Statuses of `count` failed panel sign-ins sent to `url`, the i-th with `headers(i)`. */
    const signIns = async (url: string, count: number, headers: (i: number) => Record<string, string>) => {
      const statuses: number[] = [];
      for (let i = 0; i < count; i++) {
        const res = await fetch(`${url}/api/panel/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers(i) },
          body: JSON.stringify({ payload: 'not-highlevel-user-data' }),
        });
        statuses.push(res.status);
      }
      return statuses;
    };
    const { capacity } = EXCHANGE_LIMIT;
    const count = capacity + 5;
    /** One address's allowance, then 429 (one token comes back every 3 s: a slow machine may get one more 401). */
    const expectLimited = (statuses: number[]) => {
      expect(statuses.slice(0, capacity)).toEqual(Array(capacity).fill(401));
      expect(statuses.slice(capacity)).toContain(429);
    };

    // TRUST_PROXY unset (README): the public port believes no client's X-Forwarded-For.
    expectLimited(await signIns(running.front!.tandemUrl, count, (i) => ({ 'x-forwarded-for': `203.0.113.${i}` })));

    // TRUST_PROXY=1: through the public port, each client behind the proxy has its own allowance.
    await stop();
    const { front } = await start(false, { TRUST_PROXY: '1' });
    expect(await signIns(front.tandemUrl, count, (i) => ({ 'x-forwarded-for': `198.51.100.${i}` }))).toEqual(Array(count).fill(401));
    // Straight to the app thread's own port (any local process can): its X-Forwarded-For is not
    // believed, nor is a guess at the front's secret; every request counts as its socket's address.
    expectLimited(await signIns(front.appUrl, count, (i) => ({ 'x-forwarded-for': `10.9.0.${i}`, [FRONT_SECRET_HEADER]: `guess-${i}` })));
    // A client naming the front's header on the public port changes nothing: the front sets it
    // itself (were the client's guess passed on, the request would count as 127.0.0.1, limited above).
    expect(await signIns(front.tandemUrl, 1, () => ({ 'x-forwarded-for': '198.51.100.200', [FRONT_SECRET_HEADER]: 'guess' }))).toEqual([401]);
  });

  it('limits failed API authentications per client address, as the front and TRUST_PROXY tell it', async () => {
    // Still TRUST_PROXY=1 (above): each client behind the proxy is told apart.
    const url = running.front!.tandemUrl;
    const tries = async (count: number, client: string, key = 'tk_0000000000000000000000000000guess') => {
      const statuses: number[] = [];
      for (let i = 0; i < count; i++) {
        const res = await fetch(`${url}/api/v1/contacts?limit=1`, { headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': client } });
        statuses.push(res.status);
      }
      return statuses;
    };
    const { capacity } = BAD_KEY_LIMIT;
    const guesses = await tries(capacity + 3, '198.51.100.7');
    // One token comes back every 3 s: a slow machine may get one more 401.
    expect(guesses.slice(0, capacity)).toEqual(Array(capacity).fill(401));
    expect(guesses.slice(capacity)).toContain(429);
    // That client is refused even a good key; another client, and its good key, go on.
    const apiKey = running.front!.sandbox!.apiKey!.key;
    expect(await tries(1, '198.51.100.7', apiKey)).toEqual([429]);
    expect(await tries(1, '198.51.100.8')).toEqual([401]);
    expect(await tries(1, '198.51.100.8', apiKey)).toEqual([200]);
  });

  it('keeps acknowledged events that were not moved yet across a restart', async () => {
    await stop();
    // As a crash would leave it: acknowledged (staged) but not in the inbox.
    const staged = openStagedInbox(stagedInboxPath(join(dataDir, 'tandem.db')));
    const body = JSON.stringify({ type: 'TandemFrontProbe', webhookId: 'front-left-staged', timestamp: new Date().toISOString() });
    expect(staged.stage([{ webhookId: 'front-left-staged', type: 'TandemFrontProbe', locationId: null, companyId: null, body, receivedAt: Date.now() }]).stored).toEqual([true]);
    staged.close();

    const { front, db, key } = await start();
    expect(await until(() => getInboxEvent(db.db, 'front-left-staged'), 'the staged event in the inbox')).toMatchObject({ body });
    // The next commit deletes what was moved: the staged file does not grow.
    expect((await post(front.tandemUrl, event('front-after-restart'), key)).status).toBe(200);
    await until(() => getInboxEvent(db.db, 'front-after-restart'), 'the new event in the inbox');
    expect((await post(front.tandemUrl, event('front-after-restart-2'), key)).status).toBe(200);
    const reader = openStagedInbox(stagedInboxPath(front.databasePath), { readonly: true });
    try {
      expect(reader.after(0, 100).map((e) => e.webhookId)).not.toContain('front-left-staged');
    } finally {
      reader.close();
    }
  });

  it('refuses to start over a sandbox file it cannot read, deleting nothing, and goes on once it is restored', async () => {
    const company = running.front!.sandbox!.company.id;
    await stop();
    stage('front-kept');
    const info = join(dataDir, 'sandbox.json');
    const saved = readFileSync(info);
    const world = readFileSync(join(dataDir, 'emulator.json'));
    // As QA left it: cut short (a full disk, a copy interrupted).
    writeFileSync(info, saved.subarray(0, 500));

    const refused = await start().then(() => undefined, (err: unknown) => err);
    expect(refused).toBeInstanceOf(StartError);
    const message = (refused as Error).message;
    expect(message).toContain(`${info} cannot be read (not valid JSON`);
    expect(message).toContain(`restore ${info}`);
    expect(message).toContain('`npm start -- --reset`');
    // Nothing deleted, nothing replaced: Tandem's database, the emulated HighLevel, what was staged.
    expect(existsSync(join(dataDir, 'tandem.db'))).toBe(true);
    expect(readFileSync(join(dataDir, 'emulator.json')).equals(world)).toBe(true);
    expect(readFileSync(info).length).toBe(500);
    expect(stagedIds()).toContain('front-kept');

    writeFileSync(info, saved);
    const { front, db } = await start();
    expect(front.sandbox!.company.id).toBe(company);
    await until(() => getInboxEvent(db.db, 'front-kept'), 'the kept event in the inbox');
    const apiKey = front.sandbox!.apiKey!.key;
    expect((await fetch(`${front.tandemUrl}/api/v1/contacts?limit=1`, { headers: { authorization: `Bearer ${apiKey}` } })).status).toBe(200);
  });

  it.runIf(readOnlyFiles.supported)('refuses to start on a database or data folder it cannot write', async () => {
    await stop();
    const path = join(dataDir, 'tandem.db');
    let undo = readOnlyFiles.make(path);
    try {
      const refused = await start().then(() => undefined, (err: unknown) => err);
      expect(refused).toBeInstanceOf(StartError);
      expect((refused as Error).message).toContain(`Tandem cannot start: its database cannot be written: ${path} cannot be written`);
      expect((refused as Error).message).toContain('DATABASE_PATH');
    } finally {
      undo();
    }
    undo = readOnlyFiles.make(dataDir);
    try {
      const refused = await start().then(() => undefined, (err: unknown) => err);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as ConfigError).variables).toEqual(['DATA_DIR']);
      expect((refused as Error).message).toContain(`DATA_DIR=${dataDir} cannot be used: the folder ${dataDir} cannot be written`);
    } finally {
      undo();
    }
    // Writable again: it starts, with its data.
    const { front } = await start();
    expect(await (await fetch(`${front.tandemUrl}/health`)).json()).toMatchObject({ status: 'ok', db: 'ok' });
  });

  it('sets up afresh a sandbox a first start left half made, and what was staged for it goes too', async () => {
    const company = running.front!.sandbox!.company.id;
    await stop();
    stage('front-half-made');
    // The emulated HighLevel seeded, but neither sandbox.json nor Tandem's database written yet.
    rmSync(join(dataDir, 'sandbox.json'));
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dataDir, `tandem.db${suffix}`), { force: true });

    const { front, db } = await start();
    expect(front.sandbox!.company.id).not.toBe(company);
    expect(stagedIds()).not.toContain('front-half-made');
    expect(getInboxEvent(db.db, 'front-half-made')).toBeUndefined();
  });

  it('starts the sandbox over with --reset, dropping what the old world had staged', async () => {
    await stop();
    const staged = openStagedInbox(stagedInboxPath(join(dataDir, 'tandem.db')));
    const body = JSON.stringify({ type: 'TandemFrontProbe', webhookId: 'front-old-world', timestamp: new Date().toISOString() });
    staged.stage([{ webhookId: 'front-old-world', type: 'TandemFrontProbe', locationId: null, companyId: null, body, receivedAt: Date.now() }]);
    staged.close();

    const { front, db, key } = await start(true);
    const reader = openStagedInbox(stagedInboxPath(front.databasePath), { readonly: true });
    try {
      // (The new world's own install webhooks may be there already.)
      expect(reader.after(0, 100).map((e) => e.webhookId)).not.toContain('front-old-world');
    } finally {
      reader.close();
    }
    // The new world's webhooks go through as before, and the old one's event is nowhere.
    expect((await post(front.tandemUrl, event('front-new-world'), key)).status).toBe(200);
    await until(() => getInboxEvent(db.db, 'front-new-world'), 'the new world\'s event in the inbox');
    expect(getInboxEvent(db.db, 'front-old-world')).toBeUndefined();
  });
});

describe('Tandem in two threads, for a real HighLevel app', () => {
  it('checks webhooks with the configured key from the start, and refuses a bad configuration before starting', async () => {
    const emulator = await testEmulator();
    const dir = mkdtempSync(join(tmpdir(), 'tandem-front-app-'));
    let front: RunningFront | undefined;
    let db: Database | undefined;
    try {
      const port = await freePort('127.0.0.1');
      const url = `http://127.0.0.1:${port}`;
      const app = await control<TestApp>(emulator.url, 'POST', '/apps', appRegistration(url));
      const env = tandemEnv(app, emulator.url, emulator.emu.webhookKey.publicKeyPem, url);

      await expect(startFront({ env: { ...env, TOKEN_ENCRYPTION_KEY: 'short' }, port, dataDir: dir, quiet: true })).rejects.toBeInstanceOf(ConfigError);
      // A file that is not a database: said so, as a reason not to start (SQLite's raw error once).
      const notDatabase = join(dir, 'not-a-database.db');
      writeFileSync(notDatabase, 'SQLite format 2\0'.padEnd(4096, 'x'));
      const refused = await startFront({ env: { ...env, DATABASE_PATH: notDatabase }, port, dataDir: dir, quiet: true }).then(() => undefined, (err: unknown) => err);
      expect(refused).toBeInstanceOf(StartError);
      expect((refused as Error).message).toBe(
        `Tandem cannot start: its database ${notDatabase} cannot be opened (file is not a database). If that file is not Tandem's database, set DATABASE_PATH to another file.`,
      );

      front = await startFront({ env, port, dataDir: dir, quiet: true });
      expect(front.mode).toBe('highlevel');
      db = openDatabase(front.databasePath);
      const key = emulator.emu.webhookKey.privateKey;
      const body = JSON.stringify({ type: 'TandemFrontProbe', webhookId: 'front-app-1', timestamp: new Date().toISOString(), appId: app.appId });
      expect(await post(url, body, key)).toMatchObject({ status: 200, body: { received: true, duplicate: false } });
      await until(() => getInboxEvent(db!.db, 'front-app-1'), 'the event in the inbox');
      // Signed by another key (the sandbox's, say): refused.
      const other = generateKeyPairSync('ed25519').privateKey;
      expect((await post(url, body.replace('front-app-1', 'front-app-2'), other)).status).toBe(401);
    } finally {
      db?.close();
      await front?.close();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
