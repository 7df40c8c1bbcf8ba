// Reconciliation: the pull that repairs whatever webhooks missed (HighLevel retries a webhook only
// on 429). Incremental by dateUpdated: search `dateUpdated >= cursor` (INCLUSIVE: a contact updated
// in the same millisecond as the last one applied is not skipped), sorted by dateUpdated ascending,
// paged with HighLevel's `searchAfter`; contacts already applied at exactly the cursor instant are
// skipped by id. The cursor is checkpointed after every page, so a pull interrupted by a 429, a
// token problem or a crash resumes after the last applied page instead of starting over.
//
// Why nothing is lost at a page boundary: an edit during the pull moves the contact's dateUpdated
// forward (to "now"), i.e. ahead of the searchAfter position, so a later page returns it again.
//
// Why nothing is lost to search's lag: HighLevel's search shows writes a few seconds late, in no
// promised order, so a contact may show only after a run moved the cursor past it (a later write
// showed first). The cursor also keeps `settledTo`: every contact updated up to it was applied from
// a search begun at least SEARCH_SETTLE_MS after its update, when search surely showed it. A run
// normally starts from the cursor; once settledTo is SETTLE_EVERY_MS behind what a run could settle,
// the run starts from settledTo instead (a settling run): it reads again what was written since,
// the late contacts included, the others coming back as 'echo' or 'stale' (nothing written). A
// completed run from settledTo or below (or a full sweep) moves settledTo up to its start minus
// SEARCH_SETTLE_MS. So a record is read about twice, whatever the pull frequency (during an import
// in HighLevel the supervisor pulls every second), and a quiet location, once settled, reads
// nothing new. The cursor itself (dateUpdated, seenIds) only moves forward.
//
// A full sweep (no lower bound) runs first after an install (it imports HighLevel's existing
// contacts) and then every FULL_SWEEP_INTERVAL_MS. When a sweep runs from its first page to its
// last in one process, every live link it did not see is read (GET): a contact HighLevel no longer
// has is archived and tombstoned — a deletion whose webhook was lost.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../db/client.ts';
import { liveRemoteIds } from '../../db/links.ts';
import { getSyncState, updateSyncState, type PullCursor } from '../../db/sync-state.ts';
import type { Clock } from '../clock.ts';
import { fromHighLevel, type OwnerMap, type RemoteContact } from '../highlevel/contact-mapping.ts';
import type { LocationApi, SearchedContact, SearchFilter } from '../highlevel/contacts.ts';
import { applyRemote, applyRemotePage, CHANGED_OUTCOMES, type InboundDeps } from './inbound.ts';

/**
 * How long after a contact's update (HighLevel's clock) a search must begin to be sure to show it.
 * Search is eventually consistent: "updates may take a few seconds to appear in the search results"
 * (CONTRACT §3.4), and nothing says in write order. A contact written just before a run began may
 * show only after the run read later ones; a cursor moved past it would never bring it (only the
 * daily full sweep would), and its webhook may be the one that was lost. Two minutes: "a few
 * seconds" of lag many times over, plus the skew between Tandem's clock (a run's start) and
 * HighLevel's (dateUpdated), which NTP keeps far below that. What a run settles ends at its start
 * minus this margin.
 */
export const SEARCH_SETTLE_MS = 2 * 60_000;
/** HighLevel's largest page. */
export const PAGE_LIMIT = 500;
export const PULL_INTERVAL_MS = 5 * 60_000;
/**
 * A run starts from settledTo instead of the cursor (a settling run) once it would move settledTo
 * this far: what was written since the last settling run is read again then, SEARCH_SETTLE_MS more,
 * so about once more per record whatever the pull frequency. With pulls every PULL_INTERVAL_MS in a
 * busy location every run is a settling one (a record read about 1.4 times); with an import's pulls
 * every second, a settling run every 5 minutes reads 7 minutes' records again.
 */
