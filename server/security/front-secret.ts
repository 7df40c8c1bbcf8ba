// Which requests on the app thread's internal port came through the front (server/front.ts).
// The app thread listens on a loopback port that any local process, or a request forged through
// a server-side fetch, can reach as well. Only the front may tell the app a client's address
// (X-Forwarded-For, which the front appends to): believed from anyone else, a caller could name a
// new address per request and never meet the panel sign-in's per-address rate limit. So the front
// marks every request it passes on with a secret made at each start (handed to the app thread in
// its workerData, then to buildApp; never logged), and the app believes the forwarded headers only on requests
// bearing it; any other request counts by its socket's address. In one thread (startTandem alone,
// the tests) there is no front and none of this applies.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The header carrying the secret from the front to the app thread. */
export const FRONT_SECRET_HEADER = 'x-tandem-front';

/** What Fastify reads a client's address, host and protocol from when it trusts the proxy before it. */
const FORWARDED_HEADERS = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'] as const;

/** A new secret, for one start of the front. */
export function newFrontSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The app's side, before Fastify reads anything of the request (its log line, `req.ip`): drops the
 * front's header, so nothing further on sees the secret, and unless it carried the secret, the
 * forwarded headers too. Returns whether the request came through the front.
 */
export function acceptForwardedOnlyFromFront(headers: IncomingHttpHeaders, secret: string): boolean {
  const given = headers[FRONT_SECRET_HEADER];
  delete headers[FRONT_SECRET_HEADER];
  if (typeof given === 'string' && sameSecret(given, secret)) return true;
  for (const name of FORWARDED_HEADERS) delete headers[name];
  return false;
}

/** Compared in constant time; through digests, since timingSafeEqual takes equal lengths only. */
function sameSecret(given: string, secret: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(secret));
}
