// The per-location budget gate against a simulated HighLevel: the emulator's own fixed-window
// limiter (pure, fed the simulated time), with random network delays on the way there and back.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../emulator/rate-limit.ts';
import type { RateLimitConfig } from '../../emulator/state.ts';
import { PROBE_RETRY_MS, RateBudget, type Reservation } from '../../server/highlevel/rate-budget.ts';

/** Deterministic PRNG so a failing seed replays exactly. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimOptions {
  budget: RateBudget;
  limits: RateLimitConfig;
  requests: number;
  concurrency: number;
  /** One-way network delay in ms, drawn per trip. */
  delay: () => number;
  start?: number;
  priority?: (i: number) => boolean;
  /** False: answers are reported without their X-RateLimit-* headers. */
  headers?: boolean;
}

interface SimResult {
  done: number;
  rejected: number;
  arrivals: number[];
  firstSend: number;
  lastDone: number;
  refusals: (Reservation & { ok: false; at: number })[];
}

/** Workers that each ask the gate, send, wait for the answer and report it, until all requests succeeded. */
function simulate(o: SimOptions): SimResult {
  const server = new RateLimiter();
  const queue: { at: number; seq: number; run: () => void }[] = [];
  let seq = 0;
  let now = o.start ?? 0;
  const schedule = (at: number, run: () => void) => {
    const ev = { at, seq: seq++, run };
    let i = queue.length;
    while (i > 0 && (queue[i - 1]!.at > at || (queue[i - 1]!.at === at && queue[i - 1]!.seq > ev.seq))) i--;
    queue.splice(i, 0, ev);
  };
  const r: SimResult = { done: 0, rejected: 0, arrivals: [], firstSend: Infinity, lastDone: 0, refusals: [] };
  let toSend = o.requests;
  let next = 0;

  const worker = () => {
    if (toSend === 0) return;
    const priority = o.priority?.(next) ?? false;
    const res = o.budget.reserve(now, { priority });
    if (!res.ok) {
      expect(res.retryAt).toBeGreaterThan(now);
      r.refusals.push({ ...res, at: now });
      schedule(res.retryAt, worker);
      return;
    }
    toSend--;
    next++;
    r.firstSend = Math.min(r.firstSend, now);
    schedule(now + o.delay(), () => {
      const decision = server.take('location', now, o.limits);
      if (decision.allowed) r.arrivals.push(now);
      schedule(now + o.delay(), () => {
        const headers = o.headers === false ? new Headers() : new Headers(decision.headers);
        if (decision.allowed) {
          o.budget.observe(headers, now);
          r.done++;
          r.lastDone = now;
        } else {
          o.budget.onRateLimited(headers, now);
          r.rejected++;
          toSend++;
        }
        worker();
      });
    });
  };

  for (let i = 0; i < o.concurrency; i++) schedule(now, worker);
  while (queue.length) {
    const ev = queue.shift()!;
    now = ev.at;
    ev.run();
  }
  return r;
}

