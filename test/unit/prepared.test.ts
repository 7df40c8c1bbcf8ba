// Writes prepared once and run on the connection (db/prepared.ts): each parameter reaches SQLite as
// drizzle would bind it (named values, values through their column's encoder, constants), a missing
// value is an error rather than a NULL, and the statement runs inside the connection's transaction;
// transactions opened with `transaction` nest as savepoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '../../db/client.ts';
import { getContact } from '../../db/contacts.ts';
import { prepareWrite, preparedWrite, transaction } from '../../db/prepared.ts';
import { contacts } from '../../db/schema.ts';
import { memoryDatabase } from '../helpers/database.ts';

let database: Database;
beforeEach(() => {
  database = memoryDatabase();
});
afterEach(() => database.close());

const p = sql.placeholder;
type Values = { id: string; dnd: boolean; tags: string };
const insertContact = preparedWrite<Values>((db) =>
  db.insert(contacts).values({
    id: p('id'),
    locationId: 'loc1',
    dnd: p('dnd'),
    tags: p('tags'),
    customFields: '{}',
    createdAt: 1,
    updatedAt: 2,
    version: 1,
  } as never),
);

describe('prepareWrite', () => {
  it('binds named values through their column encoder and constants as drizzle does', () => {
    const result = insertContact(database.db).run({ id: 'c1', dnd: true, tags: '["vip"]' });
    expect(result.changes).toBe(1);
    insertContact(database.db).run({ id: 'c2', dnd: false, tags: '[]' });
    expect(database.sqlite.prepare('select id, location_id, dnd, tags, created_at, updated_at from contacts order by id').all()).toEqual([
      { id: 'c1', location_id: 'loc1', dnd: 1, tags: '["vip"]', created_at: 1, updated_at: 2 },
      { id: 'c2', location_id: 'loc1', dnd: 0, tags: '[]', created_at: 1, updated_at: 2 },
    ]);
    expect(getContact(database.db, 'loc1', 'c1')?.fields).toMatchObject({ dnd: true, tags: ['vip'] });
  });

  it('refuses a missing value instead of binding NULL', () => {
    expect(() => insertContact(database.db).run({ id: 'c1', dnd: true } as unknown as Values)).toThrow('No value for placeholder "tags"');
    expect(database.sqlite.prepare('select count(*) as n from contacts').get()).toEqual({ n: 0 });
  });

  it('runs inside the transaction open on the connection, and is prepared once per connection', () => {
    const first = insertContact(database.db);
    expect(() =>
      database.db.transaction((tx) => {
        expect(insertContact(tx)).toBe(first);
        first.run({ id: 'c1', dnd: false, tags: '[]' });
        throw new Error('roll back');
      }),
    ).toThrow('roll back');
    expect(database.sqlite.prepare('select count(*) as n from contacts').get()).toEqual({ n: 0 });
    const rename = prepareWrite<{ id: string; name: string }>(database.db, database.db.update(contacts).set({ firstName: p('name') as never }).where(eq(contacts.id, p('id'))));
    first.run({ id: 'c1', dnd: false, tags: '[]' });
    expect(rename.run({ id: 'c1', name: 'Ada' }).changes).toBe(1);
    expect(getContact(database.db, 'loc1', 'c1')?.fields.firstName).toBe('Ada');
  });
});

describe('transaction', () => {
  const count = () => (database.sqlite.prepare('select count(*) as n from contacts').get() as { n: number }).n;

  it('commits what it wrote and returns what its function returns; a throw rolls it all back', () => {
    expect(transaction(database.db, () => insertContact(database.db).run({ id: 'c1', dnd: false, tags: '[]' }).changes)).toBe(1);
    expect(count()).toBe(1);
    expect(() =>
      transaction(database.db, () => {
        insertContact(database.db).run({ id: 'c2', dnd: false, tags: '[]' });
        throw new Error('no');
      }),
    ).toThrow('no');
    expect(count()).toBe(1);
    expect(database.sqlite.inTransaction).toBe(false);
  });

  it('nests as a savepoint: an inner throw caught outside undoes only the inner writes', () => {
    transaction(database.db, () => {
      insertContact(database.db).run({ id: 'outer', dnd: false, tags: '[]' });
      expect(() =>
        transaction(database.db, () => {
          insertContact(database.db).run({ id: 'inner', dnd: false, tags: '[]' });
          throw new Error('inner');
        }),
      ).toThrow('inner');
      transaction(database.db, () => insertContact(database.db).run({ id: 'kept', dnd: false, tags: '[]' }));
    });
    expect(database.sqlite.prepare('select id from contacts order by id').all()).toEqual([{ id: 'kept' }, { id: 'outer' }]);
  });

  it('takes the write lock at its start: another connection writing meanwhile waits, and the read-then-write goes through', () => {
    // Two connections on one file, as two processes during a deploy's hand-over. The other one
    // does not wait here (busy_timeout 0): with a deferred transaction its write went through and
    // this transaction's own write, after a read, then failed with "database is locked".
    const dir = mkdtempSync(join(tmpdir(), 'tandem-immediate-'));
    const mine = openDatabase(join(dir, 'tandem.db'));
    const other = openDatabase(join(dir, 'tandem.db'));
    try {
      migrate(mine);
      other.sqlite.pragma('busy_timeout = 0');
      let refused: unknown;
      transaction(mine.db, () => {
        expect(getContact(mine.db, 'loc1', 'c1')).toBeUndefined();
        try {
          insertContact(other.db).run({ id: 'theirs', dnd: false, tags: '[]' });
        } catch (err) {
          refused = err;
        }
        insertContact(mine.db).run({ id: 'c1', dnd: false, tags: '[]' });
      });
      expect((refused as { code?: string } | undefined)?.code).toBe('SQLITE_BUSY');
      expect(other.sqlite.prepare('select id from contacts').all()).toEqual([{ id: 'c1' }]);
    } finally {
      other.close();
      mine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
