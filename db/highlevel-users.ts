// HighLevel users as last seen per location, and their pairing with Tandem users (contact owners
// travel as owners). The only code that touches highlevel_users.
import { and, eq, notInArray, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { preparedOnce, transaction } from './prepared.ts';
import { highlevelUsers, users } from './schema.ts';

export interface SeenHighLevelUser {
  id: string;
  email: string | null;
  name: string | null;
  active: boolean;
  deleted: boolean;
  /** HighLevel's role (admin, user) when the listing gave one; absent: keep what is stored. */
  role?: string | null;
}

export type HighLevelUserRow = typeof highlevelUsers.$inferSelect;

const lower = (email: string | null) => (email?.trim() ? email.trim().toLowerCase() : null);

/**
 * Records the location's HighLevel users as just listed. Users missing from a complete list are
 * marked deleted (kept, so an owner id seen on an old contact still has a name). Each live one is
 * paired with the active Tandem user of the same email (case-insensitive) when there is one, unless
 * another live HighLevel user has that email too: the email cannot tell which of them is the person.
 */
export function upsertHighLevelUsers(db: Db, locationId: string, seen: SeenHighLevelUser[], now: number, opts: { complete?: boolean } = {}): void {
  transaction(db, () => {
    for (const u of seen) {
      const values = {
        email: u.email?.trim() || null,
        emailLower: lower(u.email),
        name: u.name?.trim() || null,
        active: u.active && !u.deleted,
        deleted: u.deleted,
        ...(u.role !== undefined ? { role: u.role } : {}),
        updatedAt: now,
      };
      db.insert(highlevelUsers)
        .values({ locationId, highlevelId: u.id, ...values, userId: null })
        .onConflictDoUpdate({ target: [highlevelUsers.locationId, highlevelUsers.highlevelId], set: values })
        .run();
    }
    if (opts.complete) {
      const ids = seen.map((u) => u.id);
      db.update(highlevelUsers)
        .set({ deleted: true, active: false, updatedAt: now })
        .where(and(eq(highlevelUsers.locationId, locationId), ids.length ? notInArray(highlevelUsers.highlevelId, ids) : undefined))
        .run();
    }
    // An email match pairs; no match keeps whatever pairing the row had. Only live users pair (see
    // pairs()): a deactivated or deleted user keeps the row's pairing until Sync users clears it.
    const shared = sharedEmails(listHighLevelUsers(db, locationId));
    for (const u of seen) {
      const emailLower = lower(u.email);
      if (!emailLower || !u.active || u.deleted || shared.has(emailLower)) continue;
      const paired = db.select({ id: users.id }).from(users).where(and(eq(users.locationId, locationId), eq(users.emailLower, emailLower), eq(users.active, true))).get();
      if (!paired) continue;
      db.update(highlevelUsers)
        .set({ userId: paired.id })
        .where(and(eq(highlevelUsers.locationId, locationId), eq(highlevelUsers.highlevelId, u.id)))
        .run();
    }
  });
}

const isLive = (r: HighLevelUserRow) => r.active && !r.deleted;

/** Emails (lowercase) that more than one live HighLevel user of the location has. */
function sharedEmails(rows: HighLevelUserRow[]): Set<string> {
  const seen = new Set<string>();
  const shared = new Set<string>();
  for (const r of rows) {
    if (!isLive(r) || !r.emailLower) continue;
    if (seen.has(r.emailLower)) shared.add(r.emailLower);
    seen.add(r.emailLower);
  }
  return shared;
}

// Prepared once per connection: every pass of a location's loop maps owners both ways.
const usersOf = preparedOnce((db) =>
  db.select().from(highlevelUsers).where(eq(highlevelUsers.locationId, sql.placeholder('locationId'))).orderBy(highlevelUsers.highlevelId).prepare(),
);
const activeTandemUsers = preparedOnce((db) =>
  db
    .select({ id: users.id, emailLower: users.emailLower })
    .from(users)
    .where(and(eq(users.locationId, sql.placeholder('locationId')), eq(users.active, true)))
    .prepare(),
);

export function listHighLevelUsers(db: Db, locationId: string): HighLevelUserRow[] {
  return usersOf(db).all({ locationId });
}

// Prepared once per connection: every panel request asks it (server/auth/session.ts).
const standingOf = preparedOnce((db) =>
  db
    .select({ active: highlevelUsers.active, deleted: highlevelUsers.deleted, role: highlevelUsers.role })
    .from(highlevelUsers)
    .where(and(eq(highlevelUsers.locationId, sql.placeholder('locationId')), eq(highlevelUsers.highlevelId, sql.placeholder('highlevelId'))))
    .prepare(),
);

/** Whether Tandem has listed the location's HighLevel users at least once (one row is enough). */
export function highLevelUsersListed(db: Db, locationId: string): boolean {
  return anyListed(db).get({ locationId }) !== undefined;
}

const anyListed = preparedOnce((db) =>
  db.select({ one: sql<number>`1` }).from(highlevelUsers).where(eq(highlevelUsers.locationId, sql.placeholder('locationId'))).limit(1).prepare(),
);

/**
 * The user as the location's last listing of HighLevel users had it: `inactive` when deactivated or
 * deleted (a user dropped from the location's list counts as deleted), and its role when the listing
 * gave one. Undefined for a user never listed there, such as an agency user HighLevel does not list
 * per location: Tandem knows nothing about them.
 */
export function listedHighLevelUser(db: Db, locationId: string, highlevelId: string): { inactive: boolean; role: string | null } | undefined {
  const row = standingOf(db).get({ locationId, highlevelId });
  return row && { inactive: !row.active || row.deleted, role: row.role };
}

/**
 * Pairs as of now: a stored pairing, else the Tandem user with the same email. Computed at read
 * time so a Tandem user created after the HighLevel users were listed pairs at once. Only live
 * users pair: a HighLevel user deleted or deactivated, or a deactivated Tandem user, owns nothing
 * new on the other side (Tandem refuses deactivated users as owners; Sync users unpairs them). Nor
 * do live HighLevel users who share an email (in any case): which of them is the person is unknown,
 * so a pairing one of them has (by that email) is no longer trusted either.
 */
function pairs(db: Db, locationId: string): { highlevelId: string; userId: string }[] {
  const tandem = new Map(activeTandemUsers(db).all({ locationId }).map((u) => [u.emailLower, u.id]));
  const known = new Set(tandem.values());
  const rows = listHighLevelUsers(db, locationId);
  const shared = sharedEmails(rows);
  const out: { highlevelId: string; userId: string }[] = [];
  for (const hl of rows) {
    if (!isLive(hl) || (hl.emailLower && shared.has(hl.emailLower))) continue;
    const userId = hl.userId && known.has(hl.userId) ? hl.userId : hl.emailLower ? tandem.get(hl.emailLower) : undefined;
    if (userId) out.push({ highlevelId: hl.highlevelId, userId });
  }
  return out;
}

/** HighLevel user id → paired Tandem user id, for every pair as of now. */
export function ownerPairs(db: Db, locationId: string): Map<string, string> {
  return new Map(pairs(db, locationId).map((p) => [p.highlevelId, p.userId]));
}

/** HighLevel user id → paired Tandem user id, or null (an unmatched owner). */
export function ownerMapFor(db: Db, locationId: string): (highlevelUserId: string) => string | null {
  const map = ownerPairs(db, locationId);
  return (id) => map.get(id) ?? null;
}

/** Tandem user id → paired HighLevel user id, or null. Deleted HighLevel users are not owners. */
export function userMapFor(db: Db, locationId: string): (tandemUserId: string) => string | null {
  const deleted = new Set(listHighLevelUsers(db, locationId).filter((u) => u.deleted).map((u) => u.highlevelId));
  const map = new Map<string, string>();
  for (const p of pairs(db, locationId)) if (!deleted.has(p.highlevelId) && !map.has(p.userId)) map.set(p.userId, p.highlevelId);
  return (id) => map.get(id) ?? null;
}

/**
 * Records one HighLevel user as listed with exactly this pairing (null unpairs): what Sync users
 * decided, unlike upsertHighLevelUsers which only ever adds an email match.
 */
export function saveHighLevelUserPairing(db: Db, locationId: string, user: SeenHighLevelUser, userId: string | null, now: number): void {
  const values = {
    email: user.email?.trim() || null,
    emailLower: lower(user.email),
    name: user.name?.trim() || null,
    active: user.active && !user.deleted,
    deleted: user.deleted,
    ...(user.role !== undefined ? { role: user.role } : {}),
    userId,
    updatedAt: now,
  };
  db.insert(highlevelUsers)
    .values({ locationId, highlevelId: user.id, ...values })
    .onConflictDoUpdate({ target: [highlevelUsers.locationId, highlevelUsers.highlevelId], set: values })
    .run();
}

/** Why a HighLevel user who owns contacts has no paired Tandem user. */
export type HighLevelOwnerWhy = 'deactivated' | 'deleted' | 'unknown' | 'no-email' | 'shared-email' | 'tandem-deactivated' | 'no-tandem-user';
/** Why a Tandem user who owns contacts has no paired HighLevel user. */
export type TandemOwnerWhy = 'deactivated' | 'highlevel-deactivated' | 'highlevel-deleted' | 'shared-email' | 'no-highlevel-user' | 'not-paired';

/**
 * Why owners are unpaired, as pairs() sees the location now: for the status strip's notice, which
 * says it per owner (ownerMapFor / userMapFor say which owners are unpaired).
 */
export function unpairedWhy(db: Db, locationId: string): { highlevel(id: string): HighLevelOwnerWhy; tandem(id: string): TandemOwnerWhy } {
  const rows = listHighLevelUsers(db, locationId);
  const tandem = db.select({ id: users.id, emailLower: users.emailLower, active: users.active }).from(users).where(eq(users.locationId, locationId)).all();
  const tandemById = new Map(tandem.map((u) => [u.id, u]));
  const tandemByEmail = new Map(tandem.map((u) => [u.emailLower, u]));
  const rowById = new Map(rows.map((r) => [r.highlevelId, r]));
  const shared = sharedEmails(rows);
  return {
    highlevel(id) {
      const r = rowById.get(id);
      if (!r) return 'unknown';
      if (r.deleted) return 'deleted';
      if (!r.active) return 'deactivated';
      if (!r.emailLower) return 'no-email';
      if (shared.has(r.emailLower)) return 'shared-email';
      const paired = r.userId ? tandemById.get(r.userId) : undefined;
      if (paired?.active === false || tandemByEmail.get(r.emailLower)?.active === false) return 'tandem-deactivated';
      return 'no-tandem-user';
    },
    tandem(id) {
      const u = tandemById.get(id);
      if (!u) return 'no-highlevel-user';
      if (!u.active) return 'deactivated';
      if (shared.has(u.emailLower)) return 'shared-email';
      if (rows.some((r) => isLive(r) && r.emailLower === u.emailLower)) return 'not-paired';
      // Their HighLevel user (paired before, or of the same email) is no longer live.
      const gone = rows.find((r) => r.userId === id || r.emailLower === u.emailLower);
      if (gone) return gone.deleted ? 'highlevel-deleted' : 'highlevel-deactivated';
      return 'no-highlevel-user';
    },
  };
}
