// The REST API's rate limits (RELIABILITY.md: rate limits per tenant), two token buckets on the
// injected clock (server/auth/rate-limit.ts):
//   - per location, for every request its keys make: one runaway script cannot take the single
//     SQLite writer, nor the location's HighLevel budget, from everyone else;
//   - per client address, for failed authentications (an unknown or revoked key): keys cannot be
//     tried at speed. While an address is over it, its requests are refused before their key is
//     read, a good key's too: answering a good key then would tell a guesser it had found one.
// Both run on the app thread, in the API's onRequest hook: only there is the key verified (the
// tenant), and req.ip is the client's, through the front (server/security/front-secret.ts) and
// any proxy TRUST_PROXY names.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import { createRateLimiter } from './rate-limit.ts';

export interface ApiRateLimit {
  /** Requests a location may make at once. */
  burst: number;
  /** Requests a location regains per second, up to the burst. */
  perSecond: number;
}

/**
 * 300 at once, then 20 a second (API_RATE_LIMIT_BURST, API_RATE_LIMIT_PER_SECOND). A dialer looks
 * up each caller by phone and logs each call; a help desk reads a contact per ticket opened and
 * pages through changes every minute; an import sends a few hundred writes in a row. Those are
 * bursts of a few hundred and tens a second at their busiest. More than 20 a second for long is a
 * script gone round in a loop: what goes on to HighLevel is paced at HighLevel's own budget (100
 * requests per 10 seconds per location) anyway, so faster writes would only queue up behind it.
 */
export const API_RATE_LIMIT_DEFAULT: ApiRateLimit = { burst: 300, perSecond: 20 };

/**
 * Per client address: 20 failed authentications at once, then one every 3 seconds. A client with
 * a revoked key finds out long before that; a guesser gets 28,800 tries a day against keys of
 * about 190 random bits (db/api-keys.ts).
 */
export const BAD_KEY_LIMIT = { capacity: 20, windowMs: 60_000 } as const;

/** Locations remembered at most (one number each); far more than one process serves. */
const MAX_LOCATIONS = 100_000;

export interface ApiLimits {
  /** Before the key is read: a 429 for an address over its failed-authentication budget. */
  admit(req: FastifyRequest, reply: FastifyReply): void;
  /** After a key was refused as unknown, revoked or malformed: spends the address's budget. */
  refused(req: FastifyRequest): void;
  /** After the key was verified: spends the location's budget (a 429 when none is left), and says what is left in RateLimit headers. */
  spend(locationId: string, reply: FastifyReply): void;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
const inWords = (ms: number) => (seconds(ms) === 1 ? '1 second' : `${seconds(ms)} seconds`);

export function createApiLimits(opts: { clock: Clock; limit?: ApiRateLimit }): ApiLimits {
  const limit = opts.limit ?? API_RATE_LIMIT_DEFAULT;
  const locations = createRateLimiter({ clock: opts.clock, capacity: limit.burst, windowMs: (limit.burst / limit.perSecond) * 1000, maxKeys: MAX_LOCATIONS });
  const addresses = createRateLimiter({ clock: opts.clock, ...BAD_KEY_LIMIT });

  return {
    admit(req, reply) {
      const state = addresses.peek(req.ip);
      if (state.allowed) return;
      reply.header('retry-after', String(seconds(state.retryAfterMs)));
      throw new AppError(429, 'rate_limited', `Too many requests with an unknown or revoked API key came from this address. Wait ${inWords(state.retryAfterMs)}, then send a key created on Tandem’s panel (API keys tab).`);
    },
    refused(req) {
      // A request with no credentials at all guesses nothing; one with any Authorization header does.
      if (req.headers.authorization !== undefined) addresses.take(req.ip);
    },
    spend(locationId, reply) {
      const taken = locations.take(locationId);
      const level = locations.level(locationId);
      reply.headers({ 'ratelimit-limit': String(limit.burst), 'ratelimit-remaining': String(level.remaining), 'ratelimit-reset': String(Math.ceil(level.fullInMs / 1000)) });
      if (taken.allowed) return;
      reply.header('retry-after', String(seconds(taken.retryAfterMs)));
      throw new AppError(
        429,
        'rate_limited',
        `Too many requests for this location: its API keys may send ${limit.burst} at once, then ${limit.perSecond} a second. Try again in ${inWords(taken.retryAfterMs)} (Retry-After).`,
      );
    },
  };
}