/** Most arrivals in any window of `ms` (sliding): stricter than the server's fixed windows. */
function busiestWindow(arrivals: number[], ms: number): number {
  const a = [...arrivals].sort((x, y) => x - y);
  let best = 0;
  for (let i = 0, j = 0; i < a.length; i++) {
    while (a[i]! - a[j]! >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

const HIGHLEVEL: RateLimitConfig = { burstMax: 100, burstWindowMs: 10_000, dailyMax: 200_000 };

describe('RateBudget against a fixed-window server', () => {
  it('never exceeds the burst limit and reaches at least 0.9 of the floor throughput, whatever the delays', () => {
    fc.assert(
      fc.property(fc.integer(), fc.constantFrom(5, 50, 200, 500, 2000), fc.constantFrom(4, 16, 64), (seed, maxDelay, concurrency) => {
        const rand = mulberry32(seed);
        const budget = new RateBudget();
        const r = simulate({ budget, limits: HIGHLEVEL, requests: 1000, concurrency, delay: () => rand() * maxDelay });
        expect(r.rejected).toBe(0);
        expect(r.done).toBe(1000);
        expect(busiestWindow(r.arrivals, HIGHLEVEL.burstWindowMs)).toBeLessThanOrEqual(HIGHLEVEL.burstMax);
        // Throughput is judged where the workers could outrun the limit on their own (a small pool
        // over slow round trips cannot), and for round trips up to 400 ms: the gate holds a slot for
        // an interval plus the round trip, so it reaches about interval / (interval + RTT) of the
        // floor (0.96 at 400 ms, 0.89 at 1 s), less the 2% safety margin.
        const floorPerMs = HIGHLEVEL.burstMax / HIGHLEVEL.burstWindowMs;
        if (maxDelay <= 200 && concurrency / (2 * maxDelay) > 2 * floorPerMs) {
          const achieved = r.done / (r.lastDone - r.firstSend);
          expect(achieved / floorPerMs).toBeGreaterThanOrEqual(0.9);
        }
      }),
      { numRuns: 24 },
    );
  });

  it('the simulation does catch a gate that counts send times only', () => {
    // maxInFlightMs 0 turns the gate into a plain sliding window over send times; without the
    // headers HighLevel's own figures cannot rescue it.
    let rejected = 0;
    for (let seed = 1; seed <= 5 && rejected === 0; seed++) {
      const rand = mulberry32(seed);
      const naive = new RateBudget({ maxInFlightMs: 0 });
      rejected += simulate({ budget: naive, limits: HIGHLEVEL, requests: 1000, concurrency: 200, delay: () => rand() * 2000, headers: false }).rejected;
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('learns a shorter window and a smaller burst from the headers', () => {
    const limits: RateLimitConfig = { burstMax: 20, burstWindowMs: 1_000, dailyMax: 200_000 };
    const rand = mulberry32(7);
    const budget = new RateBudget();
    const r = simulate({ budget, limits, requests: 500, concurrency: 16, delay: () => 1 + rand() * 20 });
    expect(r.rejected).toBe(0);
    expect(budget.snapshot(r.lastDone)).toMatchObject({ max: 20, intervalMs: 1_000 });
    const achieved = r.done / (r.lastDone - r.firstSend);
    expect(achieved / (limits.burstMax / limits.burstWindowMs)).toBeGreaterThanOrEqual(0.85);
  });
});

describe('daily budget', () => {
  const start = Date.UTC(2026, 0, 1, 23, 0, 0);
  const midnight = Date.UTC(2026, 0, 2);

  it('defers ordinary work at the reserve until the daily reset, then carries on', () => {
    const limits: RateLimitConfig = { burstMax: 100, burstWindowMs: 10_000, dailyMax: 300 };
    const rand = mulberry32(3);
    const budget = new RateBudget();
    const r = simulate({ budget, limits, requests: 400, concurrency: 8, start, delay: () => 1 + rand() * 30 });
    expect(r.rejected).toBe(0);
    expect(r.done).toBe(400);
    const before = r.arrivals.filter((t) => t < midnight).length;
    // 1% of 300 is kept for priority work.
    expect(budget.dailyReserve).toBe(3);
    expect(before).toBe(300 - 3);
    const daily = r.refusals.filter((x) => x.reason === 'daily');
    expect(daily.length).toBeGreaterThan(0);
    // The reset is told relative to the server's clock at arrival and read at our answer time, so
    // the retry lands at the reset or up to one return trip after it, never before.
    for (const x of daily) {
      expect(x.retryAt).toBeGreaterThanOrEqual(midnight);
      expect(x.retryAt).toBeLessThanOrEqual(midnight + 31);
    }
    expect(r.arrivals.filter((t) => t >= midnight).length).toBe(400 - before);
  });

  it('lets priority work spend the reserve, and nothing past zero', () => {
    const budget = new RateBudget({ max: 1_000 });
    const t = start;
    expect(budget.reserve(t).ok).toBe(true);
    budget.observe(new Headers({ 'x-ratelimit-limit-daily': '200000', 'x-ratelimit-daily-remaining': '101', 'x-ratelimit-daily-reset': String(midnight - t) }), t);
    expect(budget.dailyReserve).toBe(100);
    expect(budget.reserve(t + 1)).toEqual({ ok: true });
    // 100 left: ordinary work now waits for the reset, priority work does not.
    expect(budget.reserve(t + 2)).toEqual({ ok: false, retryAt: midnight, reason: 'daily' });
    for (let i = 0; i < 100; i++) expect(budget.reserve(t + 3, { priority: true }).ok).toBe(true);
    expect(budget.reserve(t + 4, { priority: true })).toEqual({ ok: false, retryAt: midnight, reason: 'daily' });
    expect(budget.snapshot(t + 4)).toMatchObject({ dailyRemaining: 0, dailyResetAt: midnight });
    expect(budget.reserve(midnight).ok).toBe(true);
    expect(budget.snapshot(midnight).dailyRemaining).toBeUndefined();
  });
});

describe('429', () => {
  const t = 1_000_000;

  it('blocks every request until the interval has passed', () => {
    const budget = new RateBudget();
    expect(budget.reserve(t).ok).toBe(true);
    const retryAt = budget.onRateLimited(new Headers({ 'x-ratelimit-max': '100', 'x-ratelimit-remaining': '0', 'x-ratelimit-interval-milliseconds': '10000' }), t + 40);
    expect(retryAt).toBe(t + 40 + 10_000);
    expect(budget.reserve(retryAt - 1, { priority: true })).toEqual({ ok: false, retryAt, reason: 'rate_limited' });
    expect(budget.snapshot(retryAt - 1).blockedUntil).toBe(retryAt);
    expect(budget.reserve(retryAt)).toEqual({ ok: true });
    expect(budget.snapshot(retryAt).blockedUntil).toBeUndefined();
  });

  it('honours a longer Retry-After and a spent daily budget', () => {
    const a = new RateBudget();
    a.reserve(t);
    expect(a.onRateLimited(new Headers({ 'retry-after': '30' }), t)).toBe(t + 30_000);

    const b = new RateBudget();
    b.reserve(t);
    const reset = 5 * 3_600_000;
    const retryAt = b.onRateLimited({ rateLimit: { dailyRemaining: 0, dailyResetMs: reset, intervalMs: 10_000 } }, t);
    expect(retryAt).toBe(t + reset);
    // Refused as the daily limit, not as a request to slow down: callers tell the admin which.
    expect(b.reserve(t + reset - 1)).toEqual({ ok: false, retryAt: t + reset, reason: 'daily' });
    expect(b.reserve(t + reset).ok).toBe(true);
    // A 429 of the burst window stays 'rate_limited'.
    expect(a.reserve(t + 1)).toMatchObject({ ok: false, reason: 'rate_limited' });
  });
});

describe('bookkeeping', () => {
  it('counts a request until an interval after its answer, and frees a slot lost to a missing answer', () => {
    const budget = new RateBudget({ max: 3, safetyMargin: 0, intervalMs: 1_000, maxInFlightMs: 5_000 });
    // An answer long ago: the gate has heard from HighLevel (see the next test) and counts nothing now.
    budget.reserve(-2_000);
    budget.observe(undefined, -2_000);
    expect(budget.reserve(0).ok).toBe(true);
    expect(budget.reserve(0).ok).toBe(true);
    expect(budget.reserve(0).ok).toBe(true);
    expect(budget.reserve(10)).toEqual({ ok: false, retryAt: 1_010, reason: 'burst' });
    budget.observe(undefined, 200);
    budget.settle(300);
    expect(budget.snapshot(400)).toMatchObject({ remaining: 0, inFlight: 1 });
    // The first answered request frees its slot an interval after its answer.
    expect(budget.reserve(1_100)).toEqual({ ok: false, retryAt: 1_200, reason: 'burst' });
    expect(budget.reserve(1_200).ok).toBe(true);
    // The request never answered stops counting after maxInFlightMs.
    expect(budget.reserve(1_250)).toEqual({ ok: false, retryAt: 1_300, reason: 'burst' });
    expect(budget.reserve(1_300).ok).toBe(true);
    expect(budget.snapshot(1_300).inFlight).toBe(3);
    expect(budget.reserve(5_999).ok).toBe(false);
    expect(budget.reserve(6_000).ok).toBe(true);
  });

  it('sends one request alone until HighLevel has answered once: the window may hold what an earlier process spent', () => {
    const budget = new RateBudget({ max: 10, safetyMargin: 0, intervalMs: 1_000 });
    expect(budget.reserve(0).ok).toBe(true);
    // Refused while the first is out, and told to ask again soon (its answer usually takes a round
    // trip), not an interval later; asking again while it is still out gets the same answer.
    expect(budget.reserve(1)).toEqual({ ok: false, retryAt: 1 + PROBE_RETRY_MS, reason: 'burst' });
    expect(budget.whenRoom(1, 1)).toBe(1 + PROBE_RETRY_MS);
    expect(budget.reserve(1 + PROBE_RETRY_MS)).toEqual({ ok: false, retryAt: 1 + 2 * PROBE_RETRY_MS, reason: 'burst' });
    // No answer (a timeout) tells nothing: the next request goes alone again.
    budget.settle(50);
    expect(budget.reserve(60).ok).toBe(true);
    expect(budget.reserve(61).ok).toBe(false);
    // The answer says 2 are left in HighLevel's window: two more, not the nine this gate would allow.
    budget.observe(new Headers({ 'x-ratelimit-remaining': '2', 'x-ratelimit-max': '10', 'x-ratelimit-interval-milliseconds': '1000' }), 100);
    expect(budget.reserve(110).ok).toBe(true);
    expect(budget.reserve(111).ok).toBe(true);
    expect(budget.reserve(112)).toEqual({ ok: false, retryAt: 1_100, reason: 'burst' });
  });

  it('trusts what HighLevel says is left over its own count', () => {
    const budget = new RateBudget();
    expect(budget.reserve(0).ok).toBe(true);
    // Another client spent the window: HighLevel says 1 left after our request.
    budget.observe(new Headers({ 'x-ratelimit-remaining': '1', 'x-ratelimit-max': '100', 'x-ratelimit-interval-milliseconds': '10000' }), 50);
    expect(budget.reserve(60).ok).toBe(true);
    expect(budget.reserve(70)).toEqual({ ok: false, retryAt: 10_050, reason: 'burst' });
    expect(budget.snapshot(70)).toMatchObject({ serverRemaining: 1, remaining: 0 });
  });

  it('says when several requests could go one after the other, counting none of them', () => {
    const budget = new RateBudget({ max: 5, safetyMargin: 2, intervalMs: 1_000 });
    expect(budget.whenRoom(3, 0)).toBeUndefined();
    // Three requests answered 1 ms apart: their slots come back one at a time.
    for (const at of [0, 1, 2]) {
      expect(budget.reserve(at).ok).toBe(true);
      budget.observe(undefined, at);
    }
    expect(budget.whenRoom(1, 10)).toBe(1_000);
    expect(budget.whenRoom(3, 10)).toBe(1_002);
    expect(budget.whenRoom(3, 1_000)).toBe(1_002);
    expect(budget.whenRoom(3, 1_002)).toBeUndefined();
    expect(budget.snapshot(1_002)).toMatchObject({ remaining: 3, inFlight: 0 });
    // More than a window holds is asked as the whole window; a request in flight frees no sooner than an interval.
    expect(budget.whenRoom(10, 1_002)).toBeUndefined();
    expect(budget.reserve(1_002).ok).toBe(true);
    expect(budget.whenRoom(3, 1_003)).toBe(2_003);
    // What HighLevel says is left counts too, as for reserve.
    const told = new RateBudget();
    expect(told.reserve(0).ok).toBe(true);
    told.observe(new Headers({ 'x-ratelimit-remaining': '2', 'x-ratelimit-max': '100', 'x-ratelimit-interval-milliseconds': '10000' }), 50);
    expect(told.whenRoom(2, 60)).toBeUndefined();
    expect(told.whenRoom(3, 60)).toBe(10_050);
  });

  it('reads the clock when no time is passed', () => {
    let now = 5;
    const budget = new RateBudget({ clock: { now: () => now }, max: 1, safetyMargin: 0, intervalMs: 100 });
    expect(budget.reserve()).toEqual({ ok: true });
    budget.observe(undefined);
    now = 50;
    expect(budget.reserve()).toEqual({ ok: false, retryAt: 105, reason: 'burst' });
  });
});
