// Security headers (server/security/headers.ts): nothing is framable except the panel, whose
// frame-ancestors lists HighLevel, the configured HighLevel (the emulator), FRAME_ANCESTORS and the
// white-label domains of active installations, read fresh on each request. The browser's side of
// this is test/e2e/panel.test.ts (T21).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.ts';
import { ConfigError, loadConfig } from '../../server/config.ts';
import { migrate, openDatabase, type Database } from '../../db/client.ts';
import { setInstallationStatus, setWhitelabelDomain, upsertInstallation } from '../../db/installations.ts';
import { DEFAULT_PANEL_DIR } from '../../server/routes/panel.ts';
import { configuredHighLevelOrigins, whitelabelOrigin } from '../../server/security/headers.ts';

const ENV = {
  HIGHLEVEL_CLIENT_ID: '6835011c08f18f1088f92f9f-test',
  HIGHLEVEL_CLIENT_SECRET: 'secret',
  HIGHLEVEL_SHARED_SECRET: 'shared',
  TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 2).toString('base64'),
};

let dir: string;
let database: Database;
let app: FastifyInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-headers-'));
  database = openDatabase(join(dir, 'tandem.db'));
  migrate(database);
  app = buildApp({
    config: loadConfig({
      ...ENV,
      DATA_DIR: dir,
      PUBLIC_URL: 'https://tandem.example.com',
      HIGHLEVEL_API_URL: 'http://127.0.0.1:3001',
      HIGHLEVEL_MARKETPLACE_URL: 'http://127.0.0.1:3001',
      FRAME_ANCESTORS: 'https://app.partner.example, https://*.staging.example',
    }),
    db: database,
    logger: false,
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  database?.close();
  rmSync(dir, { recursive: true, force: true });
});

function directives(csp: string | undefined): Map<string, string[]> {
  return new Map(
    (csp ?? '')
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...values]) => [name!, values]),
  );
}

async function headersOf(url: string) {
  const res = await app.inject({ method: 'GET', url });
  return { status: res.statusCode, headers: res.headers, csp: directives(res.headers['content-security-policy'] as string) };
}

