// The per-location budget gate (CONTRACT §6): every HighLevel call of a location asks `reserve`
// first, and reports its answer through `observe` / `onRateLimited` / `settle`. Decisions are pure
// functions of what it was told and of `now` (injected); it never sleeps, it says when to come back.
import type { Clock } from '../clock.ts';
import { parseRateLimit, parseRetryAfter, type RateLimitInfo } from './http.ts';

export const DEFAULT_MAX = 100;
export const DEFAULT_INTERVAL_MS = 10_000;
export const DEFAULT_DAILY_LIMIT = 200_000;
/**
 * Slots kept free in every burst window. The counting below is already safe for any network delay
 * (see `held`), so the margin is for what this gate cannot see: a call made outside it (another
 * process during a hand-over, a request the server counted that we think never left), and clock
 * edges where the server's window and ours disagree by a millisecond. It costs 2% of throughput.
 */
export const DEFAULT_SAFETY_MARGIN = 2;
/** A request not settled after this long is counted as finished then (a leak must not starve the location). */
export const DEFAULT_MAX_IN_FLIGHT_MS = 60_000;
/**
 * While the first request is out (see `probing`), how soon a refused caller is told to ask again:
 * its answer usually arrives within a round trip. With an interval (10 s at HighLevel's rate) every
 * other request of a location waited that long after a restart, whenever the answer came.
 */
export const PROBE_RETRY_MS = 250;
/** When the daily reset time is unknown, look again after this long. */
const UNKNOWN_RESET_PROBE_MS = 60 * 60_000;

export interface RateBudgetOptions {
  clock?: Clock;
  max?: number;
  intervalMs?: number;
  dailyLimit?: number;
  safetyMargin?: number;
  /** Daily requests kept for priority work; default min(100, 1% of the daily limit). */
  dailyReserve?: number;
  maxInFlightMs?: number;
}

export type Reservation =
  | { ok: true }
  | { ok: false; retryAt: number; reason: 'rate_limited' | 'daily' | 'burst' };

/** What a 429 tells: the response headers, or a HighLevelError (its parsed rate limit and Retry-After). */
export type RateLimitedSignal = Headers | RateLimitInfo | { rateLimit?: RateLimitInfo; retryAfterMs?: number } | undefined;

export interface RateBudgetSnapshot {
  max: number;
  intervalMs: number;
  /** Requests this gate would still allow in the current window. */
  remaining: number;
  /** X-RateLimit-Remaining as last reported by HighLevel. */
  serverRemaining: number | undefined;
  inFlight: number;
  dailyLimit: number;
  /** Our estimate: HighLevel's last figure minus what we sent since; undefined before any answer. */
  dailyRemaining: number | undefined;
  dailyResetAt: number | undefined;
  /** Set while a 429 or the exhausted daily budget holds everything back. */
  blockedUntil: number | undefined;
}

/** X-RateLimit-Remaining of one answer; it speaks for a server window that ends by `until`. */
interface ServerCap {
  until: number;
  remaining: number;
}

function toInfo(signal: Headers | RateLimitInfo | undefined): RateLimitInfo {
  if (!signal) return {};
  if (signal instanceof Headers) return parseRateLimit(signal) ?? {};
  return signal;
}

export class RateBudget {
  private readonly clock: Clock | undefined;
  private readonly margin: number;
  private readonly fixedReserve: number | undefined;
  private readonly maxInFlightMs: number;
  private max: number;
  private intervalMs: number;
  private dailyLimit: number;
  /** Send times of requests not yet answered, oldest first. */
  private inFlight: number[] = [];
  /** When each answered request stops counting (answer time + interval), ascending. */
  private released: number[] = [];
  private caps: ServerCap[] = [];
  private serverRemaining: number | undefined;
  /** Lowest X-RateLimit-Daily-Remaining seen since the last reset. */
  private dailyLow: number | undefined;
  private dailyResetAt: number | undefined;
  private blockedUntil = 0;
  /**
   * True until HighLevel has answered once: what the current window already holds is unknown (the
   * process before a restart may have spent it; this gate cannot see it), so one request goes
   * alone and its answer's X-RateLimit-Remaining says. Without it a push starting four rows at
   * once into a window with three requests left took a 429 (test/integration/outbound-pacing.test.ts).
   */
  private probing = true;

  constructor(opts: RateBudgetOptions = {}) {
    this.clock = opts.clock;
    this.max = opts.max ?? DEFAULT_MAX;
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.dailyLimit = opts.dailyLimit ?? DEFAULT_DAILY_LIMIT;
    this.margin = opts.safetyMargin ?? DEFAULT_SAFETY_MARGIN;
    this.fixedReserve = opts.dailyReserve;
    this.maxInFlightMs = opts.maxInFlightMs ?? DEFAULT_MAX_IN_FLIGHT_MS;
  }

  private at(now: number | undefined): number {
    if (now !== undefined) return now;
    if (!this.clock) throw new Error('RateBudget needs `now` or a clock');
    return this.clock.now();
  }

