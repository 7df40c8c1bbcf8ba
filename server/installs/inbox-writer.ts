// Group commit for the webhook inbox: events stored during one turn of the event loop are
// committed together in one transaction, right after that turn (a commit costs more than the
// insert itself), and each caller's promise settles only after the commit, so a webhook is still
// acknowledged only once its row is durable.
import type { Db } from '../../db/client.ts';
import { insertInboxEvent, insertInboxEvents, type NewInboxEvent } from '../../db/webhook-inbox.ts';

export interface InboxWriter {
  /** Resolves after the commit: true when newly stored, false for a redelivery; rejects when not stored. */
  store(event: NewInboxEvent): Promise<boolean>;
}

interface Waiting {
  event: NewInboxEvent;
  resolve(stored: boolean): void;
  reject(err: unknown): void;
}

/**
 * `wake` asks for the stored events to be applied (the inbox processor's schedule). It is called
 * when a batch opens, right after its commit is queued, so that a pass the processor queues then
 * (setImmediate) runs after the commit and after the acknowledgements are written, in the same
 * turn, as when each insert was committed in its request; and again after a commit that stored
 * something, in case a pass queued earlier ran before it.
 */
export function createInboxWriter(db: Db, wake: () => void): InboxWriter {
  let waiting: Waiting[] = [];

  function flush(): void {
    const batch = waiting;
    waiting = [];
    let results: (boolean | undefined)[];
    try {
      results = insertInboxEvents(db, batch.map((w) => w.event));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch {
      // One bad row must not cost the others their acknowledgement: each alone, in its own commit.
      results = batch.map((w) => {
        try {
          const stored = insertInboxEvent(db, w.event);
          w.resolve(stored);
          return stored;
        } catch (err) {
          w.reject(err);
          return undefined;
        }
      });
    }
    if (results.includes(true)) wake();
  }

  return {
    store(event) {
      return new Promise((resolve, reject) => {
        waiting.push({ event, resolve, reject });
        if (waiting.length > 1) return;
        // After the I/O of this turn: requests whose bodies arrived together share the commit.
        setImmediate(flush);
        wake();
      });
    },
  };
}
