// Per-location sync state: the reconciliation cursor and its checkpoints, when the next pull is
// due, the latest change each way and the latest error in plain words. The only code that writes
// sync_state.
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from './client.ts';
import { syncState } from './schema.ts';

/**
 * The pull cursor. `dateUpdated` is an INCLUSIVE lower bound for the next pull; `seenIds` are the
 * contacts already applied at exactly that instant (so the inclusive bound re-reads them without
 * re-applying). `run` is the pull in progress, checkpointed after every page: a pull interrupted
 * (deferred, 401, crash) resumes with the same lower bound after the last page it applied.
 */
export const pullCursorSchema = z.object({
  dateUpdated: z.number().nullable(),
  seenIds: z.array(z.string()),
  run: z
    .object({
      /** A full sweep (no lower bound; detects deletions when it completes in one process). */
      full: z.boolean(),
      /** The run's lower bound (null: none). */
      from: z.number().nullable(),
      /** HighLevel's cursor after the last applied page; null before the first page. */
      searchAfter: z.array(z.union([z.string(), z.number()])).nullable(),
      startedAt: z.number(),
    })
    .nullable()
    .default(null),
});
export type PullCursor = z.infer<typeof pullCursorSchema>;

export const EMPTY_CURSOR: PullCursor = { dateUpdated: null, seenIds: [], run: null };

export interface SyncState {
  locationId: string;
  cursor: PullCursor;
  lastFullSweepAt: number | null;
  nextPullAt: number | null;
  lastInboundAt: number | null;
  lastOutboundAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  updatedAt: number | null;
}

export function getSyncState(db: Db, locationId: string): SyncState {
  const row = db.select().from(syncState).where(eq(syncState.locationId, locationId)).get();
  if (!row) {
    return {
      locationId,
      cursor: EMPTY_CURSOR,
      lastFullSweepAt: null,
      nextPullAt: null,
      lastInboundAt: null,
      lastOutboundAt: null,
      lastError: null,
      lastErrorAt: null,
      updatedAt: null,
    };
  }
  const { pullCursor, ...rest } = row;
  return { ...rest, cursor: pullCursor ? pullCursorSchema.parse(JSON.parse(pullCursor)) : EMPTY_CURSOR };
}

export interface SyncStatePatch {
  cursor?: PullCursor;
  lastFullSweepAt?: number | null;
  nextPullAt?: number | null;
  lastInboundAt?: number;
  lastOutboundAt?: number;
  /** Plain words for the panel; null clears it. lastErrorAt follows. */
  lastError?: string | null;
}

/** Writes the given fields (creating the row on first use); the latest change times only move forward. */
export function updateSyncState(db: Db, locationId: string, patch: SyncStatePatch, now: number): void {
  const current = getSyncState(db, locationId);
  const set: Partial<typeof syncState.$inferInsert> = { updatedAt: now };
  if (patch.cursor !== undefined) set.pullCursor = JSON.stringify(pullCursorSchema.parse(patch.cursor));
  if (patch.lastFullSweepAt !== undefined) set.lastFullSweepAt = patch.lastFullSweepAt;
  if (patch.nextPullAt !== undefined) set.nextPullAt = patch.nextPullAt;
  if (patch.lastInboundAt !== undefined) set.lastInboundAt = Math.max(patch.lastInboundAt, current.lastInboundAt ?? 0);
  if (patch.lastOutboundAt !== undefined) set.lastOutboundAt = Math.max(patch.lastOutboundAt, current.lastOutboundAt ?? 0);
  if (patch.lastError !== undefined && patch.lastError !== current.lastError) {
    set.lastError = patch.lastError;
    set.lastErrorAt = patch.lastError === null ? null : now;
  }
  db.insert(syncState)
    .values({ locationId, ...set, updatedAt: now })
    .onConflictDoUpdate({ target: syncState.locationId, set })
    .run();
}
