// The one-time operations runner: the lifecycle every operation shares, whatever it does.
//   preview   a row in 'previewing'; the handler reads (never writes) and the preview is stored;
//             'previewed' waits for the admin, PREVIEW_TTL_MS at most (then it is discarded).
//   confirm   'running': this process claims the lease and runs the handler from its checkpoint.
//   progress  kept in memory, persisted and pushed to subscribers (the panel's SSE) a few times a
//             second; counts come from the recorded items, so a resumed run never counts twice.
//   cancel    a preview is discarded at once; a run stops at its next `step()` → 'cancelled'.
//   replace   a new preview discards the location's unconfirmed one (another tab, another admin):
//             its work stops and its watchers are told at once, with why, in plain words.
//   resume    at start and every SWEEP_MS: runs nobody holds (their process died, or a lease
//             expired) are claimed and continued from their checkpoint (T16).
// One unfinished operation per location (the database's partial unique index). HighLevel calls go
// through the location's own budget gate, leaving a share of every window to the continuous loop,
// and budget deferrals are waited out here (interrupted by cancel or stop). What a running handler
// is given (lease, checkpoint, steps, items) is built in run-context.ts.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../../db/client.ts';
import {
  claimOperation, createOperation, getOperation, getOperationById, orphanedRuns, stalePreviews, stalledPreviews, updateOperation, type OperationRow,
} from '../../../db/operations.ts';
import type { OperationKind } from '../../../db/schema.ts';
import { getInstallation } from '../../../db/installations.ts';
import { getSyncSettings } from '../../../db/sync-settings.ts';
import type { Clock } from '../../clock.ts';
import type { DeferredError } from '../../highlevel/contacts.ts';
import { HighLevelError } from '../../highlevel/http.ts';
import { describeRunError, describeWait, waitReason } from '../describe-error.ts';
import { REAUTH_REASON } from '../../highlevel/token-provider.ts';
import type { Supervisor } from '../supervisor.ts';
import { patientApi, retryProgress } from './patient-api.ts';
import { progressTracker, type ProgressTracker } from './progress.ts';
import { leaseKeeper, runContext } from './run-context.ts';
import { reasonsOf, tallyItems } from './summary.ts';
import { OperationCancelled, RunStopped, SimulatedCrash, emptyCounts, type BaseContext, type OperationHandler, type Preview, type Progress } from './types.ts';

export const PREVIEW_TTL_MS = 15 * 60_000;

/**
 * When an unconfirmed preview is discarded: PREVIEW_TTL_MS after it was ready, or after it was
 * opened while it is still being read (the reading may wait on HighLevel; time to confirm it is
 * not taken by that wait).
 */
export function previewExpiresAt(row: Pick<OperationRow, 'createdAt' | 'previewedAt'>, ttlMs = PREVIEW_TTL_MS): number {
  return (row.previewedAt ?? row.createdAt) + ttlMs;
}
export const UNDO_WINDOW_MS = 7 * 24 * 60 * 60_000;
const LEASE_MS = 60_000;
const SWEEP_MS = 30_000;
/** Share of every burst window left to the continuous loop while an operation runs. */
const KEEP_SHARE = 0.25;

/** Why an operation cannot start or change now; the route turns `code` into an HTTP status. */
export class OperationRefused extends Error {
  override readonly name = 'OperationRefused';
  constructor(
    readonly code: 'busy' | 'not_found' | 'not_undoable' | 'expired' | 'wrong_state',
    message: string,
  ) {
    super(message);
  }
}

export interface OperationsOptions {
  leaseMs?: number;
  previewTtlMs?: number;
  /** Real ms between sweeps for orphaned runs and stale previews; 0 disables (tests call `sweep`). */
  sweepMs?: number;
  keepShare?: number;
  /** This process's lease owner id (default random). */
  processId?: string;
  /** Tests (T16): crash the run when it reaches the named point. */
  crashAt?: (operation: OperationRow, point: string) => boolean;
  /** Tests of the lifecycle itself: handlers of their own in place of the registered ones. */
  handlers?: Partial<Record<OperationKind, OperationHandler>>;
}

export interface OperationsDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  sync: Pick<Supervisor, 'backgroundApi' | 'wake'>;
  handlers: Partial<Record<OperationKind, OperationHandler>>;
  options?: OperationsOptions;
}

export interface Requester {
  locationId: string;
  userId: string;
  userName?: string | null;
}

