// Tandem's HighLevel client for one location of a test emulator (server/highlevel/contacts.ts),
// the way tests that drive the sync code without a whole Tandem build it.
import type { Clock } from '../../server/clock.ts';
import { createLocationApi, type LocationApi, type LocationTokenSource } from '../../server/highlevel/contacts.ts';
import { RateBudget } from '../../server/highlevel/rate-budget.ts';
import { control } from './emulator.ts';

export interface TestLocationApiOptions {
  locationId: string;
  clock: Clock;
  /** A fixed token, or a source of them. */
  tokens: string | LocationTokenSource;
  /** Default: a gate with RateBudget's defaults on `clock`. */
  budget?: RateBudget;
}

export function testLocationApi(emulatorUrl: string, o: TestLocationApiOptions): LocationApi {
  const token = o.tokens;
  return createLocationApi({
    endpoints: { apiUrl: emulatorUrl, clientId: 'test-client', clientSecret: 'secret' },
    tokens: typeof token === 'string' ? { locationToken: async () => token } : token,
    budget: o.budget ?? new RateBudget({ clock: o.clock }),
    clock: o.clock,
    locationId: o.locationId,
  });
}

/** The same behind a gate of `burstMax` requests per `windowMs`, the emulator enforcing the same limit. */
export async function gatedTestLocationApi(emulatorUrl: string, o: Omit<TestLocationApiOptions, 'budget'> & { burstMax: number; windowMs: number }): Promise<LocationApi> {
  await control(emulatorUrl, 'PATCH', '/config', { rateLimit: { burstMax: o.burstMax, burstWindowMs: o.windowMs } });
  return testLocationApi(emulatorUrl, { ...o, budget: new RateBudget({ clock: o.clock, max: o.burstMax, intervalMs: o.windowMs }) });
}
