// Applies stored webhook events outside the request that received them: one pass on the next tick
// after a burst of inserts (however many; under a steady stream, at most one pass every
// PASS_GAP_MS), plus a periodic sweep that picks up retries and whatever a crash left behind.
// Events are handled one at a time in the order they were received; their outcomes are written
// together, one transaction per run of handlers that finished without waiting on I/O (at
// most EVENTS_PER_TURN: the pass then lets other work, such as webhook requests, run). A
// failed event is retried with exponential backoff (times from the injected clock) and recorded as
// failed after MAX_ATTEMPTS.
import type { Db } from '../../db/client.ts';
import { dueInboxEvents, pruneInboxEvents, recordInboxOutcomes, type InboxEvent, type InboxOutcomeWrite } from '../../db/webhook-inbox.ts';
import type { Clock } from '../clock.ts';
import type { FastifyBaseLogger as Logger } from 'fastify';

export type EventOutcome =
  | {
      outcome: 'applied' | 'ignored';
      /** Why, in plain words, for operators reading the inbox. */
      detail: string;
    }
  /** Not yet decidable (e.g. waiting for the OAuth callback): look again at `retryAt` (clock ms). */
  | { outcome: 'deferred'; detail: string; retryAt: number }
  /** Handed to another worker (a location's sync loop), which marks it processed when applied. */
  | { outcome: 'queued'; detail: string };

export type EventHandler = (event: InboxEvent) => Promise<EventOutcome>;

export interface InboxProcessor {
  /** Runs a pass soon (next tick, or PASS_GAP_MS after the last one); passes never overlap. */
  schedule(): void;
  /** Runs a pass now and resolves when it ends (tests, the sweep). Returns how many events it handled. */
  runOnce(): Promise<number>;
  close(): Promise<void>;
}

export const MAX_ATTEMPTS = 8;
/**
 * Processed events are kept this long, for operators and for deduplication: HighLevel redelivers
 * an event (same webhookId) for about 70 minutes at most, so a week is ample.
 */
export const INBOX_RETENTION_MS = 7 * 24 * 60 * 60_000;
const PRUNE_EVERY_MS = 60 * 60_000;
const FIRST_RETRY_MS = 30_000;
const MAX_RETRY_MS = 60 * 60_000;
/** Events read (and their outcomes written) per transaction. */
const BATCH = 100;
/**
 * Events handled between two turns of the event loop: a backlog applied in one go would hold back
 * the webhooks arriving meanwhile (their acknowledgement waits for the loop), so the pass lets
 * them in this often. A count, not a time: the pass must behave the same under a manual clock.
 */
const EVENTS_PER_TURN = 16;
/**
 * Real-time gap kept after a pass before the next one that a stored event asks for. Under a stream
 * of webhooks, a pass per turn of the event loop read and committed one or two events at a time:
 * about two more commits per webhook on the thread that acknowledges them. Waiting a few
 * milliseconds lets one pass take them together; a lone event after a quiet spell still runs on
 * the next tick.
 */
const PASS_GAP_MS = 5;
/**
 * Loses a Promise.race to a handler's promise that is already settled (an async handler that
 * returned without awaiting), and wins against one still waiting.
 */
const NOT_SETTLED: unique symbol = Symbol('not settled');

/** 30 s, 1 min, 2 min, ... capped at one hour. */
export function retryDelayMs(attempts: number): number {
  return Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1));
}

