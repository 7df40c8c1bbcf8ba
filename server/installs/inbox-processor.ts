// Applies stored webhook events outside the request that received them: one pass right after each
// insert (next tick), plus a periodic sweep that picks up retries and whatever a crash left behind.
// Events are applied one at a time in the order they were received. A failed event is retried with
// exponential backoff (times from the injected clock) and recorded as failed after MAX_ATTEMPTS.
import type { Db } from '../../db/client.ts';
import { deferInboxEvent, dueInboxEvents, markInboxProcessed, markInboxRetry, pruneInboxEvents, queueInboxEvent, type InboxEvent } from '../../db/webhook-inbox.ts';
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
  /** Runs a pass soon (next tick); passes never overlap. */
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
}): InboxProcessor {
  const { db, clock, handle, log } = deps;
  let current: Promise<number> | undefined;
  let again = false;
  let closed = false;
  let immediate: NodeJS.Immediate | undefined;
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
      const batch = dueInboxEvents(db, clock.now(), 50);
      if (batch.length === 0) return handled;
      for (const event of batch) {
        if (closed) return handled;
        await apply(event);
        handled++;
      }
    }
  }

  async function apply(event: InboxEvent): Promise<void> {
    try {
      const result = await handle(event);
      if (result.outcome === 'deferred') deferInboxEvent(db, event.webhookId, `deferred: ${result.detail}`, result.retryAt);
      else if (result.outcome === 'queued') queueInboxEvent(db, event.webhookId);
      else markInboxProcessed(db, event.webhookId, `${result.outcome}: ${result.detail}`, clock.now());
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const attempts = event.attempts + 1;
      if (attempts >= MAX_ATTEMPTS) {
        log.error({ err, webhookId: event.webhookId, type: event.type, attempts }, 'webhook event failed for good');
        markInboxProcessed(db, event.webhookId, `failed: ${message}`, clock.now());
      } else {
        log.warn({ err, webhookId: event.webhookId, type: event.type, attempts }, 'webhook event failed; will retry');
        markInboxRetry(db, event.webhookId, `failed: ${message}`, clock.now() + retryDelayMs(attempts));
      }
    }
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
        if (again && !closed) {
          again = false;
          void runOnce();
        }
      });
    return current;
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
    schedule() {
      if (closed || immediate) return;
      immediate = setImmediate(() => {
        immediate = undefined;
        void runOnce();
      });
    },
    runOnce,
    async close() {
      closed = true;
      if (sweep) clearInterval(sweep);
      if (immediate) clearImmediate(immediate);
      immediate = undefined;
      await current;
    },
  };
}
