// A run's (or a preview's) progress as the panel sees it: kept in memory, written to the
// operation's row and pushed to subscribers at most every PROGRESS_EVERY_MS (with a trailing write
// so the latest counts arrive even when nothing follows), with an ETA from the pace so far.
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
 * 3 min left" at 5% of a run that ended 15 s later).
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
  let trailing: NodeJS.Timeout | undefined;
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
      current = { ...current, ...p };
      if (p.etaMs === undefined && plan) {
        current.etaMs = Math.round(Math.max(0, plan.requests - current.requests) * plan.msPerRequest);
      } else if (p.etaMs === undefined && current.total !== null && current.done > doneAtStart) {
        const rate = (clock.now() - startedAt) / (current.done - doneAtStart);
        current.etaMs = Math.max(0, Math.round(rate * (current.total - current.done)));
      }
      persist(force || p.phase !== undefined);
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
