// Panel sessions: after HighLevel's encrypted user-data handshake, Tandem issues a short-lived
// HS256 token (jose) bound to user, company, location and role. The panel holds it in memory and
// sends it as a Bearer header; no cookies exist inside the iframe, so there is nothing to forge
// cross-site. Every request re-checks the installation and the user, so an uninstall, or a user
// Tandem knows HighLevel deactivated, ends sessions at once (see panelAccess for how soon it knows).
import { hkdfSync } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SignJWT, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { highLevelUsersListed, listedHighLevelUser } from '../../db/highlevel-users.ts';
import { getInstallation, type Installation } from '../../db/installations.ts';

export const SESSION_TTL_MS = 15 * 60 * 1000;
export const SESSION_ISSUER = 'tandem';
export const SESSION_AUDIENCE = 'tandem:panel';
/** A distinct `typ` so no other JWT signed with a sibling key can pass as a panel session. */
const SESSION_TYPE = 'tandem-panel+jwt';
const HKDF_INFO = 'tandem panel session v1';

export type SessionRole = 'admin' | 'user';

export interface PanelSessionClaims {
  userId: string;
  companyId: string;
  locationId: string;
  role: SessionRole;
  userType: 'agency' | 'location';
  name: string;
  email: string;
}

export interface PanelSession extends PanelSessionClaims {
  /** Epoch ms. */
  issuedAt: number;
  /** Epoch ms. */
  expiresAt: number;
}

export interface IssuedSession {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** The one answer for every sign-in or session failure, so a caller learns nothing from it. */
export const SIGN_IN_FAILED = {
  code: 'sign_in_failed',
  message: 'Tandem could not verify your HighLevel sign-in. Reload the page; if this keeps happening, contact support.',
} as const;

export function signInFailed(): AppError {
  return new AppError(401, SIGN_IN_FAILED.code, SIGN_IN_FAILED.message);
}

/**
 * The two answers that say more than SIGN_IN_FAILED, only to a caller holding user data HighLevel
 * encrypted or a session Tandem signed: the sub-account has no installation of Tandem (the panel's
 * "not installed" screen), or the caller's own HighLevel user is no longer active there.
 */
export const NOT_INSTALLED = {
  code: 'not_installed',
  uninstalled: 'Tandem was uninstalled from this sub-account, so it no longer syncs its contacts.',
  never: 'Tandem is not installed on this sub-account.',
} as const;

export const USER_INACTIVE = {
  code: 'user_inactive',
  message:
    'Your HighLevel user is deactivated, or no longer has access to this sub-account, so Tandem does not let it in. If that is a mistake, ask an admin of this sub-account or your agency to reactivate it in HighLevel.',
} as const;

export function notInstalled(installation: Installation | undefined): AppError {
  return new AppError(403, NOT_INSTALLED.code, installation ? NOT_INSTALLED.uninstalled : NOT_INSTALLED.never);
}

/**
 * The installation a panel user works with, checked at the sign-in and on every request: it exists
 * for the user's company and is not uninstalled, and the user is not one Tandem knows HighLevel
 * deactivated or deleted. Nothing here asks HighLevel. Returns it with the role the user gets:
 * admin only when HighLevel's user data says admin (`claimed`) and, if the location's last listing
 * of its users (HighLevel's API, the location's token) gave this user a role, that role is admin
 * too. The user data is AES-CBC without integrity (server/highlevel/sso.ts): the listing is what a
 * splice cannot reach. A user the listing does not know (an agency user HighLevel does not list per
 * location) keeps the user data's role. Checked at sign-in and on every request, so a demotion in
 * HighLevel takes effect with the next listing (hourly, or after a user webhook).
 *
 * What remains: Tandem learns of a deactivation only when it lists the location's users, which the
 * sync loop does on the pass after HighLevel's UserUpdate or UserDelete webhook (seconds), else
 * hourly, and not while the location's sync is paused or needs re-auth. Until then the user's
 * session works for its 15 minutes and renews, since HighLevel's encrypted user data carries no
 * time and so is not refused for age.
 */
export function panelAccess(
  db: Db,
  who: { locationId: string; companyId: string; userId: string; userType?: 'agency' | 'location' },
  claimed: string,
): { installation: Installation; role: SessionRole } {
  const installation = getInstallation(db, who.locationId);
  // Another company's location: the uniform refusal, whatever its state.
  if (installation && installation.companyId !== who.companyId) throw signInFailed();
  if (!installation || installation.status === 'uninstalled') throw notInstalled(installation);
  const listed = listedHighLevelUser(db, who.locationId, who.userId);
  if (listed?.inactive) throw new AppError(403, USER_INACTIVE.code, USER_INACTIVE.message);
  // A sub-account user the location's listing does not have is not known to be one of its users
  // (agency users are not listed per location): read-only until a listing has them, which a user
  // added in HighLevel gets within seconds (its webhook) or the hour, from their next sign-in on
  // (a reload; the panel signs in again before its session ends). The user data alone names
  // the location, and is not proof of rights there (QA: a payload naming another location was an admin there).
  const unknownHere = listed === undefined && who.userType === 'location' && highLevelUsersListed(db, who.locationId);
  // HighLevel roles other than admin (user, and any we do not know) get the read-only view.
  const role = claimed === 'admin' && !unknownHere && (listed?.role == null || listed.role === 'admin') ? 'admin' : 'user';
  return { installation, role };
}

/**
 * The signing key, derived from the token encryption key with HKDF so the panel needs no secret
 * of its own; the `info` label separates it from every other use of that key.
 */
export function deriveSessionKey(tokenEncryptionKey: Buffer): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', tokenEncryptionKey, Buffer.alloc(0), HKDF_INFO, 32));
}