export interface Operations {
  start(): void;
  stop(): Promise<void>;
  /** Starts a preview (replacing an unconfirmed one); refused while a run is in progress. */
  preview(by: Requester, kind: OperationKind, undoOf?: string): OperationRow;
  /** Starts the previewed run. */
  confirm(locationId: string, id: string): OperationRow;
  /** Discards a preview, or asks a run to stop at its next record. */
  cancel(locationId: string, id: string): OperationRow;
  get(locationId: string, id: string): OperationRow | undefined;
  /** Calls `listener` with the row after every persisted change; returns the unsubscribe. */
  subscribe(id: string, listener: (row: OperationRow) => void): () => void;
  /** Resolves when the operation rests: previewed, or finished (tests and the CLI wait on this). */
  settled(id: string): Promise<OperationRow>;
  /** Claims and continues runs nobody holds; discards stale previews. */
  sweep(): Promise<void>;
  /** A completed push or pull of the last 7 days not undone yet may be undone. */
  undoable(row: OperationRow): boolean;
}

const KIND_NAMES: Record<OperationKind, string> = { push: 'Push contacts', pull: 'Pull contacts', sync_users: 'Sync users', undo: 'Undo' };

const FINISHED = new Set(['completed', 'cancelled', 'failed', 'discarded']);

