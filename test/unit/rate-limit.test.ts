// The sign-in exchange's token bucket (server/auth/rate-limit.ts) on a manual clock.
import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../server/auth/rate-limit.ts';
import { ManualClock } from '../helpers/emulator.ts';

describe('rate limiter', () => {
  it('allows a burst, then one token per refill interval, per key', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ clock, capacity: 3, windowMs: 3000 });
    for (let i = 0; i < 3; i++) expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterMs: 1000 });
    // Another key has its own bucket.
    expect(limiter.take('b').allowed).toBe(true);
    clock.advance(999);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterMs: 1 });
    clock.advance(1);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    // Refills never exceed the burst size.
    clock.advance(60_000);
    for (let i = 0; i < 3; i++) expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('forgets refilled keys first when it must forget, keeping the state of busy ones', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ clock, capacity: 2, windowMs: 60_000, maxKeys: 10 });
    limiter.take('busy');
    limiter.take('busy');
    for (let i = 0; i < 8; i++) limiter.take(`idle-${i}`);
    clock.advance(30_000); // the idle buckets are full again; 'busy' regained one token
    expect(limiter.take('busy').allowed).toBe(true);
    limiter.take('new-1');
    limiter.take('new-2'); // the tenth key: the full buckets are dropped
    expect(limiter.take('busy').allowed).toBe(false);
    expect(limiter.take('idle-0').allowed).toBe(true);
  });
});

describe('rate limiter, looked at without taking', () => {
  it('peek says whether a token is there and takes none', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ clock, capacity: 2, windowMs: 2000 });
    expect(limiter.peek('a')).toEqual({ allowed: true });
    expect(limiter.peek('a')).toEqual({ allowed: true });
    limiter.take('a');
    limiter.take('a');
    expect(limiter.peek('a')).toEqual({ allowed: false, retryAfterMs: 1000 });
    clock.advance(400);
    expect(limiter.peek('a')).toEqual({ allowed: false, retryAfterMs: 600 });
    clock.advance(600);
    expect(limiter.peek('a')).toEqual({ allowed: true });
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.peek('a').allowed).toBe(false);
  });

  it('level gives the tokens left and the time until the bucket is full, for RateLimit headers', () => {
    const clock = new ManualClock();
    // 300 at once, then 20 a second: a fractional-free interval of 50 ms.
    const limiter = createRateLimiter({ clock, capacity: 300, windowMs: 15_000 });
    expect(limiter.level('loc')).toEqual({ remaining: 300, fullInMs: 0 });
    limiter.take('loc');
    expect(limiter.level('loc')).toEqual({ remaining: 299, fullInMs: 50 });
    for (let i = 0; i < 299; i++) limiter.take('loc');
    expect(limiter.level('loc')).toEqual({ remaining: 0, fullInMs: 15_000 });
    expect(limiter.take('loc')).toEqual({ allowed: false, retryAfterMs: 50 });
    clock.advance(1000);
    expect(limiter.level('loc')).toEqual({ remaining: 20, fullInMs: 14_000 });
    // A fractional interval (7 per 1000 ms) still counts whole tokens.
    const odd = createRateLimiter({ clock, capacity: 7, windowMs: 1000 });
    for (let i = 0; i < 3; i++) odd.take('k');
    expect(odd.level('k').remaining).toBe(4);
    clock.advance(1000);
    expect(odd.level('k')).toEqual({ remaining: 7, fullInMs: 0 });
  });
});
