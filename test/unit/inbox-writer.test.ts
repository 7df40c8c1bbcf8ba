// The webhook inbox's group commit (server/installs/inbox-writer.ts) against a real (in-memory)
// SQLite: events stored in one turn share one transaction, a webhookId repeated within it counts
// as a redelivery, and one row that cannot be stored fails alone. Also the partial indexes that
// keep the processor's and the loops' reads off each other's rows (db/schema.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.ts';
import { dueInboxEvents, getInboxEvent, listInboxEvents, queuedInboxEvents, recordInboxOutcomes, type NewInboxEvent } from '../../db/webhook-inbox.ts';
import { createInboxWriter } from '../../server/installs/inbox-writer.ts';
import { memoryDatabase } from '../helpers/database.ts';

let database: Database;
beforeEach(() => {
  database = memoryDatabase();
});
afterEach(() => database.close());

const event = (webhookId: string, over: Partial<NewInboxEvent> = {}): NewInboxEvent => ({
  webhookId,
  type: 'ContactUpdate',
  locationId: 'loc1',
  companyId: null,
  body: JSON.stringify({ type: 'ContactUpdate', webhookId }),
  receivedAt: 1_000,
  ...over,
});

describe('inbox group commit', () => {
  it('stores the events of one turn together after that turn, and answers each after the commit', async () => {
    const writer = createInboxWriter(database.db, { wake: () => {} });
    const pending = ['a', 'b', 'c'].map((id) => writer.store(event(id)));
    // Nothing is written during the turn that asked: the rows go in together right after it.
    expect(listInboxEvents(database.db)).toEqual([]);
    const seen: number[] = [];
    const stored = await Promise.all(pending.map((p) => p.then((s) => (seen.push(listInboxEvents(database.db).length), s))));
    expect(stored).toEqual([true, true, true]);
    // Every caller was answered with all three rows readable: one commit for the three.
    expect(seen).toEqual([3, 3, 3]);
  });

  it('wakes the processor after a commit that stored something for it, never before the rows are readable', async () => {
    const wakes: string[] = [];
    const writer = createInboxWriter(database.db, { wake: () => wakes.push(`${listInboxEvents(database.db).length} stored`) });
    const first = [writer.store(event('a')), writer.store(event('b'))];
    expect(wakes).toEqual([]);
    await Promise.all(first);
    expect(wakes).toEqual(['2 stored']);
    // Only redeliveries: nothing new to apply after the commit.
    await writer.store(event('a'));
    expect(wakes).toEqual(['2 stored']);
  });

  it('stores the events forLoop picks already queued for their loops, and wakes those loops instead of the processor', async () => {
    const wakes: string[] = [];
    const loops: string[][] = [];
    const writer = createInboxWriter(database.db, {
      wake: () => wakes.push('processor'),
      forLoop: (e) => e.type === 'ContactUpdate' && e.locationId !== 'elsewhere',
      wakeLoops: (ids) => loops.push([...ids].sort()),
    });
    await Promise.all([
      writer.store(event('c1')),
      writer.store(event('c2', { locationId: 'loc2' })),
      writer.store(event('c3')),
      writer.store(event('other', { type: 'INSTALL' })),
      writer.store(event('not-installed', { locationId: 'elsewhere' })),
    ]);
    expect(loops).toEqual([['loc1', 'loc2']]);
    expect(wakes).toEqual(['processor']);
    expect(queuedInboxEvents(database.db, 'loc1').map((e) => e.webhookId)).toEqual(['c1', 'c3']);
    expect(queuedInboxEvents(database.db, 'loc2').map((e) => e.webhookId)).toEqual(['c2']);
    expect(dueInboxEvents(database.db, 1_000).map((e) => e.webhookId).sort()).toEqual(['not-installed', 'other']);
    // A redelivery of a queued event wakes nothing.
    await writer.store(event('c1'));
    expect(loops).toHaveLength(1);
    expect(wakes).toEqual(['processor']);
  });

  it('counts a webhookId repeated in the same turn, or stored before, as a redelivery', async () => {
    const writer = createInboxWriter(database.db, { wake: () => {} });
    expect(await writer.store(event('x'))).toBe(true);
    const again = await Promise.all([writer.store(event('x')), writer.store(event('y')), writer.store(event('y'))]);
    expect(again).toEqual([false, true, false]);
    expect(listInboxEvents(database.db).map((e) => e.webhookId)).toEqual(['x', 'y']);
  });

  it('fails only the row that cannot be stored; the others of its turn are stored', async () => {
    const writer = createInboxWriter(database.db, { wake: () => {} });
    const results = await Promise.allSettled([
      writer.store(event('ok1')),
      // NOT NULL type: the insert throws, as a full disk or a broken row would.
      writer.store(event('bad', { type: null as unknown as string })),
      writer.store(event('ok2')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(getInboxEvent(database.db, 'ok1')?.webhookId).toBe('ok1');
    expect(getInboxEvent(database.db, 'ok2')?.webhookId).toBe('ok2');
    expect(getInboxEvent(database.db, 'bad')).toBeUndefined();
  });
});

describe('inbox reads', () => {
  it('keeps queued events out of the due read and each location\'s queue to itself', async () => {
    const writer = createInboxWriter(database.db, { wake: () => {} });
    await Promise.all([
      writer.store(event('q1', { receivedAt: 1 })),
      writer.store(event('q2', { receivedAt: 2, locationId: 'loc2' })),
      writer.store(event('due', { receivedAt: 3 })),
      writer.store(event('later', { receivedAt: 4, nextAttemptAt: 5_000 })),
    ]);
    recordInboxOutcomes(database.db, [{ webhookId: 'q1', kind: 'queued' }, { webhookId: 'q2', kind: 'queued' }]);
    expect(dueInboxEvents(database.db, 1_000).map((e) => e.webhookId)).toEqual(['due']);
    expect(dueInboxEvents(database.db, 5_000).map((e) => e.webhookId)).toEqual(['due', 'later']);
    expect(queuedInboxEvents(database.db, 'loc1').map((e) => e.webhookId)).toEqual(['q1']);
    expect(queuedInboxEvents(database.db, 'loc2').map((e) => e.webhookId)).toEqual(['q2']);
  });

  it('reads the due events and a location\'s queue through their partial indexes, not a scan', () => {
    const prepared: string[] = [];
    const prepare = database.sqlite.prepare.bind(database.sqlite);
    database.sqlite.prepare = ((source: string) => (prepared.push(source), prepare(source))) as typeof database.sqlite.prepare;
    dueInboxEvents(database.db, 1_000);
    queuedInboxEvents(database.db, 'loc1');
    const plan = (pattern: RegExp) => {
      const source = prepared.find((q) => /^select/i.test(q) && pattern.test(q))!;
      const params = (source.match(/\?/g) ?? []).map(() => 1);
      return database.sqlite.prepare(`explain query plan ${source}`).all(...params).map((r) => (r as { detail: string }).detail).join('; ');
    };
    expect(plan(/<> 'queued'/)).toContain('USING INDEX webhook_inbox_due');
    expect(plan(/= 'queued'/)).toContain('USING INDEX webhook_inbox_queued');
  });
});
