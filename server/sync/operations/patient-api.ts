// A one-time operation's view of the location's HighLevel API: the SAME budget gate as the
// continuous loop, leaving it a share of every burst window; budget deferrals (burst, 429, daily,
// token backoff) are waited out here, because a background job has no request to answer; the wait
// ends early on cancel or shutdown. Every answered request is counted for the progress figures.
//
// Transient failures (no answer, a timeout, a 5xx) are waited out here too, with growing backoff
// (the continuous loop's, token-policy.ts), so a blip of HighLevel's does not fail a run that would
// have to start over from a new preview (QA: failed after 1.1 s at 500 of 5,012). Only when HighLevel
// has kept failing for GIVE_UP_AFTER_MS does the run stop, saying so. A call that may have gone
// through and cannot simply be sent again (a create: HighLevel may have created the contact) is
// not repeated here: its caller looks the contact up before it tries again (push-record.ts).
import type { Clock } from '../../clock.ts';
import { DeferredError, type LocationApi } from '../../highlevel/contacts.ts';
import { classifyHighLevelError, HighLevelError, retryHintMs } from '../../highlevel/http.ts';
import { backoffMs } from '../../highlevel/token-policy.ts';
import { describeRunError, plainProblem, utc } from '../describe-error.ts';
import type { Supervisor } from '../supervisor.ts';
import { OperationCancelled, RunStopped, type BaseContext, type Progress } from './types.ts';

/** Real ms a wait sleeps at most before looking at cancel, the clock and the lease again. */
const WAIT_SLICE_MS = 1_000;

/**
 * How long HighLevel may keep failing (no answer, timeouts, 5xx: every try since the first failure
 * failed) before the run stops: minutes of waiting out a blip, not an outage.
 */
export const GIVE_UP_AFTER_MS = 5 * 60_000;

/** Calls that may have gone through when they failed, which only their caller may try again (after a lookup). */
const NOT_REPEATED: ReadonlySet<string> = new Set(['createContact']);

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
  /** Jitter of the backoff between two tries (default Math.random). */
  random?(): number;
  /**
   * Told when a call starts waiting out HighLevel failing (a transient error), and until when; null
   * once it moves again. The progress says so, as `waiting` does for a budget deferral.
   */
  retrying?(wait: RetryWait | null): void;
}

/** HighLevel kept failing for GIVE_UP_AFTER_MS: the run stops (failed), saying what went wrong and what to do. */
export class HighLevelUnavailableError extends RunStopped {
  override readonly name = 'HighLevelUnavailableError';
  constructor(readonly last: HighLevelError) {
    super(describeRunError(last), { cause: last });
  }
}

/** A call waiting out a transient failure of HighLevel's until `until` (clock ms). */
export interface RetryWait {
  until: number;
  err: HighLevelError;
}

/** A transient failure's wait as the progress says it (null fields once the call moves again). */
export function retryProgress(wait: RetryWait | null): Pick<Progress, 'waiting' | 'waitingFor' | 'waitingUntil'> {
  if (!wait) return { waiting: null, waitingFor: null, waitingUntil: null };
  // UTC, as describe-error.ts writes every moment, so the panel shows it in the viewer's zone.
  return { waiting: `${plainProblem(wait.err)} Tandem tries again at ${utc(wait.until)}.`, waitingFor: 'retry', waitingUntil: new Date(wait.until).toISOString() };
}

/** The location cannot be worked on any more: the run stops (failed) with this plain message. */
export class LocationGoneError extends RunStopped {
  override readonly name = 'LocationGoneError';
}

export function patientApi(deps: PatientApiDeps, locationId: string, onRequest: () => void): { api: LocationApi; rate: BaseContext['rate'] } {
  const { api, rate } = deps.sync.backgroundApi(locationId, deps.keepShare);
  const wrapped = {} as Record<string, unknown>;
  const random = deps.random ?? Math.random;
  /** Since when every try failed transiently, and how many tries failed (reset by any answer). */
  let failing: { since: number; tries: number } | null = null;
  for (const [name, value] of Object.entries(api)) {
    // Values and the one query that is not a request (whenRoom) pass through as they are.
    if (typeof value !== 'function' || name === 'whenRoom') {
      wrapped[name] = value;
      continue;
    }
    wrapped[name] = async (...args: unknown[]) => {
      let told = false;
      let retried = false;
      try {
        for (;;) {
          if (deps.interrupted()) throw new OperationCancelled('cancelled');
          try {
            const result = await (value as (...a: unknown[]) => Promise<unknown>)(...args);
            onRequest();
            failing = null;
            return result;
          } catch (err) {
            if (err instanceof HighLevelError) onRequest();
            if (err instanceof DeferredError) {
              if (err.reason !== 'burst') {
                deps.waiting?.(err);
                told = true;
              }
              await waitUntil(deps, err.retryAt);
              continue;
            }
            if (!(err instanceof HighLevelError) || classifyHighLevelError(err) !== 'retry') {
              // HighLevel answered (a refusal, a 404): it is there, whatever this call's fate.
              if (err instanceof HighLevelError) failing = null;
              throw err;
            }
            if (NOT_REPEATED.has(name)) throw err;
            const now = deps.clock.now();
            failing ??= { since: now, tries: 0 };
            failing.tries++;
            const giveUpAt = failing.since + GIVE_UP_AFTER_MS;
            if (now >= giveUpAt) throw new HighLevelUnavailableError(err);
            const until = Math.min(giveUpAt, now + backoffMs(failing.tries, random, retryHintMs(err)));
            deps.retrying?.({ until, err });
            retried = true;
            await waitUntil(deps, until);
          }
        }
      } finally {
        if (told) deps.waiting?.(null);
        if (retried) deps.retrying?.(null);
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
