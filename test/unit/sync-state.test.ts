// The sync-state repository against a real (in-memory) SQLite: a patch writes only what it names,
// the latest change times only move forward, the error's time follows the error, and a patch that
// changes nothing writes nothing (every pass of a location's loop ends by recording its outcome),
// and a pull cursor stored before `settledTo` existed still parses.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/client.ts';
import { EMPTY_CURSOR, getSyncState, updateSyncState } from '../../db/sync-state.ts';
import { memoryDatabase } from '../helpers/database.ts';

let database: Database;
beforeEach(() => {
  database = memoryDatabase();
});
afterEach(() => database.close());

const L = 'loc1';

describe('sync state', () => {
  it('starts empty, and a patch writes only the fields it names', () => {
    const db = database.db;
    expect(getSyncState(db, L)).toMatchObject({ cursor: EMPTY_CURSOR, nextPullAt: null, lastError: null, updatedAt: null });
    updateSyncState(db, L, { nextPullAt: 500 }, 100);
    const cursor = { dateUpdated: 42, seenIds: ['a'], settledTo: 30, run: null };
    updateSyncState(db, L, { cursor, lastInboundAt: 90 }, 200);
    expect(getSyncState(db, L)).toMatchObject({ cursor, nextPullAt: 500, lastInboundAt: 90, lastOutboundAt: null, updatedAt: 200 });
  });

  it('moves the latest change times forward only, and dates the error when it changes', () => {
    const db = database.db;
    updateSyncState(db, L, { lastInboundAt: 300, lastOutboundAt: 300 }, 300);
    updateSyncState(db, L, { lastInboundAt: 250, lastOutboundAt: 400 }, 400);
    expect(getSyncState(db, L)).toMatchObject({ lastInboundAt: 300, lastOutboundAt: 400 });

    updateSyncState(db, L, { lastError: 'HighLevel refused the token' }, 500);
    updateSyncState(db, L, { lastError: 'HighLevel refused the token' }, 600);
    expect(getSyncState(db, L)).toMatchObject({ lastError: 'HighLevel refused the token', lastErrorAt: 500 });
    updateSyncState(db, L, { lastError: null }, 700);
    expect(getSyncState(db, L)).toMatchObject({ lastError: null, lastErrorAt: null, updatedAt: 700 });
  });

  it('reads a pull cursor stored before settledTo existed as not settled, run in progress included', () => {
    const db = database.db;
    const insert = database.sqlite.prepare('insert into sync_state (location_id, pull_cursor, updated_at) values (?, ?, ?)');
    insert.run(L, JSON.stringify({ dateUpdated: 42, seenIds: ['a'], run: null }), 100);
    const run = { full: false, from: 42, searchAfter: [50, 'b'], startedAt: 90 };
    insert.run('loc2', JSON.stringify({ dateUpdated: 50, seenIds: ['b'], run }), 100);
    expect(getSyncState(db, L).cursor).toEqual({ dateUpdated: 42, seenIds: ['a'], settledTo: null, run: null });
    expect(getSyncState(db, 'loc2').cursor).toEqual({ dateUpdated: 50, seenIds: ['b'], settledTo: null, run });
    // Written back as read, then with the settledTo a completed run gives it.
    updateSyncState(db, 'loc2', { cursor: { ...getSyncState(db, 'loc2').cursor, run: null } }, 200);
    expect(getSyncState(db, 'loc2').cursor).toEqual({ dateUpdated: 50, seenIds: ['b'], settledTo: null, run: null });
    updateSyncState(db, 'loc2', { cursor: { dateUpdated: 50, seenIds: ['b'], settledTo: 42, run: null } }, 300);
    expect(getSyncState(db, 'loc2').cursor.settledTo).toBe(42);
  });

  it('writes nothing for a patch that changes nothing', () => {
    const db = database.db;
    updateSyncState(db, L, { lastError: null, nextPullAt: 10 }, 100);
    const changes = () => database.sqlite.prepare('select total_changes() as n').get() as { n: number };
    const before = changes().n;
    updateSyncState(db, L, { lastError: null, nextPullAt: 10 }, 900);
    expect(changes().n).toBe(before);
    expect(getSyncState(db, L).updatedAt).toBe(100);
    // The first write of a location creates its row even when every value is empty.
    updateSyncState(db, 'loc2', { lastError: null }, 900);
    expect(getSyncState(db, 'loc2').updatedAt).toBe(900);
  });
});
