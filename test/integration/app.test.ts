// Tandem's skeleton: configuration, migrations, health, the panel's static files and the error shape.
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { loggedUrl, loggerOptions } from '../../server/log.ts';
import { buildApp } from '../../server/app.ts';
import { ConfigError, HIGHLEVEL_WEBHOOK_PUBLIC_KEY, loadConfig, loadSettings } from '../../server/config.ts';
import Sqlite from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate, openDatabase, writeProblem, type Database } from '../../db/client.ts';
import { readOnlyFiles } from '../helpers/read-only.ts';
import { installations } from '../../db/schema.ts';
import { upsertInstallation } from '../../db/installations.ts';

const KEY = Buffer.alloc(32, 7).toString('base64');
const REAL_ENV = {
  HIGHLEVEL_CLIENT_ID: '6835011c08f18f1088f92f9f-mcnl7omh',
  HIGHLEVEL_CLIENT_SECRET: '1d4c3b6e-1b1f-4f57-9b8e-6c1d8f2f6a11',
  HIGHLEVEL_SHARED_SECRET: 'a-shared-secret',
  TOKEN_ENCRYPTION_KEY: KEY,
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-app-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config', () => {
  it('runs the sandbox when no HighLevel credentials are set', () => {
    const settings = loadSettings({});
    expect(settings).toMatchObject({ mode: 'sandbox', port: 3000, host: '127.0.0.1', emulatorPort: 3001, dataDir: './data' });
    expect(settings.databasePath).toBe(join('./data', 'tandem.db'));
    expect(loadSettings({ HIGHLEVEL_CLIENT_ID: ' ', HIGHLEVEL_SHARED_SECRET: '' }).mode).toBe('sandbox');
  });

  it('loads a complete real-mode configuration with documented defaults', () => {
    const config = loadConfig({ ...REAL_ENV, PUBLIC_URL: 'https://tandem.example.com/', PORT: '8080' });
    expect(config.mode).toBe('highlevel');
    expect(config.publicUrl).toBe('https://tandem.example.com');
    expect(config.port).toBe(8080);
    expect(config.highlevel.apiUrl).toBe('https://services.leadconnectorhq.com');
    expect(config.highlevel.marketplaceUrl).toBe('https://marketplace.gohighlevel.com');
    expect(config.highlevel.webhookPublicKeyPem).toBe(HIGHLEVEL_WEBHOOK_PUBLIC_KEY);
    expect(config.tokenEncryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(loadConfig(REAL_ENV).publicUrl).toBe('http://localhost:3000');
  });

  it('lists exactly the missing variables, each with where to find it, when only some are set', () => {
    const error = catchConfigError(() => loadConfig({ HIGHLEVEL_CLIENT_ID: REAL_ENV.HIGHLEVEL_CLIENT_ID }));
    expect(error.variables.sort()).toEqual(['HIGHLEVEL_CLIENT_SECRET', 'HIGHLEVEL_SHARED_SECRET', 'TOKEN_ENCRYPTION_KEY']);
    expect(error.message).toContain('HIGHLEVEL_CLIENT_SECRET is missing');
    expect(error.message).toContain('Advanced Settings → Auth');
    expect(error.message).toContain('openssl rand -base64 32');
    expect(error.message.split('\n').filter((l) => l.startsWith('  '))).toHaveLength(3);
  });

  it('rejects a token encryption key that is not 32 bytes of base64', () => {
    for (const bad of [Buffer.alloc(16).toString('base64'), 'not base64 at all!', `${KEY}x`]) {
      const error = catchConfigError(() => loadConfig({ ...REAL_ENV, TOKEN_ENCRYPTION_KEY: bad }));
      expect(error.variables).toEqual(['TOKEN_ENCRYPTION_KEY']);
      expect(error.message).toContain('must be 32 bytes');
    }
  });

  it('rejects malformed ports, URLs and webhook keys', () => {
    const error = catchConfigError(() =>
      loadConfig({ ...REAL_ENV, PORT: 'eighty', PUBLIC_URL: 'tandem.example.com', HIGHLEVEL_WEBHOOK_PUBLIC_KEY: 'nope' }),
    );
    expect(error.variables.sort()).toEqual(['HIGHLEVEL_WEBHOOK_PUBLIC_KEY', 'PORT', 'PUBLIC_URL']);
  });

  it('says a set but invalid value is invalid, shows it (never a secret) and what is expected', () => {
    for (const value of ['abc', '4301.5', '70000', '-1']) {
      const error = catchConfigError(() => loadSettings({ PORT: value }));
      expect(error.message.split('\n')[1]).toBe(`  PORT=${value} is invalid: must be a whole number from 0 to 65535. TCP port Tandem listens on (default 3000)`);
    }
    expect(catchConfigError(() => loadSettings({ EMULATOR_PORT: '30 01' })).message).toContain('EMULATOR_PORT="30 01" is invalid: must be a whole number');
    expect(catchConfigError(() => loadSettings({ LOG_LEVEL: 'loud' })).message).toContain('LOG_LEVEL=loud is invalid');
    const secret = 'c2hvcnQgYnV0IHNlY3JldA==';
    const key = catchConfigError(() => loadConfig({ ...REAL_ENV, TOKEN_ENCRYPTION_KEY: secret }));
    expect(key.message).toContain('TOKEN_ENCRYPTION_KEY is invalid: must be 32 bytes');
    expect(key.message).not.toContain(secret);
  });
});

