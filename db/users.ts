// Tandem's users per location (contact owners), unique by email case-insensitively within a
// location. The only code that touches the users table.
import { and, asc, eq } from 'drizzle-orm';
import type { Db } from './client.ts';
import { newId } from './ids.ts';
import type { DbOrTx } from './outbox.ts';
import { users } from './schema.ts';
import { transaction } from './prepared.ts';

export type User = typeof users.$inferSelect;

/** Another user of the location already has this email. */
export class UserEmailTakenError extends Error {
  constructor(readonly existingId: string) {
    super('a user with this email already exists');
    this.name = 'UserEmailTakenError';
  }
}

export function getUser(db: DbOrTx, locationId: string, id: string): User | undefined {
  return db.select().from(users).where(and(eq(users.locationId, locationId), eq(users.id, id))).get();
}

export function findUserByEmail(db: DbOrTx, locationId: string, email: string): User | undefined {
  return db.select().from(users).where(and(eq(users.locationId, locationId), eq(users.emailLower, email.trim().toLowerCase()))).get();
}

/** The location's users by name; deactivated ones only when asked. */
export function listUsers(db: Db, locationId: string, opts: { includeInactive?: boolean; email?: string } = {}): User[] {
  return db
    .select()
    .from(users)
    .where(
      and(
        eq(users.locationId, locationId),
        opts.includeInactive ? undefined : eq(users.active, true),
        opts.email !== undefined ? eq(users.emailLower, opts.email.trim().toLowerCase()) : undefined,
      ),
    )
    .orderBy(asc(users.name), asc(users.id))
    .all();
}

/** Throws UserEmailTakenError when the email is taken in the location. */
export function createUser(db: Db, input: { locationId: string; name: string; email: string; now: number; active?: boolean }): User {
  const email = input.email.trim();
  return transaction(db, () => {
    const taken = findUserByEmail(db, input.locationId, email);
    if (taken) throw new UserEmailTakenError(taken.id);
    const id = newId('u');
    db.insert(users)
      .values({
        id,
        locationId: input.locationId,
        name: input.name.trim(),
        email,
        emailLower: email.toLowerCase(),
        active: input.active ?? true,
        createdAt: input.now,
        updatedAt: input.now,
      })
      .run();
    return getUser(db, input.locationId, id)!;
  });
}

/** Name and email; undefined when the user is not in the location. Throws UserEmailTakenError. */
export function updateUser(db: Db, input: { locationId: string; id: string; patch: { name?: string; email?: string }; now: number }): User | undefined {
  return transaction(db, () => {
    const current = getUser(db, input.locationId, input.id);
    if (!current) return undefined;
    const name = input.patch.name?.trim() ?? current.name;
    const email = input.patch.email?.trim() ?? current.email;
    if (email.toLowerCase() !== current.emailLower) {
      const taken = findUserByEmail(db, input.locationId, email);
      if (taken) throw new UserEmailTakenError(taken.id);
    }
    if (name === current.name && email === current.email) return current;
    db.update(users).set({ name, email, emailLower: email.toLowerCase(), updatedAt: input.now }).where(eq(users.id, current.id)).run();
    return getUser(db, input.locationId, current.id)!;
  });
}

/** Deactivates or reactivates; undefined when the user is not in the location. */
export function setUserActive(db: Db, input: { locationId: string; id: string; active: boolean; now: number }): User | undefined {
  const current = getUser(db, input.locationId, input.id);
  if (!current) return undefined;
  if (current.active === input.active) return current;
  db.update(users).set({ active: input.active, updatedAt: input.now }).where(eq(users.id, current.id)).run();
  return getUser(db, input.locationId, current.id);
}

export function deactivateUser(db: Db, input: { locationId: string; id: string; now: number }): User | undefined {
  return setUserActive(db, { ...input, active: false });
}

export function reactivateUser(db: Db, input: { locationId: string; id: string; now: number }): User | undefined {
  return setUserActive(db, { ...input, active: true });
}
