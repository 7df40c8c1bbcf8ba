// The pull benchmark's peer: SQLite alone writing what a pull wrote. The rows a location's pull left
// in Tandem's database (its contacts and their links, exactly as stored) are inserted into a new
// database of the same schema and settings (openDatabase: WAL, synchronous NORMAL, the background
// checkpointer) with plain prepared statements, in transactions of the pull's slice (APPLY_SLICE).
// No HTTP, no reading of HighLevel's answers, no checks, no matching: what is left of a pull when
// everything but storing its result is taken away, measured on the same machine in the same run.
import { join } from 'node:path';
import type Sqlite from 'better-sqlite3';
import { migrate, openDatabase, removeDatabaseFiles } from '../db/client.ts';
import { APPLY_SLICE } from '../server/sync/reconcile.ts';

export interface SqlFloor {
  contacts: number;
  /** Wall time of the inserts and their commits, ms. */
  ms: number;
  slice: number;
}

/** Inserts `locationId`'s contacts and links from `source` into a new database in `dir`, timed. */
export function sqlWriteFloor(source: Sqlite.Database, locationId: string, dir: string): SqlFloor {
  const contacts = source.prepare('select * from contacts where location_id = ? order by id').all(locationId) as Record<string, unknown>[];
  const links = new Map((source.prepare('select * from contact_links where location_id = ?').all(locationId) as Record<string, unknown>[]).map((l) => [l.contact_id, l]));
  const path = join(dir, 'sql-floor.db');
  const target = openDatabase(path, { backgroundCheckpoints: true });
  try {
    migrate(target);
    const insertOf = (table: string, row: Record<string, unknown>) => {
      const columns = Object.keys(row);
      return target.sqlite.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map((c) => `@${c}`).join(', ')})`);
    };
    const insertContact = insertOf('contacts', contacts[0] ?? { id: null });
    const firstLink = links.values().next().value;
    const insertLink = firstLink ? insertOf('contact_links', firstLink) : undefined;
    const slice = target.sqlite.transaction((rows: Record<string, unknown>[]) => {
      for (const row of rows) {
        insertContact.run(row);
        const link = links.get(row.id);
        if (link) insertLink!.run(link);
      }
    });
    const started = performance.now();
    for (let from = 0; from < contacts.length; from += APPLY_SLICE) slice.immediate(contacts.slice(from, from + APPLY_SLICE));
    return { contacts: contacts.length, ms: performance.now() - started, slice: APPLY_SLICE };
  } finally {
    target.close();
    removeDatabaseFiles(path);
  }
}