  /**
   * Daily requests only priority work (a user waiting on the panel) may spend: min(100, 1% of the
   * limit). 100 of HighLevel's 200,000 covers a day's tail of user actions; 1% keeps a small
   * (test or shortened) budget mostly for ordinary work.
   */
  get dailyReserve(): number {
    return this.fixedReserve ?? Math.min(100, Math.ceil(this.dailyLimit / 100));
  }

  private prune(now: number): void {
    while (this.inFlight.length && this.inFlight[0]! + this.maxInFlightMs <= now) {
      this.release(this.inFlight.shift()! + this.maxInFlightMs);
      this.assumeCounted();
    }
    while (this.released.length && this.released[0]! <= now) this.released.shift();
    this.caps = this.caps.filter((c) => c.until > now);
    if (this.dailyResetAt !== undefined && now >= this.dailyResetAt) {
      this.dailyLow = undefined;
      this.dailyResetAt = undefined;
    }
  }

  /** A request that ended without an answer may have been counted: lower HighLevel's figures by one. */
  private assumeCounted(): void {
    for (const cap of this.caps) cap.remaining--;
    if (this.dailyLow !== undefined) this.dailyLow = Math.max(0, this.dailyLow - 1);
  }

  /**
   * HighLevel's figures only fall between resets, so the lowest one seen is the freshest, and every
   * request answered before it arrived before it (else its own, lower figure would be the lowest).
   * What may still land on top of it is what is in flight now: the estimate subtracts all of it.
   */
  private dailyEstimate(): number | undefined {
    return this.dailyLow === undefined ? undefined : this.dailyLow - this.inFlight.length;
  }

  private release(answeredAt: number): void {
    const t = answeredAt + this.intervalMs;
    let i = this.released.length;
    while (i > 0 && this.released[i - 1]! > t) i--;
    this.released.splice(i, 0, t);
  }

  /**
   * Requests that still count: a request counts from the moment it is sent until `intervalMs`
   * after its answer arrived. The server counts it at its arrival, which lies between the two, and
   * a window that contains the arrival ends at most `intervalMs` after it: so whenever we send,
   * every request the server still counts in its current window is among those we hold, whatever
   * the network delays were. Counting from send time alone is not enough: a slow request of one
   * burst and a fast one of the next can land in the same server window. The price is one round
   * trip per window: throughput ≈ interval / (interval + round trip) of the floor.
   */
  private held(): number {
    return this.inFlight.length + this.released.length;
  }

  private burstLimit(): number {
    return Math.max(1, this.max - this.margin);
  }

  /**
   * May a request go now? On yes the request is counted as sent; the caller must report its end
   * (observe, onRateLimited or settle). On no, `retryAt` is the earliest time worth asking again,
   * unless a request in flight is answered first (an answer can free room): ask again then too.
   * Priority work (a user waiting) may spend the daily reserve; everything else defers to the reset.
   * Background work (a one-time operation) passes `keepShare`: it leaves that share of every burst
   * window to the continuous loop, so a long run never starves it.
   */
  reserve(now?: number, opts: { priority?: boolean; keepShare?: number } = {}): Reservation {
    const t = this.at(now);
    this.prune(t);
    const daily = this.dailyEstimate();
    // Blocked by a 429: the daily limit when HighLevel said none is left today (a block until the
    // day's reset), otherwise a request to slow down. Callers tell the admin which.
    if (this.blockedUntil > t) return { ok: false, retryAt: this.blockedUntil, reason: daily !== undefined && daily <= 0 ? 'daily' : 'rate_limited' };

    if (daily !== undefined) {
      const floor = opts.priority ? 0 : this.dailyReserve;
      if (daily <= floor) {
        return { ok: false, retryAt: this.dailyResetAt ?? t + UNKNOWN_RESET_PROBE_MS, reason: 'daily' };
      }
    }

    const retryAt = this.roomAt(t, 1, this.kept(opts.keepShare));
    if (retryAt > t) return { ok: false, retryAt, reason: 'burst' };

    this.inFlight.push(t);
    return { ok: true };
  }

  /**
   * When `count` requests could go one after the other without waiting (undefined: now), as
   * `reserve` would judge each of them; nothing is counted. Work that needs several requests to
   * get anywhere (a read, then the write it decides) asks first: started on the last free slot, its
   * read would be spent and its write refused, and the next attempt would read again, for ever,
   * on a budget that never frees more than one slot at a time. Capped at the window's size.
   */
  whenRoom(count: number, now?: number, opts: { keepShare?: number } = {}): number | undefined {
    const t = this.at(now);
    this.prune(t);
    if (this.blockedUntil > t) return this.blockedUntil;
    const keep = this.kept(opts.keepShare);
    const retryAt = this.roomAt(t, Math.max(1, Math.min(count, this.burstLimit() - keep)), keep);
    return retryAt > t ? retryAt : undefined;
  }

  /** Slots of each window that background work with `keepShare` leaves to the loop. */
  private kept(keepShare = 0): number {
    return Math.min(Math.ceil(keepShare * this.burstLimit()), this.burstLimit() - 1);
  }

