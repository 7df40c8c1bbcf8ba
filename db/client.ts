// Opens the SQLite database (better-sqlite3 + drizzle) with the pragmas Tandem relies on, and
// applies the migrations in db/migrations.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Sqlite from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate as drizzleMigrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.ts';

export type Db = BetterSQLite3Database<typeof schema>;

export interface Database {
  sqlite: Sqlite.Database;
  db: Db;
  close(): void;
}

/** Resolved from this file so migrations are found whatever the working directory. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

export function openDatabase(path: string): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Sqlite(path);
  // WAL lets the panel read while the sync engine writes; busy_timeout rides out short write locks
  // from another process (e.g. a CLI) instead of failing with SQLITE_BUSY at once.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = drizzle({ client: sqlite, schema });
  return {
    sqlite,
    db,
    close() {
      if (sqlite.open) sqlite.close();
    },
  };
}

export function migrate(database: Database): void {
  drizzleMigrate(database.db, { migrationsFolder: MIGRATIONS_FOLDER });
}
