// A one-time operation's view of the location's HighLevel API: the SAME budget gate as the
// continuous loop, leaving it a share of every burst window; budget deferrals (burst, 429, daily,
// token backoff) are waited out here, because a background job has no request to answer; the wait
// ends early on cancel or shutdown. Every answered request is counted for the progress figures.
import type { Clock } from '../../clock.ts';
import { DeferredError, type LocationApi } from '../../highlevel/contacts.ts';
import { HighLevelError } from '../../highlevel/http.ts';
import type { Supervisor } from '../supervisor.ts';
import { OperationCancelled, RunStopped, type BaseContext } from './types.ts';

/** Real ms a wait sleeps at most before looking at cancel, the clock and the lease again. */
const WAIT_SLICE_MS = 1_000;

export interface PatientApiDeps {
  sync: Pick<Supervisor, 'backgroundApi'>;
  clock: Clock;
  keepShare: number;
  /** True once the operation is cancelled or the process stops. */
  interrupted(): boolean;
  /** Called while waiting (a long daily-budget wait keeps the run's lease alive). */
  heartbeat?(): void;
  /**
   * Told when a call starts waiting out a deferral the admin should know about (the daily budget,
   * a 429, a token refresh backing off; not the routine burst pacing), and `null` once it went through.
   */
  waiting?(err: DeferredError | null): void;
  /**
   * Why waiting is pointless (the location was uninstalled or needs re-authorization), in plain
   * words, or null: a long wait (the daily budget) looks at it every slice and stops the run.
   */
  gone?(): string | null;
}

/** The location cannot be worked on any more: the run stops (failed) with this plain message. */
export class LocationGoneError extends RunStopped {
  override readonly name = 'LocationGoneError';
}

export function patientApi(deps: PatientApiDeps, locationId: string, onRequest: () => void): { api: LocationApi; rate: BaseContext['rate'] } {
  const { api, rate } = deps.sync.backgroundApi(locationId, deps.keepShare);
  const wrapped = {} as Record<string, unknown>;
  for (const [name, value] of Object.entries(api)) {
    // Values and the one query that is not a request (whenRoom) pass through as they are.
    if (typeof value !== 'function' || name === 'whenRoom') {
      wrapped[name] = value;
      continue;
    }
    wrapped[name] = async (...args: unknown[]) => {
      let told = false;
      try {
        for (;;) {
          if (deps.interrupted()) throw new OperationCancelled('cancelled');
          try {
            const result = await (value as (...a: unknown[]) => Promise<unknown>)(...args);
            onRequest();
            return result;
          } catch (err) {
            if (err instanceof HighLevelError) onRequest();
            if (!(err instanceof DeferredError)) throw err;
            if (err.reason !== 'burst') {
              deps.waiting?.(err);
              told = true;
            }
            await waitUntil(deps, err.retryAt);
          }
        }
      } finally {
        if (told) deps.waiting?.(null);
      }
    };
  }
  return { api: wrapped as unknown as LocationApi, rate };
}

async function waitUntil(deps: PatientApiDeps, at: number): Promise<void> {
  while (deps.clock.now() < at) {
    if (deps.interrupted()) throw new OperationCancelled('cancelled');
    const gone = deps.gone?.();
    if (gone) throw new LocationGoneError(gone);
    deps.heartbeat?.();
    const ms = Math.min(WAIT_SLICE_MS, Math.max(1, at - deps.clock.now()));
    await new Promise((r) => setTimeout(r, ms));
  }
}
