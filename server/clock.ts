// Time is injected: schedules, token expiry, rate windows and backoff read a Clock, so tests run
// long scenarios without sleeping.
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