export function createInboxProcessor(deps: {
  db: Db;
  clock: Clock;
  handle: EventHandler;
  log: Logger;
  /** Real-time interval of the sweep; 0 disables it (tests drive runOnce). */
  sweepIntervalMs?: number;
  /** Gap between passes under a stream of events (default PASS_GAP_MS; tests widen it). */
  passGapMs?: number;
}): InboxProcessor {
  const { db, clock, handle, log } = deps;
  const passGapMs = deps.passGapMs ?? PASS_GAP_MS;
  let current: Promise<number> | undefined;
  let again = false;
  let closed = false;
  let immediate: NodeJS.Immediate | undefined;
  let delayed: NodeJS.Timeout | undefined;
  /** performance.now() when the last pass ended: real time, as it paces work and decides nothing. */
  let lastPassEnded = Number.NEGATIVE_INFINITY;
  let prunedAt = Number.NEGATIVE_INFINITY;

  async function pass(): Promise<number> {
    let handled = 0;
    const now = clock.now();
    if (now - prunedAt >= PRUNE_EVERY_MS) {
      prunedAt = now;
      const pruned = pruneInboxEvents(db, now - INBOX_RETENTION_MS);
      if (pruned) log.info({ pruned }, 'webhook inbox: old processed events deleted');
    }
    // Re-read after each batch: events stored meanwhile join this pass instead of waiting.
    for (;;) {
      if (closed) return handled;
      const batch = dueInboxEvents(db, clock.now(), BATCH);
      if (batch.length === 0) return handled;
      // A short batch was all that was due; whatever is stored meanwhile calls schedule(), which
      // runs another pass (`again`), so no empty read is needed to end this one.
      const last = batch.length < BATCH;
      const writes: InboxOutcomeWrite[] = [];
      try {
        for (const event of batch) {
          if (closed) break;
          let pending: Promise<EventOutcome>;
          try {
            pending = handle(event);
          } catch (err) {
            pending = Promise.reject(err);
          }
          let result: EventOutcome | typeof NOT_SETTLED | undefined;
          let failure: { err: unknown } | undefined;
          try {
            result = await Promise.race<EventOutcome | typeof NOT_SETTLED>([pending, NOT_SETTLED]);
          } catch (err) {
            failure = { err };
          }
          if (result === NOT_SETTLED) {
            // The handler waits on I/O (an INSTALL's token exchange) and lets other work run, such
            // as a sync loop woken by an earlier event of this batch: what is decided so far is
            // written first, so that work sees it (e.g. a queued contact event).
            recordInboxOutcomes(db, writes.splice(0));
            try {
              result = await pending;
            } catch (err) {
              failure = { err };
            }
          }
          writes.push(failure || result === undefined || result === NOT_SETTLED ? failureWrite(event, failure?.err) : outcomeWrite(event, result));
          handled++;
          if (handled % EVENTS_PER_TURN === 0) {
            // Written before yielding, as before any wait: what runs meanwhile (a sync loop woken
            // by one of these events) must see the outcomes, such as a queued contact event.
            recordInboxOutcomes(db, writes.splice(0));
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        }
      } finally {
        // No await between here and the commit: better-sqlite3 transactions are synchronous.
        recordInboxOutcomes(db, writes);
      }
      if (last) return handled;
    }
  }

  function outcomeWrite({ webhookId }: InboxEvent, result: EventOutcome): InboxOutcomeWrite {
    if (result.outcome === 'deferred') return { webhookId, kind: 'deferred', outcome: `deferred: ${result.detail}`, nextAttemptAt: result.retryAt };
    if (result.outcome === 'queued') return { webhookId, kind: 'queued' };
    return { webhookId, kind: 'processed', outcome: `${result.outcome}: ${result.detail}`, now: clock.now() };
  }

  function failureWrite(event: InboxEvent, err: unknown): InboxOutcomeWrite {
    const { webhookId } = event;
    const message = err instanceof Error ? err.message : String(err);
    const attempts = event.attempts + 1;
    if (attempts >= MAX_ATTEMPTS) {
      log.error({ err, webhookId, type: event.type, attempts }, 'webhook event failed for good');
      return { webhookId, kind: 'processed', outcome: `failed: ${message}`, now: clock.now() };
    }
    log.warn({ err, webhookId, type: event.type, attempts }, 'webhook event failed; will retry');
    return { webhookId, kind: 'retry', outcome: `failed: ${message}`, nextAttemptAt: clock.now() + retryDelayMs(attempts) };
  }

  function runOnce(): Promise<number> {
    if (current) {
      // A pass is running: run another right after it, so nothing stored meanwhile waits a sweep.
      again = true;
      return current.then(() => (current ? current : runOnce()));
    }
    current = pass()
      .catch((err: unknown) => {
        // Only the database can fail here (handler errors are caught per event); the sweep retries.
        log.error({ err }, 'webhook inbox pass failed');
        return 0;
      })
      .finally(() => {
        current = undefined;
        lastPassEnded = performance.now();
        if (again && !closed) {
          again = false;
          schedule();
        }
      });
    return current;
  }

  function schedule(): void {
    if (closed || immediate || delayed) return;
    // A pass is running: it re-reads the inbox until empty, and `again` covers an insert landing
    // after its last read. One flag, not one pass (or promise) per stored event.
    if (current) {
      again = true;
      return;
    }
    const wait = lastPassEnded + passGapMs - performance.now();
    if (wait > 0) {
      delayed = setTimeout(() => {
        delayed = undefined;
        void runOnce();
      }, wait);
      return;
    }
    // Next tick, so a contact event is queued for its loop as soon as it is stored; events stored
    // during the pass that follows join it or the one `again` schedules after it.
    immediate = setImmediate(() => {
      immediate = undefined;
      void runOnce();
    });
  }

  const sweepMs = deps.sweepIntervalMs ?? 15_000;
  const sweep = sweepMs > 0 ? setInterval(() => void runOnce(), sweepMs) : undefined;
  sweep?.unref();
  // Events left by a previous run (crash after the 200) are applied at start.
  immediate = setImmediate(() => {
    immediate = undefined;
    void runOnce();
  });

  return {
    schedule,
    runOnce,
    async close() {
      closed = true;
      if (sweep) clearInterval(sweep);
      if (immediate) clearImmediate(immediate);
      if (delayed) clearTimeout(delayed);
      immediate = undefined;
      delayed = undefined;
      await current;
    },
  };
}
