// Opens the SQLite database (better-sqlite3 + drizzle) with the pragmas Tandem relies on, and
// applies the migrations in db/migrations.
import { accessSync, closeSync, constants, mkdirSync, openSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
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
  // (Whether it can be written is for the caller to ask: readers open it too, the CLI for one.)
  if (path !== ':memory:') {
    ensureFolder(dirname(path), undefined, { writable: false });
    createPrivateFile(path);
  }
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

/**
 * Creates an empty file readable by its owner alone (0600) when `path` does not exist yet, for
 * SQLite to open. The database holds sealed tokens, API key hashes and people's contacts, and its
 * folder may be one Tandem did not create (so not 0700, ensureFolder's mode): SQLite itself
 * creates a database 0644 (less the umask) and gives its -wal and -shm files the database file's
 * mode, so creating the database file private makes all three private. An existing file keeps the
 * mode its operator gave it.
 */
export function createPrivateFile(path: string): void {
  try {
    closeSync(openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
  } catch {
    // Already there (an earlier start, another process first): opened as it is. Anything else (an
    // unwritable folder) SQLite's own open reports, as it did before this step existed.
  }
}

/** Deletes a closed SQLite database file with its WAL and shared-memory files. */
export function removeDatabaseFiles(path: string): void {
  for (const file of databaseFiles(path)) rmSync(file, { force: true });
}

export function migrate(database: Database): void {
  drizzleMigrate(database.db, { migrationsFolder: MIGRATIONS_FOLDER });
}

/** Why a file or folder Tandem must write cannot be: a line a person can act on, with the errno code. */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    message: string,
    /** The errno (or SQLite) code, when there is one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/**
 * Creates `path` and any missing parents, one level at a time, then (unless `writable` is false)
 * checks that a file can be created in it. Not `mkdirSync(path, { recursive: true })`: under /proc
 * that loops forever (mkdir answers ENOENT, the parent exists, and Node tries again). Throws
 * StorageError.
 */
export function ensureFolder(path: string, mode?: number, { writable = true }: { writable?: boolean } = {}): void {
  const missing: string[] = [];
  let at = resolve(path);
  for (;;) {
    const stat = statAt(at);
    if (stat) {
      if (!stat.isDirectory()) throw new StorageError(`${at} is a file, not a folder`, 'ENOTDIR');
      break;
    }
    missing.unshift(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const folder of missing) {
    try {
      mkdirSync(folder, mode === undefined ? {} : { mode });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST' && statSync(folder, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw new StorageError(`the folder ${folder} cannot be created (${e.code ?? e.message})`, e.code);
    }
  }
  if (!writable) return;
  // A file created and deleted again: access(W_OK) says yes for root on read-only places (/sys, an
  // immutable folder), and SQLite creates its write-ahead log and shared-memory files here.
  const probe = join(path, `.tandem-write-check-${randomUUID()}`);
  try {
    closeSync(openSync(probe, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY));
    unlinkSync(probe);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new StorageError(`the folder ${path} cannot be written (${e.code ?? e.message})`, e.code);
  }
}

/** The folder's stat, or undefined when it is missing (or a parent is a file: found one level up). */
function statAt(path: string) {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOTDIR') return undefined;
    throw new StorageError(`${path} cannot be read (${e.code ?? e.message})`, e.code);
  }
}

/**
 * Checks that an existing file may be written (a missing one is created later, in a folder
 * ensureFolder checked). SQLite opens a file it cannot write read-only without a word, and then
 * fails every write; this finds it first. With access(2), not by opening the file: closing any
 * descriptor of a file drops every POSIX lock the process holds on it, SQLite's included. For root
 * it still sees the immutable flag (EPERM) and a read-only mount (EROFS). Throws StorageError.
 */
export function checkWritableFile(path: string): void {
  const stat = statAt(path);
  if (!stat) return;
  if (stat.isDirectory()) throw new StorageError(`${path} is a folder, not a file`, 'EISDIR');
  try {
    accessSync(path, constants.W_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new StorageError(`${path} cannot be written (${e.code ?? e.message})`, e.code);
  }
}

/** The database file and the files SQLite keeps beside it in WAL mode. */
export function databaseFiles(path: string): string[] {
  return ['', '-wal', '-shm'].map((suffix) => `${path}${suffix}`);
}

/**
 * Why the database cannot take a write now, or undefined when it can. Its files must open for
 * writing, and a write must commit: setting `user_version` to its own value, which changes nothing
 * but is a real write (SQLite answers SQLITE_READONLY on a connection it opened read-only because
 * the file was not writable then, and an I/O error when the disk refuses the write-ahead log).
 */
export function writeProblem(database: Pick<Database, 'sqlite'>): string | undefined {
  const { sqlite } = database;
  try {
    if (!sqlite.memory) for (const file of databaseFiles(sqlite.name).slice(0, 2)) checkWritableFile(file);
    const version = sqlite.pragma('user_version', { simple: true }) as number;
    sqlite.transaction(() => sqlite.pragma(`user_version = ${Number(version)}`)).immediate();
    return undefined;
  } catch (err) {
    const e = err as Error & { code?: string };
    // Another connection held the write lock past busy_timeout: busy, not unwritable.
    if (e.code === 'SQLITE_BUSY') return undefined;
    return e instanceof StorageError ? e.message : `${e.code ? `${e.code}: ` : ''}${e.message}`;
  }
}