describe('framing headers', () => {
  it('makes every route but the panel unframable', async () => {
    // (A path that does not decode is refused by Fastify's router before any hook: errors.ts sets these.)
    for (const url of ['/health', '/api/panel/context', '/oauth/install', '/nope', '/', '/panel', '/%E0%A4%A', '/panel/%E0%A4%A']) {
      const { headers, csp } = await headersOf(url);
      expect.soft(csp.get('frame-ancestors'), url).toEqual(["'none'"]);
      expect.soft(headers['x-frame-options'], url).toBe('DENY');
      expect.soft(headers['x-content-type-options'], url).toBe('nosniff');
    }
  });

  it('lets HighLevel, the configured HighLevel and FRAME_ANCESTORS frame the panel and its files', async () => {
    const index = await headersOf('/panel/');
    expect(index.status).toBe(200);
    const asset = /\/panel\/assets\/[^"]+\.js/.exec((await app.inject({ url: '/panel/' })).body)![0];
    for (const { headers, csp } of [index, await headersOf(asset)]) {
      expect(headers['x-frame-options']).toBeUndefined();
      expect(csp.get('frame-ancestors')).toEqual([
        'https://*.gohighlevel.com',
        'https://*.leadconnectorhq.com',
        'http://127.0.0.1:3001',
        'http://localhost:3001',
        'https://app.partner.example',
        'https://*.staging.example',
      ]);
      // A strict policy for the panel's own content: no inline code or styles, same-origin calls.
      expect(csp.get('script-src')).toEqual(["'self'"]);
      expect(csp.get('style-src')).toEqual(["'self'"]);
      expect(csp.get('connect-src')).toEqual(["'self'"]);
      expect(csp.get('object-src')).toEqual(["'none'"]);
      expect(csp.has('upgrade-insecure-requests')).toBe(true);
    }
    expect(index.headers['strict-transport-security']).toContain('max-age=31536000');
  });

  it('adds the white-label domains of active installations, at once and only while they are installed', async () => {
    const frameAncestors = async () => (await headersOf('/panel/')).csp.get('frame-ancestors') ?? [];
    expect(await frameAncestors()).not.toContain('https://app.agency-one.example');
    upsertInstallation(database.db, { locationId: 'loc-1', companyId: 'co-1', now: 1, whitelabelDomain: 'app.agency-one.example' });
    upsertInstallation(database.db, { locationId: 'loc-2', companyId: 'co-2', now: 1, whitelabelDomain: 'https://App.Agency-Two.example/' });
    // Data from a webhook never reaches the header unless it is a plain host name.
    upsertInstallation(database.db, { locationId: 'loc-3', companyId: 'co-3', now: 1, whitelabelDomain: "evil.example; script-src 'unsafe-inline'" });
    upsertInstallation(database.db, { locationId: 'loc-4', companyId: 'co-4', now: 1, whitelabelDomain: '*' });
    expect(await frameAncestors()).toEqual(expect.arrayContaining(['https://app.agency-one.example', 'https://app.agency-two.example']));
    const header = (await app.inject({ url: '/panel/' })).headers['content-security-policy'] as string;
    expect(header).not.toContain('evil');
    expect(header).not.toMatch(/ \*( |;|$)/);
    setInstallationStatus(database.db, 'loc-1', 'uninstalled', 2);
    setWhitelabelDomain(database.db, 'co-2', null, 2);
    const after = await frameAncestors();
    expect(after).not.toContain('https://app.agency-one.example');
    expect(after).not.toContain('https://app.agency-two.example');
  });

  it('omits HSTS and upgrade-insecure-requests when Tandem is served over http (the sandbox)', async () => {
    const local = buildApp({ config: loadConfig({ ...ENV, DATA_DIR: dir }), db: database, logger: false });
    try {
      const res = await local.inject({ url: '/panel/' });
      expect(res.headers['strict-transport-security']).toBeUndefined();
      expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      // The public HighLevel hosts are covered by the wildcards, not repeated.
      expect(directives(res.headers['content-security-policy'] as string).get('frame-ancestors')).toEqual([
        'https://*.gohighlevel.com',
        'https://*.leadconnectorhq.com',
      ]);
    } finally {
      await local.close();
    }
  });

  it('the built panel needs no inline script or style', () => {
    const html = readFileSync(join(DEFAULT_PANEL_DIR, 'index.html'), 'utf8');
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=/);
  });
});

describe('frame origin helpers', () => {
  it('turns white-label domains into https origins and refuses anything else', () => {
    expect(whitelabelOrigin('app.agency.example')).toBe('https://app.agency.example');
    expect(whitelabelOrigin(' HTTPS://App.Agency.example/path ')).toBe('https://app.agency.example');
    for (const bad of ['', '*', '*.agency.example', 'agency', 'a b.example', "x.example'", 'x.example;y', '-x.example', 'x..example']) {
      expect.soft(whitelabelOrigin(bad), bad).toBeNull();
    }
  });

  it('allows a loopback HighLevel under both names, and skips the public HighLevel hosts', () => {
    const hl = (apiUrl: string, marketplaceUrl: string) => ({ highlevel: { apiUrl, marketplaceUrl } }) as Parameters<typeof configuredHighLevelOrigins>[0];
    expect(configuredHighLevelOrigins(hl('http://localhost:3001', 'http://localhost:3001'))).toEqual(['http://localhost:3001', 'http://127.0.0.1:3001']);
    expect(configuredHighLevelOrigins(hl('https://services.leadconnectorhq.com', 'https://marketplace.gohighlevel.com'))).toEqual([]);
    expect(configuredHighLevelOrigins(hl('https://hl-staging.example', 'https://hl-staging.example/market'))).toEqual(['https://hl-staging.example']);
  });

  it('rejects FRAME_ANCESTORS entries that are not origins', () => {
    for (const bad of ['app.example.com', "https://x.example 'unsafe-inline'", 'https://x.example/path', '*']) {
      expect.soft(() => loadConfig({ ...ENV, FRAME_ANCESTORS: bad }), bad).toThrow(ConfigError);
    }
    expect(loadConfig({ ...ENV, FRAME_ANCESTORS: 'https://a.example https://b.example:8443' }).frameAncestors).toEqual([
      'https://a.example',
      'https://b.example:8443',
    ]);
  });
});
