// Panel session tokens (server/auth/session.ts) on a manual clock: issue, verify, expiry, and the
// tokens that must not pass (other audience, issuer, key or type; tampered; unsigned).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { migrate, openDatabase, type Database } from '../../db/client.ts';
import {
  SESSION_AUDIENCE,
  SESSION_ISSUER,
  SESSION_TTL_MS,
  SIGN_IN_FAILED,
  createPanelSessions,
  deriveSessionKey,
  requireAdmin,
  type PanelSessionClaims,
} from '../../server/auth/session.ts';
import { AppError } from '../../server/errors.ts';
import { ManualClock } from '../helpers/emulator.ts';

const KEY = Buffer.alloc(32, 3);
const claims: PanelSessionClaims = {
  userId: 'user-1',
  companyId: 'company-1',
  locationId: 'location-1',
  role: 'admin',
  userType: 'agency',
  name: 'Ada Owner',
  email: 'ada@example.com',
};

let dir: string;
let database: Database;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-session-'));
  database = openDatabase(join(dir, 'tandem.db'));
  migrate(database);
});
afterAll(() => {
  database.close();
  rmSync(dir, { recursive: true, force: true });
});

function sessions(clock = new ManualClock(), key = KEY) {
  return { clock, sessions: createPanelSessions({ tokenEncryptionKey: key, clock, db: database.db }) };
}

async function refused(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  const app = err as AppError;
  expect({ status: app.status, code: app.code, message: app.message }).toEqual({ status: 401, ...SIGN_IN_FAILED });
  return app;
}

/** A token signed with the session key but with chosen claims and header. */
function forge(opts: { audience?: string; issuer?: string; typ?: string; key?: Uint8Array; iat: number; exp: number }) {
  return new SignJWT({ ...claims, sub: claims.userId })
    .setProtectedHeader({ alg: 'HS256', typ: opts.typ ?? 'tandem-panel+jwt' })
    .setSubject(claims.userId)
    .setIssuer(opts.issuer ?? SESSION_ISSUER)
    .setAudience(opts.audience ?? SESSION_AUDIENCE)
    .setIssuedAt(opts.iat)
    .setExpirationTime(opts.exp)
    .sign(opts.key ?? deriveSessionKey(KEY));
}

describe('panel sessions', () => {
  it('issues a token for 15 minutes that verifies to the same claims', async () => {
    const { clock, sessions: s } = sessions();
    const issued = await s.issue(claims);
    expect(issued.expiresAt).toBe(clock.now() + SESSION_TTL_MS);
    const session = await s.verify(issued.token);
    expect(session).toEqual({ ...claims, issuedAt: clock.now(), expiresAt: issued.expiresAt });
    // The token carries no secret: only identifiers, role, name and email.
    const payload = JSON.parse(Buffer.from(issued.token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(Object.keys(payload).sort()).toEqual(['aud', 'companyId', 'email', 'exp', 'iat', 'iss', 'locationId', 'name', 'role', 'sub', 'userType']);
  });

  it('expires exactly at its expiry on the injected clock', async () => {
    const { clock, sessions: s } = sessions();
    const { token } = await s.issue(claims);
    clock.advance(SESSION_TTL_MS - 1000);
    await expect(s.verify(token)).resolves.toMatchObject({ userId: 'user-1' });
    clock.advance(1000);
    await refused(s.verify(token));
  });

  it('refuses tokens for another audience, another issuer, another type or another key', async () => {
    const { clock, sessions: s } = sessions();
    const iat = Math.floor(clock.now() / 1000);
    const exp = iat + 600;
    // The forger really holds the key, so only the named difference can be what fails.
    await expect(s.verify(await forge({ iat, exp }))).resolves.toMatchObject({ role: 'admin' });
    await refused(s.verify(await forge({ iat, exp, audience: 'tandem:api' })));
    await refused(s.verify(await forge({ iat, exp, issuer: 'someone-else' })));
    await refused(s.verify(await forge({ iat, exp, typ: 'JWT' })));
    await refused(s.verify(await forge({ iat, exp, key: deriveSessionKey(Buffer.alloc(32, 4)) })));
    // A token from an installation with another TOKEN_ENCRYPTION_KEY.
    const other = sessions(clock, Buffer.alloc(32, 9)).sessions;
    await refused(s.verify((await other.issue(claims)).token));
  });

  it('refuses a tampered token, an unsigned token and garbage', async () => {
    const { sessions: s } = sessions();
    const { token } = await s.issue(claims);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const promoted = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), locationId: 'location-2' })).toString('base64url');
    await refused(s.verify(`${header}.${promoted}.${signature}`));
    const flipped = signature.slice(0, -2) + (signature.at(-2) === 'A' ? 'B' : 'A') + signature.at(-1);
    await refused(s.verify(`${header}.${payload}.${flipped}`));
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'tandem-panel+jwt' })).toString('base64url');
    await refused(s.verify(`${none}.${payload}.`));
    for (const garbage of ['', 'abc', 'a.b.c', `${token}x`]) await refused(s.verify(garbage));
  });

  it('derives the signing key from the token key alone, distinct from it', () => {
    expect(Buffer.from(deriveSessionKey(KEY))).toEqual(Buffer.from(deriveSessionKey(Buffer.alloc(32, 3))));
    expect(Buffer.from(deriveSessionKey(KEY))).not.toEqual(KEY);
    expect(Buffer.from(deriveSessionKey(KEY))).not.toEqual(Buffer.from(deriveSessionKey(Buffer.alloc(32, 4))));
  });
});

describe('requireAdmin', () => {
  it('lets admins through and gives plain users a 403', () => {
    const session = { ...claims, issuedAt: 0, expiresAt: 1 };
    expect(() => requireAdmin(session)).not.toThrow();
    let err: unknown;
    try {
      requireAdmin({ ...session, role: 'user' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 403, code: 'admin_only' });
  });
});
