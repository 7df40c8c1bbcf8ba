// A token bucket per key on the injected clock: per client IP for the panel's sign-in exchange
// (enough for real panels, one exchange per load and one per 15 minutes, too little to grind
// payloads or secrets against it), and for the REST API (server/auth/api-rate-limit.ts). Written
// as GCRA (one "theoretical arrival time" per key), which is the same bucket in exact integer
// milliseconds.
import type { Clock } from '../clock.ts';

export type Taken = { allowed: true } | { allowed: false; retryAfterMs: number };

export interface RateLimiter {
  /** Takes one token; `retryAfterMs` is how long until the next one when none is left. */
  take(key: string): Taken;
  /** Whether `take` would succeed now, without taking anything. */
  peek(key: string): Taken;
  /** The tokens left now, and how long until the bucket is full again (0: it is full). */
  level(key: string): { remaining: number; fullInMs: number };
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

  /** The key's arrival time, and whether one more token may be taken at it. */
  const state = (key: string, now: number): { at: number; taken: Taken } => {
    const at = Math.max(fullAt.get(key) ?? now, now);
    return { at, taken: at - now > tolerance ? { allowed: false, retryAfterMs: Math.ceil(at - now - tolerance) } : { allowed: true } };
  };

  return {
    take(key) {
      const now = clock.now();
      if (!fullAt.has(key) && fullAt.size >= maxKeys) prune(now);
      const { at, taken } = state(key, now);
      if (taken.allowed) fullAt.set(key, at + interval);
      return taken;
    },
    peek(key) {
      return state(key, clock.now()).taken;
    },
    level(key) {
      const now = clock.now();
      const { at, taken } = state(key, now);
      // Epoch milliseconds plus a fractional interval are rounded at every take: a count a hair
      // under a whole number is that number. Zero exactly when take would refuse.
      const tokens = (windowMs - (at - now)) / interval;
      const whole = Math.abs(tokens - Math.round(tokens)) < 1e-3 ? Math.round(tokens) : Math.floor(tokens);
      return { remaining: taken.allowed ? Math.max(1, whole) : 0, fullInMs: Math.ceil(at - now) };
    },
  };
}