describe('logging', () => {
  it('redacts credentials wherever they appear in a log line', () => {
    const lines: string[] = [];
    const log = pino(loggerOptions({ logLevel: 'info' }), { write: (line: string) => lines.push(line) });
    log.info({
      req: { headers: { authorization: 'Bearer at-123', cookie: 'sid=1' } },
      token: { access_token: 'at-123', refresh_token: 'rt-456' },
      body: { client_secret: 'cs-789', payload: 'U2FsdGVkX1-encrypted' },
      config: { highlevel: { clientSecret: 'cs-789', sharedSecret: 'ss-000' } },
    });
    expect(lines).toHaveLength(1);
    for (const secret of ['at-123', 'sid=1', 'rt-456', 'cs-789', 'U2FsdGVkX1', 'ss-000']) expect(lines[0]).not.toContain(secret);
    expect(lines[0]).toContain('[redacted]');
  });

  it('logs request URLs without their query values (the OAuth code and state, a search for an email)', async () => {
    const lines: string[] = [];
    const app = Fastify({ loggerInstance: pino(loggerOptions({ logLevel: 'info' }), { write: (line: string) => lines.push(line) }) });
    app.get('/oauth/callback', async () => ({ ok: true }));
    try {
      const res = await app.inject({ method: 'GET', url: '/oauth/callback?code=secret-code-123&state=state-456&flag' });
      expect(res.statusCode).toBe(200);
      const logged = lines.join('\n');
      expect(logged).toContain('/oauth/callback?code=[redacted]&state=[redacted]&flag');
      for (const secret of ['secret-code-123', 'state-456']) expect(logged).not.toContain(secret);
    } finally {
      await app.close();
    }
    expect(loggedUrl('/api/v1/contacts?query=ana%40example.com&limit=5')).toBe('/api/v1/contacts?query=[redacted]&limit=[redacted]');
    expect(loggedUrl('/health')).toBe('/health');
  });
});

