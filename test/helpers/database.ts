// A migrated in-memory SQLite database, for tests of the repositories and of code that only needs
// the database (no Tandem server around it).
import { migrate, openDatabase, type Database } from '../../db/client.ts';

export function memoryDatabase(): Database {
  const database = openDatabase(':memory:');
  migrate(database);
  return database;
}
