// Statements prepared once per database connection, for repositories' hot paths. Drizzle builds the
// SQL and SQLite prepares it on every ordinary call, which costs more than running it; a prepared
// statement is reused. Each statement is prepared lazily on first use.
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