describe('database', () => {
  it('migrations create the installations table in a fresh file', () => {
    const database = openDatabase(join(dir, 'fresh', 'tandem.db'));
    try {
      migrate(database);
      const tables = database.sqlite.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[];
      expect(tables.map((t) => t.name)).toContain('installations');
      expect(database.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(database.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
      database.db
        .insert(installations)
        .values({ locationId: 'loc1', companyId: 'co1', status: 'active', installedAt: 1, updatedAt: 1 })
        .run();
      expect(database.db.select().from(installations).all()).toHaveLength(1);
      // The status column only holds the documented states.
      expect(() =>
        database.sqlite
          .prepare("insert into installations (location_id, company_id, status, installed_at, updated_at) values ('l2', 'c', 'bogus', 1, 1)")
          .run(),
      ).toThrow(/CHECK constraint/);
      migrate(database); // idempotent on an up-to-date file
    } finally {
      database.close();
    }
  });
});

describe('http', () => {
  let database: Database;
  let app: FastifyInstance;
  beforeAll(async () => {
    database = openDatabase(join(dir, 'http', 'tandem.db'));
    migrate(database);
    app = buildApp({ config: loadConfig({ ...REAL_ENV, DATA_DIR: dir }), db: database, logger: false });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    database.close();
  });

  it('GET /health reports the database', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', db: 'ok', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  it('serves the built panel at /panel/ with revalidated HTML and immutable assets', async () => {
    const res = await app.inject({ method: 'GET', url: '/panel/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body).toContain('<div id="app">');
    const asset = /\/panel\/assets\/[^"]+\.js/.exec(res.body)?.[0];
    expect(asset).toBeDefined();
    const js = await app.inject({ method: 'GET', url: asset! });
    expect(js.statusCode).toBe(200);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('redirects /panel to /panel/, keeping the query', async () => {
    const res = await app.inject({ method: 'GET', url: '/panel?foo=1' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/panel/?foo=1');
  });

  it('sends / to the panel with a real HighLevel app, and answers /favicon.ico with no content', async () => {
    const res = await app.inject({ method: 'GET', url: '/?foo=1' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/panel/?foo=1');
    const icon = await app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(icon.statusCode).toBe(204);
    expect(icon.body).toBe('');
  });

  it('answers unknown routes with the JSON error shape', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'not_found', message: 'No route for GET /nope' } });
    // A long path is repeated in part only.
    const long = await app.inject({ method: 'GET', url: `/${'n'.repeat(3000)}` });
    expect(long.json().error.message).toBe(`No route for GET /${'n'.repeat(199)}…`);
  });

  it('answers a path whose %-escapes do not decode with the JSON error shape, not Fastify\'s own', async () => {
    // Refused by Fastify's router before any route or hook (FST_ERR_BAD_URL).
    for (const url of ['/api/panel/contacts/%E0%A4%A', '/panel/%E0%A4%A', '/%E0%A4%A?x=1', '/api/v1/contacts/%E0%A4%A']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json(), url).toEqual({
        error: {
          // The REST API's one code for malformed input (README).
          code: url.startsWith('/api/v1/') ? 'invalid_request' : 'bad_request',
          message: 'Invalid request: the URL path has a %-escape that does not decode as UTF-8 (send a literal "%" as %25).',
        },
      });
    }
  });

  it('treats a panel id of any length as any unknown id: 401 without a session, 404 with one', async () => {
    // Over 100 characters, Fastify's router used to give up on the path (FST_ERR_MAX_PARAM_LENGTH, its own shape).
    const id = 'x'.repeat(5000);
    const calls: [string, string][] = [
      ['GET', `/api/panel/operations/${id}`],
      ['GET', `/api/panel/operations/${id}/items`],
      ['POST', `/api/panel/operations/${id}/cancel`],
      ['PATCH', `/api/panel/contacts/${id}`],
      ['DELETE', `/api/panel/api-keys/${id}`],
    ];
    upsertInstallation(database.db, { locationId: 'loc-long-ids', companyId: 'co-long-ids', now: Date.now() });
    const { token } = await app.panelSessions.issue({
      userId: 'user-long-ids',
      companyId: 'co-long-ids',
      locationId: 'loc-long-ids',
      role: 'admin',
      userType: 'location',
      name: 'Admin',
      email: 'admin@example.com',
    });
    for (const [method, url] of calls) {
      const anonymous = await app.inject({ method: method as 'GET', url });
      expect(anonymous.statusCode, `${method} without a session`).toBe(401);
      expect(anonymous.json().error.code).toBe('sign_in_failed');
      const signedIn = await app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` } });
      expect(signedIn.statusCode, `${method} ${url.slice(0, 40)}`).toBe(404);
      expect(Object.keys(signedIn.json())).toEqual(['error']);
      expect(signedIn.json().error.code).toBe('not_found');
    }
  });
});

describe('http edge cases', () => {
  const open: { app: FastifyInstance; database: Database }[] = [];
  afterEach(async () => {
    for (const { app, database } of open.splice(0)) {
      await app.close();
      database.close();
    }
  });

  function start(panelDir?: string) {
    const database = openDatabase(join(dir, `edge-${open.length}-${Date.now()}`, 'tandem.db'));
    migrate(database);
    const app = buildApp({ config: loadConfig(REAL_ENV), db: database, logger: false, panelDir });
    open.push({ app, database });
    return { app, database };
  }

  it('says to build the panel when dist/web is missing', async () => {
    const empty = join(dir, 'no-panel');
    mkdirSync(empty, { recursive: true });
    const { app } = start(empty);
    const res = await app.inject({ method: 'GET', url: '/panel/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
  });

  it('leads from / to the sandbox page in the sandbox, its address escaped', async () => {
    const database = openDatabase(join(dir, `edge-${open.length}-${Date.now()}`, 'tandem.db'));
    migrate(database);
    const sandboxUrl = 'http://127.0.0.1:3001/v2/location/L1/custom-page/A1?userId=U1&x="><script>';
    const app = buildApp({ config: loadConfig(REAL_ENV, 'sandbox'), db: database, logger: false, sandboxUrl });
    open.push({ app, database });
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('<a class="open" href="http://127.0.0.1:3001/v2/location/L1/custom-page/A1?userId=U1&#38;x=&#34;&#62;&#60;script&#62;">Open HighLevel sandbox</a>');
    expect(res.body).not.toContain('<script>');
    // Not framable, as every page but the panel.
    expect(res.headers['x-frame-options']).toBe('DENY');
  });

  it('GET /health answers 503 when the database fails', async () => {
    const { app, database } = start();
    database.sqlite.close();
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'error', db: 'error' });
  });

  it('GET /health answers 503 when the database answers queries but takes no write', async () => {
    // As SQLite leaves a file it could not open for writing: open, read-only.
    const path = join(dir, `edge-readonly-${Date.now()}`, 'tandem.db');
    const writable = openDatabase(path);
    migrate(writable);
    writable.close();
    const sqlite = new Sqlite(path, { readonly: true });
    const database: Database = { sqlite, db: drizzle({ client: sqlite }) as unknown as Database['db'], close: () => sqlite.close() };
    const app = buildApp({ config: loadConfig(REAL_ENV), db: database, logger: false });
    open.push({ app, database });
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'error', db: 'not_writable', version: expect.any(String) });
    expect(writeProblem(database)).toMatch(/SQLITE_READONLY/);
  });

  it.runIf(readOnlyFiles.supported)('GET /health says so while the database file cannot be written, and ok again once it can', async () => {
    const { app, database } = start();
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    const undo = readOnlyFiles.make(database.sqlite.name);
    try {
      const res = await app.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'error', db: 'not_writable' });
    } finally {
      undo();
    }
    // The same connection, no restart.
    expect((await app.inject({ method: 'GET', url: '/health' })).json()).toMatchObject({ status: 'ok', db: 'ok' });
  });

  it('hides the details of unexpected errors and maps validation errors to 400', async () => {
    const { app } = start();
    app.get('/boom', async () => {
      throw new Error('secret internals');
    });
    app.post('/strict', { schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }, async () => ({}));
    const boom = await app.inject({ method: 'GET', url: '/boom' });
    expect(boom.statusCode).toBe(500);
    expect(boom.json()).toEqual({ error: { code: 'internal_error', message: expect.any(String) } });
    expect(boom.body).not.toContain('secret internals');
    const invalid = await app.inject({ method: 'POST', url: '/strict', payload: {} });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().error.code).toBe('invalid_request');
    expect(invalid.json().error.message).toContain('name');
  });
});

function catchConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
