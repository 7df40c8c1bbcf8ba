// Group commit for the webhook inbox: events stored during one turn of the event loop are
// committed together in one transaction, right after that turn (a commit costs more than the
// insert itself), and each caller's promise settles only after the commit, so a webhook is still
// acknowledged only once its row is durable.
// A contact event of an installed location is stored already queued for its location's sync loop
// (what the inbox processor would decide for it, server/installs/apply-event.ts): under a stream of
// webhooks, a processor pass per event read each row back and wrote it again, on the thread that
// acknowledges the next ones. Every other event waits for the processor.
import type { Db } from '../../db/client.ts';
import { transaction } from '../../db/prepared.ts';
import { insertInboxEvent, type NewInboxEvent } from '../../db/webhook-inbox.ts';

export interface InboxWriter {
  /** Resolves after the commit: true when newly stored, false for a redelivery; rejects when not stored. */
  store(event: NewInboxEvent): Promise<boolean>;
}

export interface InboxWriterHooks {
  /** New events for the inbox processor were committed: run its pass. */
  wake(): void;
  /**
   * Whether the event goes straight to its location's sync loop; asked inside the transaction
   * that stores it, so the answer and the row agree (e.g. with an uninstall applied just before).
   */
  forLoop?(event: NewInboxEvent): boolean;
  /** Events newly queued for these locations' loops were committed: run their passes. */
  wakeLoops?(locationIds: ReadonlySet<string>): void;
}

interface Waiting {
  event: NewInboxEvent;
  resolve(stored: boolean): void;
  reject(err: unknown): void;
}

export function createInboxWriter(db: Db, hooks: InboxWriterHooks): InboxWriter {
  let waiting: Waiting[] = [];

  function routed(event: NewInboxEvent): NewInboxEvent {
    return hooks.forLoop?.(event) ? { ...event, queued: true } : event;
  }

  function flush(): void {
    const batch = waiting;
    waiting = [];
    const events: (NewInboxEvent | undefined)[] = new Array(batch.length);
    const store = (w: Waiting, i: number) => insertInboxEvent(db, (events[i] = routed(w.event)));
    let results: (boolean | undefined)[];
    try {
      results = transaction(db, () => batch.map(store));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch {
      // One bad row must not cost the others their acknowledgement: each alone, in its own commit.
      results = batch.map((w, i) => {
        try {
          const stored = transaction(db, () => store(w, i));
          w.resolve(stored);
          return stored;
        } catch (err) {
          w.reject(err);
          return undefined;
        }
      });
    }
    const loops = new Set<string>();
    let forProcessor = false;
    events.forEach((event, i) => {
      if (results[i] !== true || !event) return;
      if (event.queued && event.locationId) loops.add(event.locationId);
      else forProcessor = true;
    });
    if (forProcessor) hooks.wake();
    if (loops.size > 0) hooks.wakeLoops?.(loops);
  }

  return {
    store(event) {
      return new Promise((resolve, reject) => {
        waiting.push({ event, resolve, reject });
        // After the I/O of this turn: requests whose bodies arrived together share the commit.
        if (waiting.length === 1) setImmediate(flush);
      });
    },
  };
}
