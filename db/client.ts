// Opens the SQLite database (better-sqlite3 + drizzle) with the pragmas Tandem relies on, and
// applies the migrations in db/migrations.
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Sqlite from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate as drizzleMigrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.ts';
import { startCheckpointer } from './checkpointer.ts';

export type Db = BetterSQLite3Database<typeof schema>;

export interface Database {
  sqlite: Sqlite.Database;
  db: Db;
  close(): void;
}

/** Resolved from this file so migrations are found whatever the working directory. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

export interface OpenOptions {
  /**
   * WAL checkpoints on a worker thread instead of inside the commit that fills the WAL
   * (db/checkpointer.ts): the server's connection. File databases only.
   */
  backgroundCheckpoints?: boolean;
  /** Hears the checkpoint worker's failures (it falls back to SQLite's own checkpoints). */
  onCheckpointError?(message: string): void;
}

export function openDatabase(path: string, options: OpenOptions = {}): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Sqlite(path);
  // WAL lets the panel read while the sync engine writes; busy_timeout rides out short write locks
  // from another process (e.g. a CLI) instead of failing with SQLITE_BUSY at once, for transactions
  // too, since they take the write lock at BEGIN (db/prepared.ts).
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const checkpointer = options.backgroundCheckpoints && path !== ':memory:' ? startCheckpointer(sqlite, path, options.onCheckpointError) : undefined;
  const db = drizzle({ client: sqlite, schema });
  return {
    sqlite,
    db,
    close() {
      checkpointer?.stop();
      if (sqlite.open) sqlite.close();
    },
  };
}

/** Deletes a closed SQLite database file with its WAL and shared-memory files. */
export function removeDatabaseFiles(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

export function migrate(database: Database): void {
  drizzleMigrate(database.db, { migrationsFolder: MIGRATIONS_FOLDER });
}
