// Background WAL checkpoints (db/checkpointer.ts) on a real SQLite file: the worker copies committed
// pages into the database file while the server's connection, whose own checkpoint now waits for
// 4,000 pages, never would for this little; stopping hands the connection back to SQLite's default.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startCheckpointer } from '../../db/checkpointer.ts';
import { openDatabase, type Database } from '../../db/client.ts';
import { until } from '../helpers/emulator.ts';

let dir: string;
let database: Database | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-checkpoint-'));
});
afterEach(() => {
  database?.close();
  database = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** About 1 MB in 256 commits: 256+ WAL pages, far under the connection's own threshold. */
function writeSome(d: Database): void {
  d.sqlite.exec('create table blobs (id integer primary key, data blob not null)');
  const insert = d.sqlite.prepare('insert into blobs (data) values (?)');
  for (let i = 0; i < 256; i++) insert.run(Buffer.alloc(4000, i));
}

describe('background WAL checkpoints', () => {
  it('copies committed pages into the database file from the worker, not from a commit', async () => {
    const path = join(dir, 'tandem.db');
    database = openDatabase(path, { backgroundCheckpoints: true });
    expect(database.sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(4000);
    const before = statSync(path).size;
    writeSome(database);
    // Right after the commits the pages are in the WAL only; the worker copies them over shortly.
    await until(() => statSync(path).size > before + 1_000_000, 'the worker to checkpoint the WAL');
    expect(database.sqlite.prepare('select count(*) as n from blobs').get()).toEqual({ n: 256 });
  });

  it("closes the worker's connection before the server's, whose close, the last, removes the WAL", async () => {
    const path = join(dir, 'tandem.db');
    database = openDatabase(path, { backgroundCheckpoints: true });
    const before = statSync(path).size;
    writeSome(database);
    // The worker has its connection open: it copied the pages over.
    await until(() => statSync(path).size > before + 1_000_000, 'the worker to checkpoint the WAL');
    expect(existsSync(`${path}-wal`)).toBe(true);
    database.close();
    database = undefined;
    // Closed after the server's, the worker's connection was the last: it deleted the WAL by name
    // later, when a sandbox started over with --reset had put a new database's WAL there.
    expect(existsSync(`${path}-wal`)).toBe(false);
    expect(existsSync(`${path}-shm`)).toBe(false);
  });

  it('leaves the pages in the WAL without it (the control: the connection alone does not checkpoint this little)', () => {
    const path = join(dir, 'tandem.db');
    database = openDatabase(path);
    database.sqlite.pragma('wal_autocheckpoint = 4000');
    const before = statSync(path).size;
    writeSome(database);
    expect(statSync(path).size).toBe(before);
  });

  it('goes back to SQLite\'s default checkpoints when stopped, and in-memory databases never start a worker', () => {
    const path = join(dir, 'tandem.db');
    database = openDatabase(path);
    const checkpointer = startCheckpointer(database.sqlite, path);
    expect(database.sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(4000);
    checkpointer.stop();
    expect(database.sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    database.close();
    database = openDatabase(':memory:', { backgroundCheckpoints: true });
    expect(database.sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });
});
