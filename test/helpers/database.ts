// A migrated in-memory SQLite database, for tests of the repositories and of code that only needs
// the database (no Tandem server around it).
import { migrate, openDatabase, type Database } from '../../db/client.ts';
import { archiveContact, createContact } from '../../db/contacts.ts';
import { insertLink } from '../../db/links.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';

export function memoryDatabase(): Database {
  const database = openDatabase(':memory:');
  migrate(database);
  return database;
}

/** A Tandem contact for the matching tests: its email and phone, its HighLevel link, archived or not. */
export interface KeyedContact {
  key: { email: string | null; phone: string | null };
  /** The HighLevel id it is linked to; a second contact naming the same id stays unlinked. */
  linkedTo?: string;
  archived: boolean;
}

/** Creates the contacts in order (firstName `T<i>`), links and archives them as they say. */
export function seedKeyedContacts(d: Database, locationId: string, contacts: readonly KeyedContact[]): void {
  const linked = new Set<string>();
  contacts.forEach((c, i) => {
    const made = createContact(d.db, { locationId, fields: { ...emptyContact(), firstName: `T${i}`, email: c.key.email, phone: c.key.phone }, now: 100 + i, origin: 'remote' });
    if (c.linkedTo !== undefined && !linked.has(c.linkedTo)) {
      linked.add(c.linkedTo);
      insertLink(d.db, { locationId, contactId: made.id, highlevelId: c.linkedTo, base: made.fields, remoteUpdatedAt: 1000, now: 200 });
    }
    if (c.archived) archiveContact(d.db, { locationId, id: made.id, now: 300 + i, origin: 'remote' });
  });
}