export function createOperations(deps: OperationsDeps): Operations {
  const { db, clock, log } = deps;
  const o = deps.options ?? {};
  const leaseMs = o.leaseMs ?? LEASE_MS;
  const processId = o.processId ?? randomUUID();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  /** Work this process is doing now, by operation id. */
  const active = new Map<string, { cancel: boolean; done: Promise<void> }>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  function emit(row: OperationRow | undefined): OperationRow | undefined {
    if (row) events.emit(row.id, row);
    return row;
  }

  function handlerFor(kind: OperationKind): OperationHandler {
    const h = (o.handlers ?? deps.handlers)[kind];
    if (!h) throw new OperationRefused('not_found', `This version of Tandem does not offer ${KIND_NAMES[kind]} yet.`);
    return h;
  }

  function interrupted(id: string): boolean {
    return stopped || active.get(id)?.cancel === true;
  }

  function baseContext(row: OperationRow, tracker: ProgressTracker, heartbeat?: () => void): BaseContext {
    const { api, rate } = patientApi(
      {
        sync: deps.sync,
        clock,
        keepShare: o.keepShare ?? KEEP_SHARE,
        interrupted: () => interrupted(row.id),
        ...(heartbeat ? { heartbeat } : {}),
        // The panel says why nothing moves (e.g. the daily limit is used up) and until when. A 429
        // was a request HighLevel answered: it counts, so a run held up at once does not show none.
        waiting: (err) => tracker.update({ ...waitingProgress(err), ...(err?.cause instanceof HighLevelError ? { requests: tracker.get().requests + 1 } : {}) }, true),
        gone: () => goneReason(getInstallation(db, row.locationId)?.status),
        // And while a call waits out HighLevel failing (a blip), that it retries, and when.
        retrying: (wait) => tracker.update(retryProgress(wait), true),
      },
      row.locationId,
      () => tracker.update({ requests: tracker.get().requests + 1 }),
    );
    return { db, clock, log, locationId: row.locationId, operation: row, settings: getSyncSettings(db, row.locationId), api, rate };
  }

  // ---- preview ----------------------------------------------------------------------------------

  function startPreview(row: OperationRow): void {
    const entry = { cancel: false, done: Promise.resolve() };
    active.set(row.id, entry);
    const tracker = progressTracker({ db, clock, emit }, row, { phase: 'preview', total: null, done: 0, counts: emptyCounts(), requests: 0, etaMs: null });
    const ctx = { ...baseContext(row, tracker), progress: (p: Partial<Progress>) => tracker.update(p) };
    entry.done = (async () => {
      try {
        const preview: Preview = await handlerFor(row.kind).preview(ctx);
        // A paused sync does not hold a confirmed run back: the dialog says so before the admin confirms.
        if (ctx.settings.paused) preview.syncPaused = true;
        const now = clock.now();
        emit(updateOperation(db, row.id, { status: 'previewed', previewedAt: now, preview: JSON.stringify(preview), progress: null }, now, ['previewing']));
      } catch (err) {
        if (err instanceof OperationCancelled) return;
        log.warn({ err, operationId: row.id }, 'operation preview failed');
        const now = clock.now();
        emit(updateOperation(db, row.id, { status: 'failed', error: describeOperationError(err), finishedAt: now }, now, ['previewing']));
      } finally {
        tracker.stop();
        active.delete(row.id);
      }
    })();
  }

  // ---- run ----------------------------------------------------------------------------------------

  function execute(row: OperationRow): void {
    if (stopped || active.has(row.id)) return;
    const now = clock.now();
    const claimed = claimOperation(db, row.id, processId, now, now + leaseMs);
    if (!claimed) return;
    const entry = { cancel: claimed.cancelRequestedAt !== null, done: Promise.resolve() };
    active.set(row.id, entry);
    entry.done = run(claimed).finally(() => active.delete(row.id));
  }

  async function run(row: OperationRow): Promise<void> {
    const saved = row.progress ? (JSON.parse(row.progress) as Progress) : null;
    const previewed = row.preview ? (JSON.parse(row.preview) as Preview) : null;
    const plan = previewed && previewed.requests > 0 ? { requests: previewed.requests, msPerRequest: previewed.durationMs / previewed.requests } : undefined;
    // Counts are what the recorded items say (a resumed run's earlier records included).
    const tally = tallyItems(db, row.id);
    const tracker = progressTracker({ db, clock, emit }, row, {
      phase: saved?.phase ?? 'starting',
      total: saved?.total ?? null,
      done: saved?.done ?? 0,
      counts: tally.counts,
      users: tally.users,
      requests: saved?.requests ?? 0,
      etaMs: null,
    }, plan);
    const contextDeps = { db, clock, processId, leaseMs, interrupted: () => interrupted(row.id), crashAt: o.crashAt, emit };
    const heartbeat = leaseKeeper(contextDeps, row);
    const ctx = runContext(contextDeps, row, baseContext(row, tracker, heartbeat), tracker, heartbeat);

    try {
      await handlerFor(row.kind).run(ctx);
      tracker.stop();
      finish(row, 'completed', tracker);
    } catch (err) {
      tracker.stop();
      if (err instanceof SimulatedCrash) {
        // As if the process died here: the lease stays until it expires; a sweep resumes the run.
        log.warn({ operationId: row.id, point: err.point }, 'operation run stopped (simulated crash or lease lost)');
        return;
      }
      if (err instanceof OperationCancelled) {
        if (stopped) return releaseLease(row, tracker);
        finish(row, 'cancelled', tracker);
        return;
      }
      log.warn({ err, operationId: row.id }, 'operation run failed');
      finish(row, 'failed', tracker, describeOperationError(err));
    }
  }

  function releaseLease(row: OperationRow, tracker: ProgressTracker): void {
    tracker.flush();
    updateOperation(db, row.id, { leaseOwner: null, leaseUntil: null }, clock.now(), ['running']);
  }

  function finish(row: OperationRow, status: 'completed' | 'cancelled' | 'failed', tracker: ProgressTracker, error?: string): void {
    const now = clock.now();
    const tally = tallyItems(db, row.id);
    const final: Progress = { ...tracker.get(), phase: status, counts: tally.counts, users: tally.users, etaMs: 0, reasons: reasonsOf(db, row.id) };
    const done = updateOperation(
      db,
      row.id,
      { status, finishedAt: now, progress: JSON.stringify(final), error: error ?? null, leaseOwner: null, leaseUntil: null },
      now,
      ['running'],
    );
    if (done && status === 'completed' && row.kind === 'undo' && row.undoOf) {
      emit(updateOperation(db, row.undoOf, { undoneBy: row.id }, now));
    }
    emit(done);
    // Operations write contacts and ledgers: let the loop look at the location again.
    deps.sync.wake(row.locationId);
  }

  // ---- public -------------------------------------------------------------------------------------

  function undoable(row: OperationRow): boolean {
    return (
      (row.kind === 'push' || row.kind === 'pull') &&
      // A run that failed partway wrote what it wrote before failing: as undoable as a cancelled one.
      (row.status === 'completed' || row.status === 'cancelled' || row.status === 'failed') &&
      row.undoneBy === null &&
      row.finishedAt !== null &&
      clock.now() - row.finishedAt <= UNDO_WINDOW_MS &&
      wroteSomething(row)
    );
  }

  /** A run that created or updated nothing has nothing to take back. */
  function wroteSomething(row: OperationRow): boolean {
    const counts = row.progress ? (JSON.parse(row.progress) as Progress).counts : tallyItems(db, row.id).counts;
    return Object.values(counts).some((side) => side.created + side.updated > 0);
  }

  async function sweep(): Promise<void> {
    const now = clock.now();
    // A preview no process is reading any more (Tandem stopped during it): its row would say
    // "previewing" until it went out of date; the admin is told now, and can preview again.
    for (const row of stalledPreviews(db, now - leaseMs)) {
      if (!active.has(row.id)) emit(updateOperation(db, row.id, { status: 'discarded', finishedAt: now, error: INTERRUPTED, progress: null }, now, ['previewing']));
    }
    for (const row of stalePreviews(db, now - (o.previewTtlMs ?? PREVIEW_TTL_MS))) {
      if (row.status === 'previewing' && active.has(row.id)) active.get(row.id)!.cancel = true;
      emit(updateOperation(db, row.id, { status: 'discarded', finishedAt: now, error: OUT_OF_DATE }, now, ['previewing', 'previewed']));
    }
    for (const row of orphanedRuns(db, now)) execute(row);
  }

  function arm(): void {
    const every = o.sweepMs ?? SWEEP_MS;
    if (stopped || every <= 0) return;
    timer = setTimeout(() => {
      void sweep().catch((err: unknown) => log.error({ err }, 'operations sweep failed')).finally(arm);
    }, every);
    timer.unref();
  }

  return {
    start() {
      void sweep().catch((err: unknown) => log.error({ err }, 'operations sweep failed'));
      arm();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await Promise.allSettled([...active.values()].map((a) => a.done));
    },
    preview(by, kind, undoOf) {
      // Refused before any row exists: an operation this build does not offer is not started.
      handlerFor(kind);
      if (kind === 'undo') {
        const target = undoOf ? getOperation(db, by.locationId, undoOf) : undefined;
        if (!target) throw new OperationRefused('not_found', 'There is no such run to undo.');
        if (!undoable(target)) {
          throw new OperationRefused('not_undoable', 'Only push and pull runs of the last 7 days that changed something and were not undone already can be undone.');
        }
      }
      const now = clock.now();
      let created: ReturnType<typeof createOperation>;
      try {
        created = createOperation(db, {
          locationId: by.locationId, kind, undoOf: kind === 'undo' ? undoOf : null, requestedBy: by.userId, requestedByName: by.userName ?? null, now,
          whyReplaced: (old) => replacedBy(old, by, kind),
        });
      } catch (err) {
        if (err instanceof Error && err.name === 'OperationBusyError') {
          throw new OperationRefused('busy', 'Another one-time operation is running in this sub-account; wait for it to finish or cancel it.');
        }
        throw err;
      }
      const { row, replaced } = created;
      if (replaced) {
        // The replaced preview stops reading HighLevel at its next request, and its dialog (another
        // tab, another admin) hears at once why: left alone it read on for nothing, and its dialog
        // waited forever or offered a Confirm that could only be refused.
        const entry = active.get(replaced.id);
        if (entry) entry.cancel = true;
        emit(replaced);
      }
      emit(row);
      startPreview(row);
      return row;
    },
    confirm(locationId, id) {
      const row = getOperation(db, locationId, id);
      if (!row) throw new OperationRefused('not_found', 'There is no such operation.');
      if (row.status !== 'previewed') throw new OperationRefused('wrong_state', notConfirmable(row));
      const now = clock.now();
      if (row.previewedAt !== null && now > previewExpiresAt(row, o.previewTtlMs)) {
        emit(updateOperation(db, id, { status: 'discarded', finishedAt: now, error: OUT_OF_DATE }, now, ['previewed']));
        throw new OperationRefused('expired', OUT_OF_DATE);
      }
      const started = updateOperation(db, id, { status: 'running', confirmedAt: now, progress: null }, now, ['previewed']);
      if (!started) throw new OperationRefused('wrong_state', 'This operation changed meanwhile; preview again.');
      emit(started);
      execute(started);
      return getOperation(db, locationId, id) ?? started;
    },
    cancel(locationId, id) {
      const row = getOperation(db, locationId, id);
      if (!row) throw new OperationRefused('not_found', 'There is no such operation.');
      const now = clock.now();
      if (row.status === 'previewing' || row.status === 'previewed') {
        const entry = active.get(id);
        if (entry) entry.cancel = true;
        return emit(updateOperation(db, id, { status: 'discarded', finishedAt: now }, now, ['previewing', 'previewed'])) ?? getOperation(db, locationId, id)!;
      }
      if (row.status !== 'running') throw new OperationRefused('wrong_state', row.status === 'discarded' ? 'This preview was closed already.' : 'This operation has finished already.');
      const entry = active.get(id);
      if (entry) entry.cancel = true;
      const updated = emit(updateOperation(db, id, { cancelRequestedAt: row.cancelRequestedAt ?? now }, now, ['running']));
      // A run no process holds right now (its process died) is finished here.
      if (!entry && (row.leaseUntil === null || row.leaseUntil < now)) {
        const tally = tallyItems(db, id);
        const saved = row.progress ? (JSON.parse(row.progress) as Progress) : null;
        const final: Progress = {
          phase: 'cancelled', total: saved?.total ?? null, done: saved?.done ?? 0, requests: saved?.requests ?? 0, counts: tally.counts, users: tally.users, etaMs: 0, reasons: reasonsOf(db, id),
        };
        return emit(updateOperation(db, id, { status: 'cancelled', finishedAt: now, progress: JSON.stringify(final) }, now, ['running'])) ?? row;
      }
      return updated ?? row;
    },
    get: (locationId, id) => getOperation(db, locationId, id),
    subscribe(id, listener) {
      events.on(id, listener);
      return () => events.off(id, listener);
    },
    settled(id) {
      return new Promise((resolve) => {
        const check = (row: OperationRow) => {
          if (row.status === 'previewed' || FINISHED.has(row.status)) {
            events.off(id, check);
            resolve(row);
          }
        };
        events.on(id, check);
        const row = getOperationById(db, id);
        if (row) check(row);
      });
    },
    sweep,
    undoable,
  };
}


