// `npm run tandem -- installations`: an aligned table (or JSON) of every installation with its status
// and token expiry, read from DATA_DIR without HighLevel credentials, and never a token.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase } from '../../db/client.ts';
import { setInstallationStatus, setLocationName, upsertInstallation } from '../../db/installations.ts';
import { saveGrant } from '../../db/tokens.ts';
import { runCli } from '../../server/cli.ts';
import type { TokenGrant } from '../../server/highlevel/oauth.ts';
import { createTokenCipher } from '../../server/security/token-cipher.ts';
import { installedTandem } from '../helpers/tandem.ts';

const NOW = Date.parse('2026-03-10T12:00:00.000Z');
const HOUR = 3_600_000;
const ACCESS = 'eyJhbGciOiJSUzI1NiJ9.secret-access-token-value.sig';
const REFRESH = 'eyJhbGciOiJSUzI1NiJ9.secret-refresh-token-value.sig';

const dir = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
const emptyDir = mkdtempSync(join(tmpdir(), 'tandem-cli-empty-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(emptyDir, { recursive: true, force: true });
});

function grant(locationId: string, expiresAt: number): TokenGrant {
  return {
    accessToken: ACCESS,
    refreshToken: REFRESH,
    expiresAt,
    scopes: ['contacts.readonly'],
    userType: 'Location',
    locationId,
    companyId: 'CompanyA',
    approvedLocations: [],
    installToFutureLocations: false,
    isBulkInstallation: false,
  };
}

beforeAll(() => {
  const database = openDatabase(join(dir, 'tandem.db'));
  migrate(database);
  const db = database.db;
  const cipher = createTokenCipher(Buffer.alloc(32, 3));
  const at = NOW - 2 * HOUR;
  upsertInstallation(db, { locationId: 'LocActive', companyId: 'CompanyA', now: at, locationName: 'Cedar Dental Studio' });
  saveGrant(db, cipher, grant('LocActive', NOW + 23 * HOUR + 59 * 60_000), at);
  upsertInstallation(db, { locationId: 'LocReauth', companyId: 'CompanyA', now: at, locationName: 'Summit Roofing' });
  setInstallationStatus(db, 'LocReauth', 'needs_reauth', NOW - 5 * 60_000, 'Invalid grant: refresh token is invalid');
  upsertInstallation(db, { locationId: 'LocPaused', companyId: 'CompanyB', now: at });
  saveGrant(db, cipher, { ...grant('LocPaused', NOW - HOUR), companyId: 'CompanyB' }, at);
  setInstallationStatus(db, 'LocPaused', 'paused', NOW - 30 * 60_000, 'Location is not active');
  upsertInstallation(db, { locationId: 'LocGone', companyId: 'CompanyB', now: at });
  setLocationName(db, 'LocGone', 'Old Bakery', at);
  setInstallationStatus(db, 'LocGone', 'uninstalled', NOW - 3 * 24 * HOUR);
  database.close();
});

