// What a running handler is given (types.ts RunContext) on top of the shared base context: the
// lease kept alive at half-life (a lost lease stops the run as if its process had died), the
// checkpoint, named step points (cancel, and T16 crashes in tests), and the items, whose tally is
// the run's counts (kept in step in memory as each record is written or replaced).
import type { Db } from '../../../db/client.ts';
import { claimOperation, getItem, nextItemSeq, putItem, updateOperation, type OperationItemRow, type OperationRow } from '../../../db/operations.ts';
import type { Clock } from '../../clock.ts';
import { adjustCounts, type ProgressTracker } from './progress.ts';
import { OperationCancelled, SimulatedCrash, type BaseContext, type ItemInput, type RunContext } from './types.ts';

export interface RunContextDeps {
  db: Db;
  clock: Clock;
  processId: string;
  leaseMs: number;
  /** True once the run was cancelled in this process or the process stops. */
  interrupted(): boolean;
  crashAt?: ((operation: OperationRow, point: string) => boolean) | undefined;
  emit(row: OperationRow | undefined): unknown;
}

/**
 * Keeps the lease (renewed at half-life) and notices a cancel asked through another process (the
 * row's cancel_requested_at). Another process holding the run means ours was presumed dead: stop
 * without touching it.
 */
export function leaseKeeper(deps: RunContextDeps, row: OperationRow): () => void {
  let leaseUntil = row.leaseUntil ?? 0;
  return () => {
    const t = deps.clock.now();
    if (t <= leaseUntil - deps.leaseMs / 2) return;
    const renewed = claimOperation(deps.db, row.id, deps.processId, t, t + deps.leaseMs);
    if (!renewed) throw new SimulatedCrash('lease lost');
    leaseUntil = renewed.leaseUntil ?? 0;
    if (renewed.cancelRequestedAt !== null) throw new OperationCancelled('cancelled');
  };
}

export function runContext(deps: RunContextDeps, row: OperationRow, base: BaseContext, tracker: ProgressTracker, heartbeat: () => void): RunContext {
  const { db, clock } = deps;
  let seq = nextItemSeq(db, row.id);
  return {
    ...base,
    checkpoint: row.checkpoint ? JSON.parse(row.checkpoint) : null,
    saveCheckpoint(checkpoint: unknown) {
      const p = tracker.get();
      deps.emit(updateOperation(db, row.id, { checkpoint: JSON.stringify(checkpoint), progress: JSON.stringify(p) }, clock.now()));
    },
    step(point?: string) {
      if (deps.interrupted()) throw new OperationCancelled('cancelled');
      if (point && deps.crashAt?.(row, point)) throw new SimulatedCrash(point);
      heartbeat();
    },
    progress: (p) => tracker.update(p),
    record(item: ItemInput) {
      const previous = getItem(db, row.id, item.key);
      putItem(db, {
        operationId: row.id,
        key: item.key,
        locationId: row.locationId,
        entity: item.entity,
        side: item.side,
        action: item.action,
        state: item.state ?? 'done',
        contactId: item.contactId ?? null,
        highlevelId: item.highlevelId ?? null,
        label: item.label ?? null,
        reason: item.reason ?? null,
        before: item.before === undefined ? (previous?.before ?? null) : JSON.stringify(item.before),
        after: item.after === undefined ? null : JSON.stringify(item.after),
        seq: previous?.seq ?? seq++,
        at: clock.now(),
      });
      const counts = tracker.get().counts;
      const users = { ...(tracker.get().users ?? {}) };
      if (previous && previous.state === 'done') adjustCounts(previous, -1, counts, users);
      if ((item.state ?? 'done') === 'done') adjustCounts({ ...item, state: 'done' } as OperationItemRow, 1, counts, users);
      tracker.update({ counts, users });
    },
    item: (key: string) => getItem(db, row.id, key),
  };
}
