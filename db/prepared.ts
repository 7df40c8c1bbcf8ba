// What is built once per database connection for the hot paths: prepared statements (drizzle
// builds the SQL and SQLite prepares it on every ordinary call, which costs more than running it),
// writes run straight on their statement, and the transaction wrapper every transaction goes
// through. Each is built lazily on first use.
import type Sqlite from 'better-sqlite3';
import { is, Param, Placeholder } from 'drizzle-orm';
import type { Db } from './client.ts';

/**
 * The key statements are kept under: drizzle's session, which a database handle and every
 * transaction handle opened from it share (one better-sqlite3 connection; a statement prepared
 * through either runs inside whatever transaction the connection has open). `session` is not in
 * drizzle's public types; should it ever be missing, the handle itself is the key (correct, only
 * prepared once per handle instead of once per connection).
 */
function connectionOf(db: Db): object {
  return (db as unknown as { session?: object }).session ?? db;
}

/** `build(db)` once per connection; the statement is forgotten with the connection's handles. */
export function preparedOnce<T>(build: (db: Db) => T): (db: Db) => T {
  const cache = new WeakMap<object, T>();
  return (db) => {
    const key = connectionOf(db);
    let s = cache.get(key);
    if (s === undefined) cache.set(key, (s = build(db)));
    return s;
  };
}

/** A write statement drizzle built (insert, update, delete with placeholders), not yet prepared. */
interface BuiltWrite {
  toSQL(): { sql: string; params: unknown[] };
}

export interface PreparedWrite<V> {
  run(values: V): Sqlite.RunResult;
}

/**
 * A write (insert, update, delete with named placeholders) run straight on the connection's
 * better-sqlite3 statement, for the writes run for every contact of a pull or every webhook.
 * Drizzle's own run() resolves each parameter on every call (a class-chain check per parameter:
 * 2–3 µs for a contact's 24 columns); here each parameter's source (a named value, the same through
 * its column's encoder, or a constant) is decided once. `built` is the query drizzle would prepare
 * (e.g. `db.insert(t).values({ a: p('a') })`, without `.prepare()`).
 */
export function prepareWrite<V extends Record<string, unknown>>(db: Db, built: BuiltWrite): PreparedWrite<V> {
  const query = built.toSQL();
  const stmt = clientOf(db).prepare(query.sql);
  const sources = query.params.map((param): ((values: V) => unknown) => {
    const placeholder = is(param, Placeholder) ? param : is(param, Param) && is(param.value, Placeholder) ? param.value : undefined;
    if (!placeholder) return () => param;
    const name = placeholder.name;
    const encode = is(param, Param) ? (v: unknown) => param.encoder.mapToDriverValue(v) : (v: unknown) => v;
    return (values) => {
      if (!(name in values)) throw new Error(`No value for placeholder "${name}" was provided`);
      return encode(values[name]);
    };
  });
  return { run: (values) => stmt.run(...sources.map((source) => source(values))) };
}

/** prepareWrite once per connection (as preparedOnce). */
export function preparedWrite<V extends Record<string, unknown>>(build: (db: Db) => BuiltWrite): (db: Db) => PreparedWrite<V> {
  return preparedOnce((db) => prepareWrite<V>(db, build(db)));
}

/** The better-sqlite3 connection behind a handle (drizzle's session holds it). */
function clientOf(db: Db): Sqlite.Database {
  const client = (connectionOf(db) as { client?: Sqlite.Database }).client;
  if (!client) throw new Error('no better-sqlite3 connection behind this database handle');
  return client;
}

const transactionRunner = preparedOnce((db) => clientOf(db).transaction((body: () => unknown) => body()).immediate);

/**
 * Runs `fn` in a transaction of `db`'s connection, or in a savepoint when one is open already
 * (better-sqlite3's rules: a throw rolls back and rethrows). Tandem opens every transaction this
 * way. IMMEDIATE: the write lock is taken at BEGIN, where busy_timeout waits for another
 * connection's write (a second process during a deploy's hand-over). A deferred transaction that
 * reads first fails at once with "database is locked" when it then writes after that connection
 * committed (SQLite cannot move its snapshot), whatever the timeout: a contact update through the
 * REST API would answer 500, a sync pass would stop on an error (test/unit/prepared.test.ts).
 * Drizzle's `db.transaction` builds a new transaction handle and better-sqlite3 a new wrapper
 * (four closures) on every call: about 10 µs, paid up to three times per contact a webhook
 * changes (the batch's savepoint, the apply's, the contact update's). Here the wrapper is built
 * once per connection. Statements inside use `db` itself: a connection has one transaction.
 */
export function transaction<T>(db: Db, fn: () => T): T {
  return transactionRunner(db)(fn) as T;
}