function run(args: string[], env: NodeJS.ProcessEnv = { DATA_DIR: dir }): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runCli(args, { env, now: NOW, out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

describe('tandem installations', () => {
  it('prints an aligned table with every status, token expiry and when each row changed', () => {
    const { code, out } = run(['installations']);
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    const header = lines[0]!;
    const columns = ['LOCATION ID', 'NAME', 'COMPANY', 'STATUS', 'TOKEN EXPIRES', 'UPDATED', 'REASON'];
    const starts = columns.map((c) => header.indexOf(c));
    expect(starts.every((s, i) => s >= 0 && (i === 0 || s > starts[i - 1]!))).toBe(true);
    const row = (id: string) => {
      const line = lines.find((l) => l.startsWith(id))!;
      return Object.fromEntries(columns.map((c, i) => [c, line.slice(starts[i], starts[i + 1]).trim()]));
    };

    expect(row('LocActive')).toEqual({
      'LOCATION ID': 'LocActive',
      NAME: 'Cedar Dental Studio',
      COMPANY: 'CompanyA',
      STATUS: 'active',
      'TOKEN EXPIRES': 'in 23h 59m (2026-03-11T11:59:00Z)',
      UPDATED: '2h 0m ago (2026-03-10T10:00:00Z)',
      REASON: '',
    });
    expect(row('LocReauth')).toMatchObject({
      STATUS: 'needs re-auth',
      'TOKEN EXPIRES': '-',
      UPDATED: '5m ago (2026-03-10T11:55:00Z)',
      REASON: 'Invalid grant: refresh token is invalid',
    });
    expect(row('LocPaused')).toMatchObject({
      NAME: '-',
      COMPANY: 'CompanyB',
      STATUS: 'paused',
      'TOKEN EXPIRES': 'expired 1h 0m ago (2026-03-10T11:00:00Z)',
      REASON: 'Location is not active',
    });
    expect(row('LocGone')).toMatchObject({ NAME: 'Old Bakery', STATUS: 'uninstalled', 'TOKEN EXPIRES': '-', UPDATED: '3d 0h ago (2026-03-07T12:00:00Z)' });
    expect(out).not.toContain('secret-');
  });

  it('prints JSON for scripts, without token material', () => {
    const { code, out } = run(['installations', '--json']);
    expect(code).toBe(0);
    const rows = JSON.parse(out) as Record<string, unknown>[];
    expect(rows.map((r) => r.status).sort()).toEqual(['active', 'needs_reauth', 'paused', 'uninstalled']);
    expect(rows.find((r) => r.locationId === 'LocActive')).toEqual({
      locationId: 'LocActive',
      name: 'Cedar Dental Studio',
      companyId: 'CompanyA',
      status: 'active',
      statusReason: null,
      tokenExpiresAt: '2026-03-11T11:59:00.000Z',
      installedAt: '2026-03-10T10:00:00.000Z',
      updatedAt: '2026-03-10T10:00:00.000Z',
      uninstalledAt: null,
      whitelabelDomain: null,
    });
    expect(out).not.toContain('secret-');
  });

  it('says clearly when there are none, and does not create a database to say it', () => {
    const missing = run(['installations'], { DATA_DIR: emptyDir, PUBLIC_URL: 'https://tandem.example.com' });
    expect(missing.code).toBe(0);
    expect(missing.out).toContain('No installations');
    expect(missing.out).toContain('https://tandem.example.com/oauth/install');
    expect(existsSync(join(emptyDir, 'tandem.db'))).toBe(false);
    expect(run(['installations', '--json'], { DATA_DIR: emptyDir }).out.trim()).toBe('[]');

    const database = openDatabase(join(emptyDir, 'tandem.db'));
    migrate(database);
    database.close();
    const empty = run(['installations'], { DATA_DIR: emptyDir });
    expect(empty.out).toContain('No installations yet');
  });

  it('says what is wrong when DATABASE_PATH names a folder or DATA_DIR runs through a file', () => {
    const folder = run(['installations'], { DATABASE_PATH: dir });
    expect(folder).toMatchObject({ code: 1, out: '' });
    expect(folder.err).toContain(`${dir} is a folder`);
    expect(folder.err).toContain('Set DATABASE_PATH');
    // Under a file there is no database: said as for a missing one.
    const throughFile = run(['installations'], { DATA_DIR: join(dir, 'tandem.db', 'data') });
    expect(throughFile.code).toBe(0);
    expect(throughFile.out).toContain('No installations');
  });

  it('explains its usage on an unknown command or option', () => {
    expect(run(['instalations']).code).toBe(2);
    const bad = run(['installations', '--yaml']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('Unknown option: --yaml');
  });

  it('runs as `npm run tandem` does, with no HighLevel credentials (sandbox data dir)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'installations'], {
      cwd: join(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH, DATABASE_PATH: join(dir, 'tandem.db') },
    });
    expect(stdout).toContain('LocActive');
    expect(stdout).toMatch(/needs re-auth/);
  });

  it('lists what a real install created while Tandem is running', async () => {
    const t = await installedTandem({ locationName: 'Lakeside Physio' });
    try {
      const { code, out } = run(['installations', '--json'], { DATA_DIR: t.dataDir });
      expect(code).toBe(0);
      const rows = JSON.parse(out) as Record<string, unknown>[];
      expect(rows).toEqual([
        expect.objectContaining({ locationId: t.location.id, name: 'Lakeside Physio', companyId: t.agency.companyId, status: 'active' }),
      ]);
      expect(Date.parse(rows[0]!.tokenExpiresAt as string)).toBeGreaterThan(Date.now());
    } finally {
      await t.close();
    }
  });
});
