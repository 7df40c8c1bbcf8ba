// The staged inbox: a small SQLite file of its own, beside Tandem's database, where the front
// thread (server/front.ts) commits each verified webhook before acknowledging it. The app thread
// (server/app-thread.ts) moves the staged events into the webhook inbox (db/webhook-inbox.ts) and
// publishes how far it got; the front then deletes them. Why a file of its own: the front is the
// only writer here, so an acknowledgement never waits for the app thread's write lock on the main
// database (the sync engine's transactions), and the app thread only reads it.
// A staged event is durable as soon as it is acknowledged; moving one twice is harmless (the
// inbox keeps the first copy of a webhookId), so a crash between the move and the delete loses
// nothing and duplicates nothing.
import { createPrivateFile, ensureFolder } from './client.ts';
import { basename, dirname, extname, join } from 'node:path';
import Sqlite from 'better-sqlite3';
import type { NewInboxEvent } from './webhook-inbox.ts';

/** A staged event and its place in the order of arrival. */
export interface StagedEvent extends NewInboxEvent {
  seq: number;
}

/** `data/tandem.db` → `data/tandem.inbox.db`. */
export function stagedInboxPath(databasePath: string): string {
  const ext = extname(databasePath);
  return join(dirname(databasePath), `${basename(databasePath, ext)}.inbox${ext || '.db'}`);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS staged_webhooks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook_id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  location_id TEXT,
  company_id TEXT,
  body TEXT NOT NULL,
  received_at INTEGER NOT NULL
)`;

export interface StagedInbox {
  /**
   * Stores the events in one transaction (one commit); true for each newly staged, false for a
   * webhookId already staged, and the seq of the last one staged (0 when none). With `pruneUpTo`,
   * the same commit deletes the events up to that seq (those the app thread has moved into the
   * inbox). Throws when the commit fails: nothing of the batch is stored.
   */
  stage(events: readonly NewInboxEvent[], pruneUpTo?: number): { stored: boolean[]; lastSeq: number };
  /** Staged events after `seq`, oldest first. */
  after(seq: number, limit: number): StagedEvent[];
  /** The connection (background checkpoints, db/checkpointer.ts). */
  sqlite: Sqlite.Database;
  close(): void;
}

/** Opens (creating when missing) the staged inbox; `readonly` for the app thread, which only reads it. */
export function openStagedInbox(path: string, options: { readonly?: boolean } = {}): StagedInbox {
  ensureFolder(dirname(path), undefined, { writable: false });
  let sqlite: Sqlite.Database;
  if (options.readonly) {
    sqlite = new Sqlite(path, { fileMustExist: true });
    sqlite.pragma('query_only = ON');
  } else {
    // Readable by its owner only: it holds webhook bodies (contact data) as HighLevel sent them.
    createPrivateFile(path);
    sqlite = new Sqlite(path);
    sqlite.pragma('journal_mode = WAL');
    // As the main database: a commit survives a crash of the process, the WAL is synced at checkpoints.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.exec(SCHEMA);
  }
  sqlite.pragma('busy_timeout = 5000');
  const insert = options.readonly
    ? undefined
    : sqlite.prepare<[string, string, string | null, string | null, string, number]>(
        'INSERT INTO staged_webhooks (webhook_id, type, location_id, company_id, body, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id) DO NOTHING',
      );
  const prune = options.readonly ? undefined : sqlite.prepare<[number]>('DELETE FROM staged_webhooks WHERE seq <= ?');
  const stageAll =
    insert && prune
      ? sqlite.transaction((events: readonly NewInboxEvent[], pruneUpTo: number) => {
          let lastSeq = 0;
          const stored = events.map((e) => {
            const result = insert.run(e.webhookId, e.type, e.locationId, e.companyId, e.body, e.receivedAt);
            if (result.changes === 0) return false;
            lastSeq = Number(result.lastInsertRowid);
            return true;
          });
          if (pruneUpTo > 0) prune.run(pruneUpTo);
          return { stored, lastSeq };
        })
      : undefined;
  const after = sqlite.prepare<[number, number], { seq: number; webhook_id: string; type: string; location_id: string | null; company_id: string | null; body: string; received_at: number }>(
    'SELECT seq, webhook_id, type, location_id, company_id, body, received_at FROM staged_webhooks WHERE seq > ? ORDER BY seq LIMIT ?',
  );
  return {
    stage(events, pruneUpTo = 0) {
      if (!stageAll) throw new Error('the staged inbox is open read-only');
      return stageAll.immediate(events, pruneUpTo);
    },
    sqlite,
    after(seq, limit) {
      return after.all(seq, limit).map((r) => ({
        seq: r.seq,
        webhookId: r.webhook_id,
        type: r.type,
        locationId: r.location_id,
        companyId: r.company_id,
        body: r.body,
        receivedAt: r.received_at,
      }));
    },
    close() {
      if (sqlite.open) sqlite.close();
    },
  };
}
