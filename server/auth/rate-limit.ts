// A token bucket per key (the client IP) on the injected clock, for the panel's sign-in exchange:
// enough for real panels (one exchange per load and one per 15 minutes), too little to grind
// payloads or secrets against it. Written as GCRA (one "theoretical arrival time" per key), which
// is the same bucket in exact integer milliseconds.
import type { Clock } from '../clock.ts';

export interface RateLimiter {
  /** Takes one token; `retryAfterMs` is how long until the next one when none is left. */
  take(key: string): { allowed: true } | { allowed: false; retryAfterMs: number };
}

export function createRateLimiter(opts: {
  clock: Clock;
  /** Burst size, and tokens regained per `windowMs`. */
  capacity: number;
  windowMs: number;
  /** Keys remembered at most; full buckets are forgotten first (they carry no state). */
  maxKeys?: number;
}): RateLimiter {
  const { clock, capacity, windowMs } = opts;
  const maxKeys = opts.maxKeys ?? 10_000;
  /** Milliseconds one token takes to come back. */
  const interval = windowMs / capacity;
  /** How far ahead of now the arrival time may run: a full bucket's worth, minus one token. */
  const tolerance = windowMs - interval;
  /** Per key: when its bucket will be full again (at or before now means full). */
  const fullAt = new Map<string, number>();

  const prune = (now: number) => {
    for (const [key, at] of fullAt) if (at <= now) fullAt.delete(key);
    // Still too many means a flood of distinct keys: forget the oldest rather than grow forever.
    for (const key of fullAt.keys()) {
      if (fullAt.size < maxKeys) break;
      fullAt.delete(key);
    }
  };

  return {
    take(key) {
      const now = clock.now();
      if (!fullAt.has(key) && fullAt.size >= maxKeys) prune(now);
      const at = Math.max(fullAt.get(key) ?? now, now);
      if (at - now > tolerance) return { allowed: false, retryAfterMs: Math.ceil(at - now - tolerance) };
      fullAt.set(key, at + interval);
      return { allowed: true };
    },
  };
}
