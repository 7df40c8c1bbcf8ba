// The panel's API: the sign-in exchange (HighLevel's encrypted user data → a panel session) and
// the signed-in context. The tenant is the session's location and nothing else: no route reads a
// location id from the URL, query or body.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { AppError, errorBody } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { getInstallation, type Installation } from '../../db/installations.ts';
import { decryptSsoPayload } from '../highlevel/sso.ts';
import { NOT_INSTALLED, SIGN_IN_FAILED, panelAccess, signInFailed, type PanelSession, type PanelSessions } from '../auth/session.ts';
import { createRateLimiter, type RateLimiter } from '../auth/rate-limit.ts';
import { tenant } from './tenant.ts';

/** The encrypted user data is at most 8 KiB of base64 (server/highlevel/sso.ts); JSON adds little. */
const SESSION_BODY_LIMIT = 10 * 1024;
const sessionBody = z.strictObject({ payload: z.string().min(1).max(8192) });

/**
 * Genuine user data that names no sub-account: HighLevel opened the panel from the agency view (an
 * agency-level custom page), where Tandem has no location to show. Said plainly, with what to do,
 * only to a caller holding user data HighLevel encrypted; the panel shows its own screen for it.
 */
export const NO_SUB_ACCOUNT = {
  code: 'no_sub_account',
  message:
    'Tandem works inside a sub-account, and HighLevel opened it from the agency view. Switch to the sub-account whose contacts you want to sync, then choose Tandem in its left menu.',
} as const;

/**
 * The exchange's answer for a sub-account Tandem was never installed on. panelAccess answers
 * not_installed for it and for one Tandem was uninstalled from alike (their messages differ); the
 * panel words its screen apart for each (install it, or install it again), so it needs a code to
 * tell them by. Only the exchange meets it: a session exists only for an installed sub-account, and
 * an installation row is never deleted.
 */
export const NEVER_INSTALLED = { code: 'never_installed', message: NOT_INSTALLED.never } as const;

/** Per client IP: a burst of 20 exchanges, then one every 3 seconds. */
export const EXCHANGE_LIMIT = { capacity: 20, windowMs: 60_000 } as const;

export interface PanelView {
  user: { id: string; name: string; email: string; role: PanelSession['role']; type: PanelSession['userType'] };
  location: { id: string; name: string | null; installedAt: string };
  connection: { status: 'active' | 'needs_reauth' | 'paused'; reason: string | null; reconnectUrl: string };
}

export interface SessionResponse extends PanelView {
  token: string;
  /** ISO time at which the token stops working. */
  expiresAt: string;
  /** Seconds until then; the panel schedules its refresh from this, immune to its own clock's skew. */
  expiresIn: number;
}

export function registerPanelApiRoutes(
  app: FastifyInstance,
  deps: { config: Config; db: Db; clock: Clock; sessions: PanelSessions; limiter?: RateLimiter },
): void {
  const { config, db, clock, sessions } = deps;
  const limiter = deps.limiter ?? createRateLimiter({ clock, ...EXCHANGE_LIMIT });
  const reconnectUrl = `${config.publicUrl}/oauth/install`;

  const view = (session: PanelSession, installation: Installation): PanelView => ({
    user: { id: session.userId, name: session.name, email: session.email, role: session.role, type: session.userType },
    location: {
      id: installation.locationId,
      name: installation.locationName,
      installedAt: new Date(installation.installedAt).toISOString(),
    },
    connection: {
      // An uninstalled installation never gets this far (sessions refuse it).
      status: installation.status === 'uninstalled' ? 'needs_reauth' : installation.status,
      reason: installation.statusReason,
      reconnectUrl,
    },
  });

  app.post(
    '/api/panel/session',
    {
      ...tenant('sso'),
      bodyLimit: SESSION_BODY_LIMIT,
      // Before the body is read, so a flood costs no parsing or decryption.
      onRequest: async (req, reply) => {
        const taken = limiter.take(req.ip);
        if (!taken.allowed) {
          reply.header('retry-after', String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))));
          throw new AppError(429, 'too_many_requests', 'Too many sign-in attempts from this network. Wait a minute, then reload the page.');
        }
      },
      // Every failure of the exchange, including a body that is too large, malformed or of the
      // wrong type, is the same 401: a caller learns nothing about why. Only user data HighLevel
      // encrypted gets a 403: panelAccess's (not installed here, or the user inactive), never
      // installed here (NEVER_INSTALLED), or the agency view's (NO_SUB_ACCOUNT).
      errorHandler: (err: FastifyError | AppError, req: FastifyRequest, reply: FastifyReply) => {
        if (err instanceof AppError && (err.status === 429 || err.status === 403)) return reply.code(err.status).send(errorBody(err.code, err.message));
        if (!(err instanceof AppError) && !(typeof err.statusCode === 'number' && err.statusCode < 500)) {
          req.log.error({ err }, 'panel sign-in failed unexpectedly');
        }
        return reply.code(401).send(errorBody(SIGN_IN_FAILED.code, SIGN_IN_FAILED.message));
      },
    },
    async (req, reply): Promise<SessionResponse> => {
      const body = sessionBody.safeParse(req.body);
      if (!body.success) throw signInFailed();
      let user;
      try {
        user = decryptSsoPayload(body.data.payload, config.highlevel.sharedSecret);
      } catch {
        // Worth an operator's eye: a wrong Shared Secret, or someone altering their user data
        // (server/highlevel/sso.ts). At most the rate limit's attempts per address get here.
        req.log.warn({ ip: req.ip }, 'panel sign-in refused: the user data did not decrypt or is not as HighLevel writes it');
        throw signInFailed();
      }
      // The panel is a location's custom page: agency context (no active location) has no tenant.
      // The user data is genuine, so its holder is told what to do instead of "contact support" (QA).
      const locationId = user.activeLocation;
      if (!locationId) throw new AppError(403, NO_SUB_ACCOUNT.code, NO_SUB_ACCOUNT.message);
      // Never installed here said apart from uninstalled; everything else is panelAccess's to check.
      if (!getInstallation(db, locationId)) throw new AppError(403, NEVER_INSTALLED.code, NEVER_INSTALLED.message);
      const { installation, role } = panelAccess(db, { locationId, companyId: user.companyId, userId: user.userId, userType: user.type }, user.role);
      const claims = {
        userId: user.userId,
        companyId: user.companyId,
        locationId,
        role,
        userType: user.type,
        name: user.userName?.trim() || user.email || 'HighLevel user',
        email: user.email ?? '',
      };
      const issued = await sessions.issue(claims);
      const session: PanelSession = { ...claims, issuedAt: clock.now(), expiresAt: issued.expiresAt };
      reply.header('cache-control', 'no-store');
      return {
        token: issued.token,
        expiresAt: new Date(issued.expiresAt).toISOString(),
        expiresIn: Math.max(0, Math.floor((issued.expiresAt - clock.now()) / 1000)),
        ...view(session, installation),
      };
    },
  );

  app.get('/api/panel/context', { ...tenant('session') }, async (req, reply): Promise<PanelView> => {
    const { session, installation } = await sessions.authenticate(req);
    reply.header('cache-control', 'no-store');
    return view(session, installation);
  });
}