export const SETTLE_EVERY_MS = PULL_INTERVAL_MS;
export const FULL_SWEEP_INTERVAL_MS = 24 * 60 * 60_000;
/**
 * Records of a page mapped and applied in one go (one transaction), with a turn of the event loop
 * between two slices. A count, not a time, so that a pass does the same under a manual clock.
 * A slice holds the app thread's event loop (the panel, the REST API and the webhook mover wait).
 * In pulls of 20,000 on a 2-core machine, slices of 200 held it 42–50 ms at most (p99 33–38 ms)
 * against 35–44 (26–28) with 50 and 76–83 (53–66) with a whole page of 500, and the pull took
 * 101–107 µs per contact against 115–146 with 50 (three alternating rounds, bench/README): fewer
 * commits, each writing once the random-key index pages it touched. Slices were 50 while this
 * thread also acknowledged webhooks; under `npm start` the front does that (server/front.ts), so
 * a slice no longer delays an acknowledgement there.
 */
export const APPLY_SLICE = 200;
/**
 * Live links read per query when a full sweep looks for the contacts it did not see: 2,000 in one
 * query held the event loop for about 13 ms on a 2-core machine (profile of a pull of 20,000).
 */
const LINKS_PAGE = 500;

export interface PullDeps {
  db: Db;
  clock: Clock;
  api: LocationApi;
  settings: InboundDeps['settings'];
  ownerMap: OwnerMap;
  log?: Logger;
  pageLimit?: number;
  /** Pages per call at most (the rest waits for the next pass, so the push is not starved). */
  maxPages?: number;
  /** Held by the caller across calls: the ids a full sweep has seen so far in this process. */
  memory: PullMemory;
}

export interface PullMemory {
  /** `owners`: the HighLevel owners with no paired Tandem user among the contacts it saw. */
  sweep?: { startedAt: number; ids: Set<string>; owners: Set<string> };
}

export interface PullResult {
  pages: number;
  contacts: number;
  /** Contacts whose application changed Tandem. */
  changed: number;
  /** The run reached its last page. */
  done: boolean;
  full: boolean;
  /** Links found deleted in HighLevel by the sweep. */
  deleted: number;
  unmatchedOwners: Set<string>;
  /**
   * Set when a full sweep this process saw from its first page completed: the unmatched owners of
   * every contact HighLevel holds, so the ones no contact names any more can be forgotten.
   */
  sweptOwners?: Set<string>;
}

/** Whether a pull is due: one is in progress, none ever ran, or its time has come. */
export function pullDue(db: Db, locationId: string, now: number): boolean {
  const state = getSyncState(db, locationId);
  return state.cursor.run !== null || state.nextPullAt === null || state.nextPullAt <= now;
}

/** Whether the next run should be a full sweep. */
export function sweepDue(db: Db, locationId: string, now: number, intervalMs = FULL_SWEEP_INTERVAL_MS): boolean {
  const state = getSyncState(db, locationId);
  return state.lastFullSweepAt === null || state.cursor.dateUpdated === null || state.lastFullSweepAt + intervalMs <= now;
}

function searchAfterOf(c: SearchedContact): Array<string | number> {
  return c.searchAfter?.length ? c.searchAfter : [c.dateUpdated ? Date.parse(c.dateUpdated) : 0, c.id];
}

/**
 * Runs (or resumes) a pull for one location. Throws what the API throws (DeferredError included);
 * everything applied before is checkpointed. `intervalMs` schedules the next pull once this one is done.
 */
