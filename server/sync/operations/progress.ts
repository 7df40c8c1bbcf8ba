// A run's (or a preview's) progress as the panel sees it: kept in memory, written to the
// operation's row and pushed to subscribers at most every PROGRESS_EVERY_MS (with a trailing write
// so the latest counts arrive even when nothing follows), with an ETA from the pace so far. Time
// spent waiting (the daily limit, a 429, HighLevel not answering) is no part of the pace: the panel
// says why the run waits instead of a time left, and once it moves the pace is its working pace.
import type { Db } from '../../../db/client.ts';
import { updateOperation, type OperationItemRow, type OperationRow } from '../../../db/operations.ts';
import type { Clock } from '../../clock.ts';
import type { Progress } from './types.ts';

/** Real ms between progress writes and events. */
const PROGRESS_EVERY_MS = 250;

export interface ProgressTracker {
  get(): Progress;
  update(p: Partial<Progress>, force?: boolean): void;
  flush(): void;
  /** No write after this (the work ended, maybe the database is closing). */
  stop(): void;
}

/**
 * The requests a run's preview predicted and the pace the rate limit allows them (its estimate
 * over its requests). A run's time is its requests' as a rule: records that need none (unchanged)
 * go by in a moment, those that write wait for the budget, so a pace by records misled (QA: "about
 * 3 min left" at 5% of a run that ended 15 s later). The rate limit's pace is the fastest the run
 * can go: when HighLevel takes longer to answer, the requests left go at the pace seen so far (QA:
 * "finishing" at 2,000 of 5,012 records, every search taking 3 s).
 */
export interface RequestPlan {
  requests: number;
  msPerRequest: number;
}

export function progressTracker(
  deps: { db: Db; clock: Clock; emit: (row: OperationRow | undefined) => unknown },
  row: OperationRow,
  initial: Progress,
  plan?: RequestPlan,
): ProgressTracker {
  const { db, clock } = deps;
  let current: Progress = initial;
  let lastWrite = 0;
  const startedAt = clock.now();
  const doneAtStart = initial.done;
  const requestsAtStart = initial.requests;
  /** Clock ms spent waiting (finished waits), and since when the current wait lasts. */
  let waited = 0;
  let waitingSince: number | null = null;
  let trailing: NodeJS.Timeout | undefined;
  /** Clock ms this tracker's work has moved, its waits left out. */
  function working(now: number): number {
    return Math.max(0, now - startedAt - waited - (waitingSince === null ? 0 : now - waitingSince));
  }
  /**
   * The time left: the requests left (the plan's) at the slower of the plan's pace and the pace
   * seen; once the plan's requests are used up (retries, contacts added since the preview) while
   * records are left, the records left at the pace seen by record. Null while nothing tells: no
   * pace seen yet and a plan that says no time at all.
   */
  function estimate(now: number): number | null {
    const elapsed = working(now);
    const left = current.total === null ? null : Math.max(0, current.total - current.done);
    const byRecord = current.done > doneAtStart && left !== null ? (elapsed / (current.done - doneAtStart)) * left : null;
    if (!plan) return byRecord === null ? null : Math.round(byRecord);
    const requestsLeft = Math.max(0, plan.requests - current.requests);
    if (requestsLeft === 0 && left) return byRecord === null ? null : Math.round(byRecord);
    const seen = current.requests > requestsAtStart ? elapsed / (current.requests - requestsAtStart) : null;
    const eta = requestsLeft * Math.max(plan.msPerRequest, seen ?? 0);
    return eta === 0 && seen === null && left ? null : Math.round(eta);
  }
  function write(): void {
    clearTimeout(trailing);
    trailing = undefined;
    lastWrite = Date.now();
    // Only while working: a late write never overwrites a finished operation's final summary.
    deps.emit(updateOperation(db, row.id, { progress: JSON.stringify(current) }, clock.now(), ['previewing', 'running']));
  }
  function persist(force: boolean): void {
    const t = Date.now();
    if (force || t - lastWrite >= PROGRESS_EVERY_MS) return write();
    trailing ??= setTimeout(write, PROGRESS_EVERY_MS - (t - lastWrite));
    trailing.unref();
  }
  return {
    get: () => current,
    update(p, force = false) {
      const now = clock.now();
      current = { ...current, ...p };
      const waits = !!(current.waitingFor || current.waiting);
      if (waits && waitingSince === null) waitingSince = now;
      if (!waits && waitingSince !== null) {
        waited += now - waitingSince;
        waitingSince = null;
      }
      if (p.etaMs === undefined) {
        const eta = estimate(now);
        // A record-paced estimate needs a record done first: until then the last one stands.
        if (eta !== null || plan) current.etaMs = eta;
      }
      // A wait beginning or ending is told at once.
      persist(force || p.phase !== undefined || p.waitingFor !== undefined || p.waiting !== undefined);
    },
    flush: () => persist(true),
    stop() {
      clearTimeout(trailing);
      trailing = undefined;
    },
  };
}

/** Moves one recorded item into (by = 1) or out of (by = -1) the in-memory counts. */
export function adjustCounts(item: Pick<OperationItemRow, 'entity' | 'side' | 'action'>, by: number, counts: Progress['counts'], users: Record<string, number>): void {
  if (item.entity === 'user') {
    users[item.action] = (users[item.action] ?? 0) + by;
    return;
  }
  const side = counts[item.side as 'tandem' | 'highlevel'];
  const key = item.action as keyof typeof side;
  if (key in side) side[key] += by;
}
