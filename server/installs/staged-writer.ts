// The front thread's group commit into the staged inbox (db/staged-inbox.ts), as the app's inbox
// writer (inbox-writer.ts) does it for the inbox: the webhooks of one turn of the event loop share
// one commit, after which each is answered. The two threads share two numbers (a BigInt64Array over
// a SharedArrayBuffer): the last seq staged, which this writer publishes after each commit (waking
// the app thread's mover, server/app-thread.ts), and the last seq the mover has put into the inbox,
// up to which each commit deletes the staged rows.
import type { StagedInbox } from '../../db/staged-inbox.ts';
import type { NewInboxEvent } from '../../db/webhook-inbox.ts';

/** Slots of the shared array: the last staged seq (the front writes it), the last moved (the app writes it). */
export const STAGED = 0;
export const MOVED = 1;

export interface StagedWriter {
  /** Resolves after the commit: true when newly staged, false when already staged; rejects when not stored. */
  store(event: NewInboxEvent): Promise<boolean>;
  /** Waits for the commit in progress. */
  drain(): Promise<void>;
  close(): void;
}

/** `onError` hears a failed commit (its callers are rejected: the front answers them 429). */
export function createStagedWriter(staged: StagedInbox, seqs: BigInt64Array, onError: (err: unknown) => void): StagedWriter {
  let waiting: { event: NewInboxEvent; resolve(stored: boolean): void; reject(err: unknown): void }[] = [];
  let pruned = 0;
  let scheduled: Promise<void> | undefined;

  function flush(): void {
    scheduled = undefined;
    const batch = waiting;
    waiting = [];
    if (batch.length === 0) return;
    const moved = Number(Atomics.load(seqs, MOVED));
    try {
      const result = staged.stage(
        batch.map((w) => w.event),
        moved > pruned ? moved : 0,
      );
      if (moved > pruned) pruned = moved;
      batch.forEach((w, i) => w.resolve(result.stored[i]!));
      if (result.lastSeq > Number(Atomics.load(seqs, STAGED))) {
        Atomics.store(seqs, STAGED, BigInt(result.lastSeq));
        Atomics.notify(seqs, STAGED);
      }
    } catch (err) {
      onError(err);
      batch.forEach((w) => w.reject(err));
    }
  }

  return {
    store(event) {
      return new Promise((resolve, reject) => {
        waiting.push({ event, resolve, reject });
        scheduled ??= new Promise((done) =>
          setImmediate(() => {
            flush();
            done();
          }),
        );
      });
    },
    async drain() {
      await scheduled;
    },
    close() {
      flush();
    },
  };
}
