// HighLevel's per-app, per-resource budgets (CONTRACT §6): a burst window (100 requests per
// 10,000 ms) and a daily budget (200,000), both reported in X-RateLimit-* headers.
import type { RateLimitConfig } from './state.ts';

interface Bucket {
  /** Start of the current fixed burst window (epoch ms). */
  windowStart: number;
  windowCount: number;
  /** Start of the current day (epoch ms, UTC midnight). */
  dayStart: number;
  dayCount: number;
}

export interface RateDecision {
  allowed: boolean;
  headers: Record<string, string>;
}

const DAY_MS = 86_400_000;

export class RateLimiter {
  private buckets = new Map<string, Bucket>();

  /** Counts one request for `key` at `now` and says whether it may proceed. */
  take(key: string, now: number, limits: RateLimitConfig): RateDecision {
    let b = this.buckets.get(key);
    const dayStart = Math.floor(now / DAY_MS) * DAY_MS;
    if (!b) {
      b = { windowStart: now, windowCount: 0, dayStart, dayCount: 0 };
      this.buckets.set(key, b);
    }
    if (now - b.windowStart >= limits.burstWindowMs) {
      b.windowStart = now;
      b.windowCount = 0;
    }
    if (b.dayStart !== dayStart) {
      b.dayStart = dayStart;
      b.dayCount = 0;
    }
    const allowed = b.windowCount < limits.burstMax && b.dayCount < limits.dailyMax;
    if (allowed) {
      b.windowCount++;
      b.dayCount++;
    }
    return {
      allowed,
      headers: {
        'x-ratelimit-limit-daily': String(limits.dailyMax),
        'x-ratelimit-daily-remaining': String(Math.max(0, limits.dailyMax - b.dayCount)),
        'x-ratelimit-daily-reset': String(dayStart + DAY_MS - now),
        'x-ratelimit-interval-milliseconds': String(limits.burstWindowMs),
        'x-ratelimit-max': String(limits.burstMax),
        'x-ratelimit-remaining': String(Math.max(0, limits.burstMax - b.windowCount)),
      },
    };
  }

  reset(): void {
    this.buckets.clear();
  }
}
