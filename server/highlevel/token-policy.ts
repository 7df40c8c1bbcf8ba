// When to refresh an OAuth token and how long to back off after a failed refresh: pure functions of
// the stored timestamps, the injected clock's "now" and a random source.

const HOUR_MS = 3_600_000;

/**
 * The moment a token should be refreshed: one hour before expiry, or — for tokens living less than
 * ten hours — when 10% of its lifetime remains. HighLevel's 24-hour tokens are thus refreshed with
 * an hour to spare (ample room for retries with backoff, clock skew and long sync runs while the
 * old token still works), and short-lived tokens keep 90% of their life instead of being refreshed
 * on every call.
 */
export function refreshDueAt(issuedAt: number, expiresAt: number): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  return expiresAt - Math.min(HOUR_MS, lifetime / 10);
}

export function needsRefresh(token: { issuedAt: number; expiresAt: number }, now: number): boolean {
  return now >= refreshDueAt(token.issuedAt, token.expiresAt);
}

/** An access token closer than this to expiry is not handed out: the request using it might outlive it. */
export const EXPIRY_SAFETY_MS = 30_000;

export function stillUsable(token: { expiresAt: number }, now: number): boolean {
  return now < token.expiresAt - EXPIRY_SAFETY_MS;
}

export const BACKOFF_BASE_MS = 5_000;
export const BACKOFF_MAX_MS = 15 * 60_000;

/**
 * Delay before retry number `attempt` (1-based) of a failed refresh: exponential from 5 s, capped
 * at 15 min, with "equal jitter" (half fixed, half random) so processes and owners that failed
 * together do not retry together; never shorter than what HighLevel asked for (`hintMs`, e.g. the
 * daily budget's reset).
 */
export function backoffMs(attempt: number, random: () => number, hintMs?: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.round(ceiling / 2 + random() * (ceiling / 2));
  return Math.max(jittered, hintMs ?? 0);
}