  /** The earliest time `n` more requests fit (0 or less: now), leaving `keep` slots free. */
  private roomAt(t: number, n: number, keep: number): number {
    let retryAt = 0;
    const need = this.held() - (this.burstLimit() - keep) + n;
    if (need > 0) {
      // Answered requests free their slot at known times; one still in flight frees it no sooner
      // than an interval from now.
      retryAt = need <= this.released.length ? this.released[need - 1]! : t + this.intervalMs;
    }
    // The same reasoning as for the daily figure, per server window: a window's figures only fall,
    // and a figure stops speaking for the current window an interval after it was read. Requests
    // in flight may be answered before then and unblock earlier: ask again after each answer.
    for (const cap of this.caps) if (cap.remaining - this.inFlight.length < keep + n) retryAt = Math.max(retryAt, cap.until);
    // The first request's answer frees the others: ask again shortly, and again while it is out.
    if (this.probing && this.inFlight.length > 0) retryAt = Math.max(retryAt, t + Math.min(PROBE_RETRY_MS, this.intervalMs));
    return retryAt;
  }

  /** Ends the oldest request in flight (they are interchangeable for counting). */
  private finishOne(now: number): void {
    if (this.inFlight.length) {
      this.inFlight.shift();
      this.release(now);
    }
  }

  private learn(info: RateLimitInfo, now: number): void {
    if (info.max !== undefined && info.max > 0) this.max = info.max;
    if (info.intervalMs !== undefined && info.intervalMs > 0) this.intervalMs = info.intervalMs;
    if (info.dailyLimit !== undefined && info.dailyLimit > 0) this.dailyLimit = info.dailyLimit;
    if (info.remaining !== undefined) {
      this.serverRemaining = info.remaining;
      // The window the server counted this answer in ends within an interval; until then at most
      // `remaining` more may arrive, and requests still in flight may be among them.
      this.caps.push({ until: now + this.intervalMs, remaining: info.remaining });
    }
    if (info.dailyRemaining !== undefined) this.dailyLow = Math.min(this.dailyLow ?? Infinity, info.dailyRemaining);
    if (info.dailyResetMs !== undefined) {
      // Milliseconds until the reset, counted from when the server answered: read at our receipt it
      // lands up to one return trip late, which errs on the safe side. An epoch value is tolerated.
      const at = info.dailyResetMs > 1e12 ? info.dailyResetMs : now + info.dailyResetMs;
      this.dailyResetAt = Math.max(this.dailyResetAt ?? 0, at);
    }
  }

  /** A response arrived (any status but 429): ends one request and learns from its X-RateLimit-* headers. */
  observe(signal: Headers | RateLimitInfo | undefined, now?: number): void {
    const t = this.at(now);
    this.probing = false;
    this.finishOne(t);
    this.learn(toInfo(signal), t);
    this.prune(t);
  }

  /**
   * A 429: ends the request and blocks the location until it can safely retry: Retry-After when
   * HighLevel sent one; the daily reset when the daily budget is spent; else one interval, by
   * which time the server window that refused us has ended. Returns that time.
   */
  onRateLimited(signal: RateLimitedSignal, now?: number): number {
    const t = this.at(now);
    this.probing = false;
    this.finishOne(t);
    let info: RateLimitInfo;
    let retryAfterMs: number | undefined;
    if (signal instanceof Headers) {
      info = toInfo(signal);
      retryAfterMs = parseRetryAfter(signal.get('retry-after'), t);
    } else if (signal && ('rateLimit' in signal || 'retryAfterMs' in signal)) {
      const s = signal as { rateLimit?: RateLimitInfo; retryAfterMs?: number };
      info = s.rateLimit ?? {};
      retryAfterMs = s.retryAfterMs;
    } else info = toInfo(signal as RateLimitInfo | undefined);
    this.learn(info, t);
    let until = t + this.intervalMs;
    if (info.dailyRemaining === 0) until = Math.max(until, this.dailyResetAt ?? t + UNKNOWN_RESET_PROBE_MS);
    if (retryAfterMs !== undefined) until = Math.max(until, t + retryAfterMs);
    this.blockedUntil = Math.max(this.blockedUntil, until);
    this.prune(t);
    return this.blockedUntil;
  }

  /** A request ended without an answer (network error, timeout): it may have reached HighLevel. */
  settle(now?: number): void {
    const t = this.at(now);
    if (this.inFlight.length) this.assumeCounted();
    this.finishOne(t);
    this.prune(t);
  }

  snapshot(now?: number): RateBudgetSnapshot {
    const t = this.at(now);
    this.prune(t);
    const capLeft = Math.min(Infinity, ...this.caps.map((c) => c.remaining)) - this.inFlight.length;
    return {
      max: this.max,
      intervalMs: this.intervalMs,
      remaining: Math.max(0, Math.min(this.burstLimit() - this.held(), capLeft)),
      serverRemaining: this.serverRemaining,
      inFlight: this.inFlight.length,
      dailyLimit: this.dailyLimit,
      dailyRemaining: this.dailyEstimate(),
      dailyResetAt: this.dailyResetAt,
      blockedUntil: this.blockedUntil > t ? this.blockedUntil : undefined,
    };
  }
}