/** A preview left unconfirmed past its time: why it can no longer be confirmed. */
const OUT_OF_DATE = 'This preview is out of date; preview again to see what a run would do now.';
const INTERRUPTED = 'This preview stopped when Tandem restarted; preview again.';

const PREVIEW_OF: Record<OperationKind, string> = { push: 'Push contacts', pull: 'Pull contacts', sync_users: 'Sync users', undo: 'an undo' };

/**
 * Why a preview was replaced by `by`'s new preview of `kind`, for the dialog still showing it: who
 * opened which (the same admin: most likely in another tab), and that one preview is open at a time.
 */
function replacedBy(old: OperationRow, by: Requester, kind: OperationKind): string {
  const who = old.requestedBy === by.userId ? 'you opened in another tab or window' : `${by.userName || 'another admin'} opened`;
  return `A newer preview of ${PREVIEW_OF[kind]}, which ${who}, replaced this one: a sub-account has one preview open at a time. Nothing was changed.`;
}

/** Why `row` cannot be confirmed (it is not a preview waiting for confirmation), in plain words. */
function notConfirmable(row: OperationRow): string {
  switch (row.status) {
    case 'previewing':
      return 'This preview is still being read; confirm once it shows what the run will do.';
    case 'running':
      return 'This operation has started already.';
    case 'discarded':
      return row.error ?? 'This preview was closed; preview again to see what a run would do now.';
    case 'failed':
      return row.previewedAt === null ? 'This preview could not be made; preview again.' : 'This operation has finished already.';
    default:
      return 'This operation has finished already.';
  }
}

/** Why a location can no longer be worked on (a run waiting for HighLevel stops then), or null. */
function goneReason(status: string | undefined): string | null {
  if (status === undefined || status === 'uninstalled') return 'Tandem was uninstalled from this sub-account, so the operation stopped.';
  if (status === 'needs_reauth') return `${REAUTH_REASON.revoked} Reconnect Tandem, then run the operation again.`;
  return null;
}

/**
 * Why a run waits, for the panel (null fields once it moves again): in words, and as data (the
 * reason and when the run goes on), so the panel can say it in its own words and the viewer's time
 * zone rather than the words' UTC.
 */
function waitingProgress(err: DeferredError | null): Pick<Progress, 'waiting' | 'waitingFor' | 'waitingUntil'> {
  if (!err) return { waiting: null, waitingFor: null, waitingUntil: null };
  const reason = waitReason(err);
  return { waiting: describeWait(err), waitingFor: reason === 'burst' ? 'rate_limited' : reason, waitingUntil: new Date(err.retryAt).toISOString() };
}

/** Plain words for the panel; never a token or a request body. */
export function describeOperationError(err: unknown): string {
  if (err instanceof RunStopped) return err.message;
  return describeRunError(err);
}