export async function pull(deps: PullDeps, locationId: string, opts: { full?: boolean; intervalMs?: number } = {}): Promise<PullResult> {
  const { db, clock, api } = deps;
  const pageLimit = deps.pageLimit ?? PAGE_LIMIT;
  const state = getSyncState(db, locationId);
  let cursor: PullCursor = state.cursor;
  const full = cursor.run?.full ?? (opts.full === true || cursor.dateUpdated === null);
  // A run's lower bound is chosen when it starts and kept in it: a resumed run keeps its meaning.
  const startedAt = clock.now();
  const run = cursor.run ?? { full, from: full ? null : lowerBound(cursor, startedAt), searchAfter: null, startedAt };
  const result: PullResult = { pages: 0, contacts: 0, changed: 0, done: false, full, deleted: 0, unmatchedOwners: new Set() };
  // The sweep's seen ids count only if this process saw the run from its first page.
  if (full && run.searchAfter === null) deps.memory.sweep = { startedAt: run.startedAt, ids: new Set(), owners: new Set() };
  const sweep = full && deps.memory.sweep?.startedAt === run.startedAt ? deps.memory.sweep : undefined;

  const filters: SearchFilter[] | undefined =
    run.from === null ? undefined : [{ field: 'dateUpdated', operator: 'range', value: { gte: new Date(run.from).toISOString() } }];
  // The cursor instant's ids as a set while paging (a bulk import can put thousands in one millisecond).
  let at = cursor.dateUpdated;
  const seenAt = new Set(cursor.seenIds);
  const checkpoint = (patch: Parameters<typeof updateSyncState>[2] = {}) => {
    const now = clock.now();
    updateSyncState(db, locationId, { cursor: { dateUpdated: at, seenIds: [...seenAt], settledTo: cursor.settledTo, run }, ...patch, ...(result.changed || result.deleted ? { lastInboundAt: now } : {}) }, now);
  };

  const search = (searchAfter: Array<string | number> | null) =>
    api.searchContacts({ filters, sort: [{ field: 'dateUpdated', direction: 'asc' }], pageLimit, ...(searchAfter ? { searchAfter } : {}) });
  const morePages = () => deps.maxPages === undefined || result.pages < deps.maxPages;
  let next = morePages() ? search(run.searchAfter) : undefined;
  while (!result.done && next) {
    const page = await next;
    next = undefined;
    result.pages++;
    const last = page.contacts.at(-1);
    const searchAfter = last ? searchAfterOf(last) : run.searchAfter;
    const done = page.contacts.length < pageLimit;
    // The next page is asked for before this one is applied, so its round trip overlaps the apply.
    // Its failure (a deferral included) surfaces when it is awaited, after this page's checkpoint;
    // until then it is held, not unhandled.
    if (!done && morePages()) {
      next = search(searchAfter);
      next.catch(() => undefined);
    }
    // Applied a slice at a time, each slice in one transaction, with a turn of the event loop
    // before each (APPLY_SLICE), the first included: reading and checking a page of 500 takes 4–7 ms
    // of its own, which otherwise held the loop together with the first slice. The checkpoint is
    // still per page: a page interrupted between two slices is read again, and its records already
    // applied come back as unchanged.
    for (let from = 0; from < page.contacts.length; from += APPLY_SLICE) {
      await nextTurn();
      // Which records to apply depends only on the cursor, never on an outcome: the slice is sorted
      // out first, then applied in one transaction.
      const apply: RemoteContact[] = [];
      for (const doc of page.contacts.slice(from, from + APPLY_SLICE)) {
        sweep?.ids.add(doc.id);
        const remote = fromHighLevel(doc, deps.ownerMap, { complete: true });
        if (remote.unmatchedOwner) sweep?.owners.add(remote.unmatchedOwner);
        const updated = remote.dateUpdated;
        // An incremental run skips what it applied at the cursor's instant; a full sweep applies
        // every record, since what it is for may be Tandem's side (an owner paired since: the
        // catch-up sweep), and the newest records would otherwise never get it.
        if (run.full || !(updated !== undefined && updated === at && seenAt.has(doc.id))) {
          if (remote.unmatchedOwner) result.unmatchedOwners.add(remote.unmatchedOwner);
          apply.push(remote);
        }
        // The cursor moves forward only; ids are remembered for the latest instant alone.
        if (updated !== undefined && (at === null || updated > at)) {
          at = updated;
          seenAt.clear();
        }
        if (updated !== undefined && updated === at) seenAt.add(doc.id);
      }
      const outcomes = applyRemotePage({ db, now: clock.now(), settings: deps.settings, log: deps.log }, locationId, apply, { complete: true });
      result.contacts += outcomes.length;
      for (const outcome of outcomes) if (CHANGED_OUTCOMES.has(outcome)) result.changed++;
    }
    run.searchAfter = searchAfter;
    result.done = done;
    checkpoint();
  }
  if (result.done) {
    if (sweep) {
      result.deleted = await detectDeletions(deps, locationId, sweep);
      result.sweptOwners = sweep.owners;
    }
    cursor = { dateUpdated: at, seenIds: [...seenAt], settledTo: settledAfter(cursor.settledTo, run), run: null };
    const now = clock.now();
    updateSyncState(
      db,
      locationId,
      {
        cursor,
        nextPullAt: now + (opts.intervalMs ?? PULL_INTERVAL_MS),
        ...(full ? { lastFullSweepAt: run.startedAt } : {}),
        ...(result.deleted ? { lastInboundAt: now } : {}),
      },
      now,
    );
    if (sweep) deps.memory.sweep = undefined;
  }
  return result;
}

