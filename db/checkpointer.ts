// Keeps SQLite's WAL checkpoints off the event loop: a worker thread with its own connection copies
// the WAL back into the database file every CHECKPOINT_EVERY_MS (PASSIVE: it never blocks the
// writer), and the server's connection checkpoints itself only every AUTO_CHECKPOINT_PAGES.
// Why: with SQLite's default (1,000 pages), the commit that filled the WAL also copied it and
// synced the file before returning, 4–6 ms during which no webhook was acknowledged, about seven
// times a second at 1,000 webhooks a second. The server's own checkpoint stays because only it
// can restart the WAL under a steady stream of commits (a checkpoint from another connection
// rarely finishes between two of them, and the WAL file then grew to tens of MB in seconds); by the
// time it runs, the worker has copied almost everything, so it is short. Durability is unchanged:
// commits are what they were (WAL, synchronous = NORMAL).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Sqlite from 'better-sqlite3';

const CHECKPOINT_EVERY_MS = 100;
/** SQLite's default is 1,000 pages (4 MB); the WAL file stays under about 16 MB. */
const AUTO_CHECKPOINT_PAGES = 4000;

/** How long stop() waits for the worker to close its connection. */
const STOP_WAIT_MS = 2000;

// Plain CommonJS evaluated in the worker, so no TypeScript loader is needed there (tsx, vitest).
// On 'stop' it closes its connection, then says so through `closed` (Atomics: stop() waits on it).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Sqlite = require(workerData.driver);
const db = new Sqlite(workerData.path, { fileMustExist: true });
const closed = new Int32Array(workerData.closed);
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
}, workerData.everyMs);
parentPort.once('message', () => {
  clearInterval(timer);
  try {
    db.close();
  } finally {
    Atomics.store(closed, 0, 1);
    Atomics.notify(closed, 0);
    parentPort.close();
  }
});
`;

export interface Checkpointer {
  /**
   * Stops the worker and waits (up to STOP_WAIT_MS) until it has closed its connection; the
   * server's connection goes back to SQLite's default checkpoints. Why wait: the last connection
   * of a database to close deletes its WAL and shared-memory files by name. Closed after the
   * server's, the worker's was that last one, and when the files had been replaced meanwhile (a
   * sandbox started over with --reset right after a stop), it deleted the new database's WAL,
   * whose pages (its schema included) then vanished for every new reader.
   */
  stop(): void;
}

/**
 * Starts background checkpoints for a file database in WAL mode. If the worker fails, the
 * connection goes back to SQLite's default automatic checkpoint: slower commits, never a WAL left
 * to grow. `onError` hears the worker's failures (the caller logs them).
 */
export function startCheckpointer(sqlite: Sqlite.Database, path: string, onError: (message: string) => void = () => {}): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const closed = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, path, everyMs: CHECKPOINT_EVERY_MS, closed: closed.buffer } });
  let stopped = false;
  let exited = false;
  const fallBack = (message: string) => {
    if (sqlite.open) sqlite.pragma('wal_autocheckpoint = 1000');
    if (!stopped) onError(message);
  };
  worker.on('message', (m: { error?: string }) => {
    if (m.error) onError(m.error);
  });
  worker.on('error', (err) => fallBack(err.message));
  worker.on('exit', (code) => {
    exited = true;
    if (!stopped) fallBack(`checkpoint worker exited (${code})`);
  });
  // Never what keeps the process alive.
  worker.unref();
  sqlite.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      fallBack('stopped');
      if (exited) return;
      worker.postMessage('stop');
      // Blocks this thread for as long as the worker takes to finish a checkpoint in progress and
      // close (milliseconds); a worker that cannot answer costs STOP_WAIT_MS once.
      Atomics.wait(closed, 0, 0, STOP_WAIT_MS);
    },
  };
}
