// What a running handler is given (types.ts RunContext) on top of the shared base context: the
// lease kept alive at half-life (a lost lease stops the run as if its process had died), the
// checkpoint, named step points (cancel, and T16 crashes in tests), and the items, whose tally is
// the run's counts (kept in step in memory as each record is written or replaced).
import type { Db } from '../../../db/client.ts';
import { claimOperation, getItem, nextItemSeq, putItem, updateOperation, type OperationItemRow, type OperationRow } from '../../../db/operations.ts';
import { updateSyncState } from '../../../db/sync-state.ts';
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

/** How often at most a run moves the status strip's times (a write of the sync state per record would cost a pull dearly). */
const MARK_EVERY_MS = 1000;

/**
 * What a written record means for the status strip's "last change sent to / received from
 * HighLevel": a write to HighLevel (a push, or its undo) was sent there; a record a pull wrote to
 * Tandem came from HighLevel. Other Tandem writes (an undo of a pull, Sync users) neither.
 */
function strand(kind: OperationRow['kind'], item: ItemInput): 'lastOutboundAt' | 'lastInboundAt' | undefined {
  if ((item.state ?? 'done') !== 'done' || !['created', 'updated', 'removed'].includes(item.action)) return undefined;
  if (item.side === 'highlevel') return 'lastOutboundAt';
  return kind === 'pull' && item.side === 'tandem' ? 'lastInboundAt' : undefined;
}

export function runContext(deps: RunContextDeps, row: OperationRow, base: BaseContext, tracker: ProgressTracker, heartbeat: () => void): RunContext {
  const { db, clock } = deps;
  let seq = nextItemSeq(db, row.id);
  const marked: Record<'lastOutboundAt' | 'lastInboundAt', number> = { lastOutboundAt: -Infinity, lastInboundAt: -Infinity };
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
      const moved = strand(row.kind, item);
      const now = clock.now();
      if (moved && now - marked[moved] >= MARK_EVERY_MS) {
        marked[moved] = now;
        updateSyncState(db, row.locationId, { [moved]: now }, now);
      }
    },
    item: (key: string) => getItem(db, row.id, key),
  };
}