/**
 * A new incremental run's lower bound: the cursor, or settledTo when a run from there is due (a
 * settling run). Below the cursor, contacts are read again and applied again; the cursor's own
 * instant still skips the ids it has seen (they were applied, at that very version).
 */
function lowerBound(cursor: PullCursor, startedAt: number): number | null {
  const { dateUpdated, settledTo } = cursor;
  const settling = settledTo !== null && dateUpdated !== null && settledTo < dateUpdated && startedAt - SEARCH_SETTLE_MS - settledTo >= SETTLE_EVERY_MS;
  return settling ? settledTo : dateUpdated;
}

/**
 * settledTo once `run` has completed. It read everything updated from its lower bound to its start
 * minus SEARCH_SETTLE_MS from searches begun after that start: that span is settled. settledTo
 * moves up only when the span joins it (a full sweep, a settling run, a run from a cursor at or
 * below settledTo); a run above an unsettled gap settles nothing contiguous. Never backwards.
 */
function settledAfter(settledTo: number | null, run: NonNullable<PullCursor['run']>): number | null {
  const covered = run.startedAt - SEARCH_SETTLE_MS;
  if (run.from === null) return Math.max(settledTo ?? covered, covered);
  // A cursor stored before settledTo existed: what lies below the run's bound is taken as settled,
  // once. A contact search showed late then, below it, is left to the daily full sweep.
  if (settledTo === null) return Math.min(run.from, covered);
  return run.from <= settledTo ? Math.max(settledTo, covered) : settledTo;
}

/**
 * Live links the complete sweep did not see are read one by one: gone → archived and tombstoned;
 * still there (search lags behind writes) → applied like any other record.
 */
async function detectDeletions(deps: PullDeps, locationId: string, sweep: NonNullable<PullMemory['sweep']>): Promise<number> {
  const seen = sweep.ids;
  let deleted = 0;
  // The links a page at a time, a turn of the event loop between two pages (as APPLY_SLICE).
  for (let ids = liveRemoteIds(deps.db, locationId, { limit: LINKS_PAGE }); ids.length > 0; ) {
    for (const id of ids) {
      if (seen.has(id)) continue;
      const doc = await deps.api.getContact(id);
      const input = doc ? fromHighLevel(doc, deps.ownerMap, { complete: true }) : { deleted: id };
      if ('unmatchedOwner' in input && input.unmatchedOwner) sweep.owners.add(input.unmatchedOwner);
      const outcome = applyRemote({ db: deps.db, now: deps.clock.now(), settings: deps.settings, log: deps.log }, locationId, input, { complete: true });
      if (outcome === 'archived') deleted++;
      // A DeferredError above leaves the run open; the next call re-reads the last (empty) page and comes back here.
      seen.add(id);
    }
    await nextTurn();
    ids = liveRemoteIds(deps.db, locationId, { after: ids.at(-1)!, limit: LINKS_PAGE });
  }
  return deleted;
}

/**
 * Lets the event loop run what waits (requests; webhooks going into the inbox: acknowledged here
 * when Tandem runs in one thread, moved from the front's staged inbox under `npm start`) before
 * going on. Two hops: the webhooks taken during the turn schedule their inbox commit as an
 * immediate (server/installs/inbox-writer.ts); with one hop, this work's own immediate was queued
 * first and its next slice ran before that commit, so every one of them waited a slice longer.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
