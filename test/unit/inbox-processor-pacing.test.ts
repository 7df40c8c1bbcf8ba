// The inbox processor's pacing (server/installs/inbox-processor.ts) against a real (in-memory)
// SQLite: an event stored right after a pass waits for the gap and is then handled together with
// the others stored meanwhile (one pass for a stream, not one per turn), while an event stored after
// a quiet spell is handled on the next tick. Real time, as the pacing is: bounds only, no sleeps.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.ts';
import { insertInboxEvent, listInboxEvents } from '../../db/webhook-inbox.ts';
import { createInboxProcessor, type InboxProcessor } from '../../server/installs/inbox-processor.ts';
import { until } from '../helpers/emulator.ts';
import { memoryDatabase } from '../helpers/database.ts';

let database: Database;
let processor: InboxProcessor | undefined;
beforeEach(() => {
  database = memoryDatabase();
});
afterEach(async () => {
  await processor?.close();
  processor = undefined;
  database.close();
});

const GAP_MS = 200;

describe('inbox processor pacing', () => {
  it('takes a stream of events in one pass after the gap, and a lone event after a quiet spell at once', async () => {
    /** Per handled event: when, and how many events the inbox held then. */
    const handled: { id: string; at: number; stored: number }[] = [];
    let firstHandled!: () => void;
    const firstDone = new Promise<void>((resolve) => (firstHandled = resolve));
    processor = createInboxProcessor({
      db: database.db,
      clock: { now: () => 1_000 },
      log: pino({ level: 'silent' }),
      sweepIntervalMs: 0,
      // Wider than the default 5 ms, so that a busy machine's pauses between turns stay inside it.
      passGapMs: GAP_MS,
      handle: async (event) => {
        handled.push({ id: event.webhookId, at: performance.now(), stored: listInboxEvents(database.db).length });
        if (event.webhookId === 'first') firstHandled();
        return { outcome: 'ignored', detail: 'test' };
      },
    });
    const store = (webhookId: string) => {
      insertInboxEvent(database.db, { webhookId, type: 'Other', locationId: null, companyId: null, body: '{}', receivedAt: 1_000 });
      processor!.schedule();
    };

    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
    store('first');
    await firstDone;
    // Right after that pass (or while it ends): three events stored on three turns of the event loop.
    store('a');
    await nextTurn();
    expect(handled.map((h) => h.id)).toEqual(['first']);
    store('b');
    await nextTurn();
    store('c');
    await until(() => handled.length === 4, 'the stream to be handled');
    expect(handled.map((h) => h.id)).toEqual(['first', 'a', 'b', 'c']);
    // One pass for the three: when the first of them was handled, the last was already stored.
    expect(handled[1]!.stored).toBe(4);
    // And not before the gap (timers may fire up to a millisecond early).
    expect(handled[1]!.at - handled[0]!.at).toBeGreaterThanOrEqual(GAP_MS - 1);

    // A quiet spell longer than the gap: the next event is handled on the next turn.
    const quietFrom = performance.now();
    await until(() => performance.now() - quietFrom > GAP_MS + 10, 'a quiet spell');
    store('lone');
    await nextTurn();
    expect(handled.map((h) => h.id)).toEqual(['first', 'a', 'b', 'c', 'lone']);
  });
});
