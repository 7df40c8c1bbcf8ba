// Per-location sync state: the reconciliation cursor and its checkpoints, when the next pull is
// due, the latest change each way and the latest error in plain words. The only code that writes
// sync_state.
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from './client.ts';
import { preparedOnce } from './prepared.ts';
import { syncState } from './schema.ts';

/**
 * The pull cursor. `dateUpdated` is an INCLUSIVE lower bound for the next pull; `seenIds` are the
 * contacts already applied at exactly that instant (so the inclusive bound re-reads them without
 * re-applying). `settledTo`: every contact updated at or before it was applied from a search begun
 * at least SEARCH_SETTLE_MS after its update, when search surely showed it (server/sync/reconcile.ts);
 * null when not known (a cursor stored before Tandem kept it). `run` is the pull in progress,
 * checkpointed after every page: a pull interrupted (deferred, 401, crash) resumes with the same
 * lower bound after the last page it applied.
 */
export const pullCursorSchema = z.object({
  dateUpdated: z.number().nullable(),
  seenIds: z.array(z.string()),
  /** Defaults to null: cursors stored before it existed still parse. */
  settledTo: z.number().nullable().default(null),
  run: z
    .object({
      /** A full sweep (no lower bound; detects deletions when it completes in one process). */
      full: z.boolean(),
      /** The run's lower bound (null: none): the cursor's dateUpdated, or its settledTo for a settling run. */
      from: z.number().nullable(),
      /** HighLevel's cursor after the last applied page; null before the first page. */
      searchAfter: z.array(z.union([z.string(), z.number()])).nullable(),
      startedAt: z.number(),
    })
    .nullable()
    .default(null),
});
export type PullCursor = z.infer<typeof pullCursorSchema>;

export const EMPTY_CURSOR: PullCursor = { dateUpdated: null, seenIds: [], settledTo: null, run: null };

/**
 * Owners that could not travel: HighLevel users owning contacts with no Tandem user paired
 * (`remote`, HighLevel ids) and Tandem users owning contacts with no HighLevel user paired (`local`,
 * Tandem ids). Kept across passes, since one pass sees only the contacts it handled: the notice
 * built from a single pass came and went while the owners stayed unpaired.
 */
export const unmatchedOwnersSchema = z.object({ remote: z.array(z.string()), local: z.array(z.string()) });
export type UnmatchedOwners = z.infer<typeof unmatchedOwnersSchema>;
export const NO_UNMATCHED_OWNERS: UnmatchedOwners = { remote: [], local: [] };

export interface SyncState {
  locationId: string;
  cursor: PullCursor;
  lastFullSweepAt: number | null;
  nextPullAt: number | null;
  lastInboundAt: number | null;
  lastOutboundAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  unmatchedOwners: UnmatchedOwners;
  updatedAt: number | null;
}

// Prepared once per connection: every pass of a location's loop reads and writes its state.
const p = sql.placeholder;
const stateOf = preparedOnce((db) => db.select().from(syncState).where(eq(syncState.locationId, p('locationId'))).prepare());
const COLUMNS = ['pullCursor', 'lastFullSweepAt', 'nextPullAt', 'lastInboundAt', 'lastOutboundAt', 'lastError', 'lastErrorAt', 'unmatchedOwners'] as const;
type StateRow = typeof syncState.$inferSelect;
const writeState = preparedOnce((db) =>
  db
    .insert(syncState)
    .values({ locationId: p('locationId'), updatedAt: p('updatedAt'), ...Object.fromEntries(COLUMNS.map((c) => [c, p(c)])) })
    .onConflictDoUpdate({
      target: syncState.locationId,
      set: { updatedAt: sql`excluded.updated_at`, ...Object.fromEntries(COLUMNS.map((c) => [c, sql.raw(`excluded.${syncState[c].name}`)])) },
    })
    .prepare(),
);

export function getSyncState(db: Db, locationId: string): SyncState {
  const row = stateOf(db).get({ locationId });
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
      unmatchedOwners: NO_UNMATCHED_OWNERS,
      updatedAt: null,
    };
  }
  const { pullCursor, unmatchedOwners, ...rest } = row;
  return {
    ...rest,
    cursor: pullCursor ? pullCursorSchema.parse(JSON.parse(pullCursor)) : EMPTY_CURSOR,
    unmatchedOwners: unmatchedOwners ? unmatchedOwnersSchema.parse(JSON.parse(unmatchedOwners)) : NO_UNMATCHED_OWNERS,
  };
}

export interface SyncStatePatch {
  cursor?: PullCursor;
  lastFullSweepAt?: number | null;
  nextPullAt?: number | null;
  lastInboundAt?: number;
  lastOutboundAt?: number;
  /** Plain words for the panel; null clears it. lastErrorAt follows. */
  lastError?: string | null;
  unmatchedOwners?: UnmatchedOwners;
}

/**
 * Writes the given fields (creating the row on first use); the latest change times only move
 * forward. A patch that changes nothing writes nothing (every pass ends by recording its outcome).
 */
export function updateSyncState(db: Db, locationId: string, patch: SyncStatePatch, now: number): void {
  const current: StateRow | undefined = stateOf(db).get({ locationId });
  const next: Omit<StateRow, 'locationId' | 'updatedAt'> = {
    pullCursor: current?.pullCursor ?? null,
    lastFullSweepAt: current?.lastFullSweepAt ?? null,
    nextPullAt: current?.nextPullAt ?? null,
    lastInboundAt: current?.lastInboundAt ?? null,
    lastOutboundAt: current?.lastOutboundAt ?? null,
    lastError: current?.lastError ?? null,
    lastErrorAt: current?.lastErrorAt ?? null,
    unmatchedOwners: current?.unmatchedOwners ?? null,
  };
  if (patch.cursor !== undefined) next.pullCursor = JSON.stringify(pullCursorSchema.parse(patch.cursor));
  if (patch.lastFullSweepAt !== undefined) next.lastFullSweepAt = patch.lastFullSweepAt;
  if (patch.nextPullAt !== undefined) next.nextPullAt = patch.nextPullAt;
  if (patch.unmatchedOwners !== undefined) {
    const { remote, local } = unmatchedOwnersSchema.parse(patch.unmatchedOwners);
    // Sorted, so that the same owners write nothing.
    next.unmatchedOwners = JSON.stringify({ remote: [...new Set(remote)].sort(), local: [...new Set(local)].sort() });
  }
  if (patch.lastInboundAt !== undefined) next.lastInboundAt = Math.max(patch.lastInboundAt, next.lastInboundAt ?? 0);
  if (patch.lastOutboundAt !== undefined) next.lastOutboundAt = Math.max(patch.lastOutboundAt, next.lastOutboundAt ?? 0);
  if (patch.lastError !== undefined && patch.lastError !== next.lastError) {
    next.lastError = patch.lastError;
    next.lastErrorAt = patch.lastError === null ? null : now;
  }
  if (current && COLUMNS.every((c) => next[c] === current[c])) return;
  writeState(db).run({ locationId, updatedAt: now, ...next });
}

/**
 * The location's next pull is a full sweep from its first page, as after an install: a run in
 * progress is dropped (the pages it read may have changed since) and no sweep counts as done.
 * For a gap in which Tandem heard nothing from HighLevel (an uninstall): only a sweep sees the
 * deletions made meanwhile.
 */
export function requestFullSweep(db: Db, locationId: string, now: number): void {
  const { cursor } = getSyncState(db, locationId);
  updateSyncState(db, locationId, { cursor: { ...cursor, run: null }, lastFullSweepAt: null, nextPullAt: null }, now);
}
