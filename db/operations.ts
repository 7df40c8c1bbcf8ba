// One-time operations and their per-record outcomes (see the tables' comments in schema.ts).
// The only code that touches `operations` and `operation_items`.
import { and, asc, desc, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { randomBase62 } from './ids.ts';
import { preparedOnce, transaction } from './prepared.ts';
import { operationItems, operations, type OperationKind, type OperationStatus } from './schema.ts';

export type OperationRow = typeof operations.$inferSelect;
export type OperationItemRow = typeof operationItems.$inferSelect;

export const ACTIVE_STATUSES: readonly OperationStatus[] = ['previewing', 'previewed', 'running'];

/** Another operation is unfinished for the location (the partial unique index refused the insert). */
export class OperationBusyError extends Error {
  override readonly name = 'OperationBusyError';
  constructor(readonly active: OperationRow) {
    super(`operation ${active.id} (${active.kind}, ${active.status}) is unfinished for this location`);
  }
}

export function newOperationId(): string {
  return `op_${randomBase62(20)}`;
}

export function getOperation(db: Db, locationId: string, id: string): OperationRow | undefined {
  return db.select().from(operations).where(and(eq(operations.locationId, locationId), eq(operations.id, id))).get();
}

/** Any location's operation by id: for the runner's own bookkeeping, never for a request. */
export function getOperationById(db: Db, id: string): OperationRow | undefined {
  return db.select().from(operations).where(eq(operations.id, id)).get();
}

export function activeOperation(db: Db, locationId: string): OperationRow | undefined {
  return db
    .select()
    .from(operations)
    .where(and(eq(operations.locationId, locationId), inArray(operations.status, [...ACTIVE_STATUSES])))
    .get();
}

/**
 * Creates an operation in 'previewing'. An unconfirmed preview of the location is discarded first
 * (the admin opened another dialog, maybe in another tab, or another admin did), with `whyReplaced`
 * of it stored as its error, and returned as `replaced` so the caller can stop its work and tell
 * whoever watches it; a running one makes this fail with OperationBusyError.
 */
export function createOperation(
  db: Db,
  input: {
    locationId: string; kind: OperationKind; undoOf?: string | null; requestedBy: string; requestedByName?: string | null; now: number;
    whyReplaced?: (replaced: OperationRow) => string;
  },
): { row: OperationRow; replaced: OperationRow | undefined } {
  return transaction(db, () => {
    const active = db
      .select()
      .from(operations)
      .where(and(eq(operations.locationId, input.locationId), inArray(operations.status, [...ACTIVE_STATUSES])))
      .get();
    if (active?.status === 'running') throw new OperationBusyError(active);
    const replaced = active
      ? db.update(operations)
          .set({ status: 'discarded', finishedAt: input.now, updatedAt: input.now, leaseOwner: null, leaseUntil: null, error: input.whyReplaced?.(active) ?? null })
          .where(eq(operations.id, active.id))
          .returning()
          .get()
      : undefined;
    const row: typeof operations.$inferInsert = {
      id: newOperationId(),
      locationId: input.locationId,
      kind: input.kind,
      undoOf: input.undoOf ?? null,
      status: 'previewing',
      requestedBy: input.requestedBy,
      requestedByName: input.requestedByName ?? null,
      createdAt: input.now,
      updatedAt: input.now,
    };
    return { row: db.insert(operations).values(row).returning().get(), replaced };
  });
}

export type OperationPatch = Partial<
  Pick<
    OperationRow,
    | 'status' | 'previewedAt' | 'confirmedAt' | 'finishedAt' | 'cancelRequestedAt' | 'preview' | 'progress'
    | 'checkpoint' | 'error' | 'leaseOwner' | 'leaseUntil' | 'undoneBy'
  >
>;

/** Updates the row if it is still in one of `from` (when given); returns the new row or undefined. */
export function updateOperation(db: Db, id: string, patch: OperationPatch, now: number, from?: readonly OperationStatus[]): OperationRow | undefined {
  const where = from ? and(eq(operations.id, id), inArray(operations.status, [...from])) : eq(operations.id, id);
  return db.update(operations).set({ ...patch, updatedAt: now }).where(where).returning().get();
}

/**
 * Claims a running operation for `owner` until `until` when nobody holds it (no lease, or an
 * expired one, or already ours): the one way a process starts or resumes work on a run.
 */
export function claimOperation(db: Db, id: string, owner: string, now: number, until: number): OperationRow | undefined {
  return db
    .update(operations)
    .set({ leaseOwner: owner, leaseUntil: until, updatedAt: now })
    .where(
      and(
        eq(operations.id, id),
        eq(operations.status, 'running'),
        or(isNull(operations.leaseUntil), lt(operations.leaseUntil, now), eq(operations.leaseOwner, owner)),
      ),
    )
    .returning()
    .get();
}

/** Running operations nobody holds (their process died, or this process just started). */
export function orphanedRuns(db: Db, now: number): OperationRow[] {
  return db
    .select()
    .from(operations)
    .where(and(eq(operations.status, 'running'), or(isNull(operations.leaseUntil), lt(operations.leaseUntil, now))))
    .all();
}

/** Previews older than `before` that were never confirmed. */
export function stalePreviews(db: Db, before: number): OperationRow[] {
  return db
    .select()
    .from(operations)
    // A ready preview's time runs from when it was ready (the reading may have waited on HighLevel).
    .where(and(inArray(operations.status, ['previewing', 'previewed']), sql`coalesce(${operations.previewedAt}, ${operations.createdAt}) < ${before}`))
    .all();
}

/** Previews being read whose row has not moved since `before` (progress is written as it goes). */
export function stalledPreviews(db: Db, before: number): OperationRow[] {
  return db
    .select()
    .from(operations)
    .where(and(eq(operations.status, 'previewing'), lt(operations.updatedAt, before)))
    .all();
}

/** The location's finished and running operations, newest first (discarded previews left out). */
export function listOperations(db: Db, locationId: string, limit = 20): OperationRow[] {
  return db
    .select()
    .from(operations)
    .where(and(eq(operations.locationId, locationId), inArray(operations.status, ['running', 'completed', 'cancelled', 'failed'])))
    .orderBy(desc(operations.createdAt), desc(operations.id))
    .limit(limit)
    .all();
}

/** Epoch ms of the latest completed run of each kind (the panel's "Last push contacts: …"). */
export function lastCompleted(db: Db, locationId: string): Partial<Record<OperationKind, number>> {
  const rows = db
    .select({ kind: operations.kind, at: sql<number>`max(${operations.finishedAt})` })
    .from(operations)
    .where(and(eq(operations.locationId, locationId), eq(operations.status, 'completed')))
    .groupBy(operations.kind)
    .all();
  return Object.fromEntries(rows.map((r) => [r.kind, r.at]));
}

// ---- items ---------------------------------------------------------------------------------------

// Prepared once: a run reads an item per record it writes (10,000 records in a push).
const itemByKey = preparedOnce((db) =>
  db
    .select()
    .from(operationItems)
    .where(and(eq(operationItems.operationId, sql.placeholder('operationId')), eq(operationItems.key, sql.placeholder('key'))))
    .prepare(),
);

export function getItem(db: Db, operationId: string, key: string): OperationItemRow | undefined {
  return itemByKey(db).get({ operationId, key });
}

/** Inserts or replaces one record's outcome; `seq` keeps the first insertion's order. */
export function putItem(db: Pick<Db, 'insert'>, row: Omit<OperationItemRow, 'seq'> & { seq: number }): void {
  upsertItem(db as Db).run(row);
}

// Prepared once: a run writes an item per record (10,000 records in a push). Every column but the
// key's is replaced on conflict; `seq` keeps the first insertion's.
const upsertItem = preparedOnce((db) => {
  const p = sql.placeholder;
  return db
    .insert(operationItems)
    .values({
      operationId: p('operationId'), key: p('key'), seq: p('seq'), locationId: p('locationId'), entity: p('entity') as never,
      side: p('side') as never, action: p('action'), state: p('state') as never, contactId: p('contactId'), highlevelId: p('highlevelId'),
      label: p('label'), reason: p('reason'), before: p('before'), after: p('after'), at: p('at'),
    })
    .onConflictDoUpdate({
      target: [operationItems.operationId, operationItems.key],
      set: {
        locationId: sql`excluded.location_id`, entity: sql`excluded.entity`, side: sql`excluded.side`, action: sql`excluded.action`,
        state: sql`excluded.state`, contactId: sql`excluded.contact_id`, highlevelId: sql`excluded.highlevel_id`, label: sql`excluded.label`,
        reason: sql`excluded.reason`, before: sql`excluded.before`, after: sql`excluded.after`, at: sql`excluded.at`,
      },
    })
    .prepare();
});

/** How many items of each (entity, side, action, state) a run has recorded. */
export function itemTally(db: Db, operationId: string): Array<{ entity: string; side: string; action: string; state: string; n: number }> {
  return db
    .select({ entity: operationItems.entity, side: operationItems.side, action: operationItems.action, state: operationItems.state, n: sql<number>`count(*)` })
    .from(operationItems)
    .where(eq(operationItems.operationId, operationId))
    .groupBy(operationItems.entity, operationItems.side, operationItems.action, operationItems.state)
    .all();
}

export function nextItemSeq(db: Db, operationId: string): number {
  const row = db.select({ max: sql<number | null>`max(${operationItems.seq})` }).from(operationItems).where(eq(operationItems.operationId, operationId)).get();
  return (row?.max ?? 0) + 1;
}

/** A page of a run's items in order, after `afterSeq`; `actions` filters (e.g. only failed). */
export function listItems(db: Db, operationId: string, opts: { afterSeq?: number; limit?: number; actions?: string[]; state?: 'pending' | 'done' } = {}): OperationItemRow[] {
  const conds = [eq(operationItems.operationId, operationId), gt(operationItems.seq, opts.afterSeq ?? 0)];
  if (opts.actions?.length) conds.push(inArray(operationItems.action, opts.actions));
  if (opts.state) conds.push(eq(operationItems.state, opts.state));
  return db
    .select()
    .from(operationItems)
    .where(and(...conds))
    .orderBy(asc(operationItems.seq))
    .limit(opts.limit ?? 100)
    .all();
}