const claimsSchema = z.object({
  sub: z.string().min(1),
  companyId: z.string().min(1),
  locationId: z.string().min(1),
  role: z.enum(['admin', 'user']),
  userType: z.enum(['agency', 'location']),
  name: z.string(),
  email: z.string(),
  iat: z.number().int(),
  exp: z.number().int(),
});

export interface PanelSessions {
  issue(claims: PanelSessionClaims): Promise<IssuedSession>;
  /** Checks signature, issuer, audience, type and expiry; throws the uniform 401. */
  verify(token: string): Promise<PanelSession>;
  /**
   * A verified session whose installation and user are still good (panelAccess): the uniform 401,
   * or a 403 saying the sub-account is not installed or the user inactive. Returns the
   * installation too, read fresh, so routes need not read it again.
   */
  authenticate(req: FastifyRequest): Promise<{ session: PanelSession; installation: Installation }>;
}

export function createPanelSessions(deps: { tokenEncryptionKey: Buffer; clock: Clock; db: Db; ttlMs?: number }): PanelSessions {
  const key = deriveSessionKey(deps.tokenEncryptionKey);
  const ttlMs = deps.ttlMs ?? SESSION_TTL_MS;

  const verify = async (token: string): Promise<PanelSession> => {
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        issuer: SESSION_ISSUER,
        audience: SESSION_AUDIENCE,
        typ: SESSION_TYPE,
        currentDate: new Date(deps.clock.now()),
        clockTolerance: 0,
        requiredClaims: ['sub', 'iat', 'exp'],
      });
      const c = claimsSchema.parse(payload);
      return {
        userId: c.sub,
        companyId: c.companyId,
        locationId: c.locationId,
        role: c.role,
        userType: c.userType,
        name: c.name,
        email: c.email,
        issuedAt: c.iat * 1000,
        expiresAt: c.exp * 1000,
      };
    } catch {
      throw signInFailed();
    }
  };

  return {
    async issue(claims) {
      // JWT times are whole seconds; expiresAt is reported exactly as the token states it.
      const iat = Math.floor(deps.clock.now() / 1000);
      const exp = iat + Math.floor(ttlMs / 1000);
      const token = await new SignJWT({
        companyId: claims.companyId,
        locationId: claims.locationId,
        role: claims.role,
        userType: claims.userType,
        name: claims.name,
        email: claims.email,
      })
        .setProtectedHeader({ alg: 'HS256', typ: SESSION_TYPE })
        .setSubject(claims.userId)
        .setIssuer(SESSION_ISSUER)
        .setAudience(SESSION_AUDIENCE)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(key);
      return { token, expiresAt: exp * 1000 };
    },
    verify,
    async authenticate(req) {
      const session = await verify(bearerToken(req));
      const { installation, role } = panelAccess(deps.db, session, session.role);
      return { session: role === session.role ? session : { ...session, role }, installation };
    },
  };
}

/** The Bearer credential, and only that: cookies and query parameters are never read. */
function bearerToken(req: FastifyRequest): string {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header) : null;
  if (!match?.[1] || match[1].length > 4096) throw signInFailed();
  return match[1];
}

declare module 'fastify' {
  interface FastifyInstance {
    panelSessions: PanelSessions;
  }
}

/** Makes the sessions reachable from every route through `requireSession(req)`. */
export function installPanelSessions(app: FastifyInstance, sessions: PanelSessions): void {
  app.decorate('panelSessions', sessions);
}

/** The request's panel session, or the uniform 401 (or panelAccess's 403). */
export async function requireSession(req: FastifyRequest): Promise<PanelSession> {
  return (await req.server.panelSessions.authenticate(req)).session;
}

/**
 * Plain users may look; only admins may change settings, contacts or API keys, or start operations.
 * `what`: what was refused, in the refusal's words ("change Tandem’s settings", "manage API keys").
 */
export function requireAdmin(session: PanelSession, what = 'change Tandem’s settings'): void {
  if (session.role !== 'admin') {
    throw new AppError(403, 'admin_only', `Only admins can ${what}. Ask an admin of this sub-account or your agency.`);
  }
}
