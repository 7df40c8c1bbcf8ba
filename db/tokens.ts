// The token vault's table: sealed OAuth tokens per owner (a location or an agency company) and the
// row lock that makes one refresh per owner at a time across processes.
//
// Invariants:
// - Both tokens are sealed (server/security/token-cipher.ts) bound to `tokens:<row id>:access` /
//   `:refresh`, so a ciphertext copied to another row or column does not open.
// - `updated_at` is when the current pair was stored (issued); the lock and re-sealing leave it
//   alone, so `expires_at - updated_at` is the token's lifetime.
// - The lock is claimed and released by single conditional UPDATEs; whoever holds it is the only
//   writer of a refreshed pair (`storeRefreshed` checks the holder in the same statement).
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { preparedOnce } from './prepared.ts';
import { tokens } from './schema.ts';
import type { TokenCipher } from '../server/security/token-cipher.ts';
import type { TokenGrant } from '../server/highlevel/oauth.ts';

export type OwnerType = 'location' | 'company';

export interface TokenOwner {
  type: OwnerType;
  id: string;
}

/** The stored pair, opened. */
export interface StoredTokens {
  /** Row id, `location:<id>` or `company:<id>`. */
  id: string;
  owner: TokenOwner;
  companyId: string;
  accessToken: string;
  refreshToken: string | null;
  expiresAt: number;
  scopes: string[];
  /** When this pair was stored. */
  issuedAt: number;
  /** Either value is sealed with an older key (rewritten on the next refresh or by resealStale). */
  stale: boolean;
  /** The refresh token as stored, for compare-and-set writes (see markRefreshDead). */
  sealedRefreshToken: string | null;
}

/** The lock columns and timestamps without opening anything (for a waiter's polling). */
export interface TokenRowState {
  expiresAt: number;
  issuedAt: number;
  lockUntil: number | null;
  lockOwner: string | null;
}

export function tokenRowId(owner: TokenOwner): string {
  return `${owner.type}:${owner.id}`;
}

export function ownerOfGrant(grant: Pick<TokenGrant, 'userType' | 'locationId' | 'companyId'>): TokenOwner {
  if (grant.userType === 'Company') return { type: 'company', id: grant.companyId };
  if (!grant.locationId) throw new Error('a Location grant without a locationId cannot be stored');
  return { type: 'location', id: grant.locationId };
}

function binding(rowId: string, column: 'access' | 'refresh'): string {
  return `tokens:${rowId}:${column}`;
}

function sealedPair(cipher: TokenCipher, rowId: string, grant: Pick<TokenGrant, 'accessToken' | 'refreshToken'>) {
  return {
    accessToken: cipher.seal(grant.accessToken, binding(rowId, 'access')),
    refreshToken: grant.refreshToken === null ? null : cipher.seal(grant.refreshToken, binding(rowId, 'refresh')),
  };
}

/**
 * Stores a fresh grant (install, code exchange, minted location token) for its owner, replacing
 * any earlier pair and clearing the lock: a refresher still holding it then fails to store its
 * (now superseded) pair.
 */
export function saveGrant(db: Db, cipher: TokenCipher, grant: TokenGrant, now: number): TokenOwner {
  const owner = ownerOfGrant(grant);
  const id = tokenRowId(owner);
  const values = {
    ...sealedPair(cipher, id, grant),
    companyId: grant.companyId,
    expiresAt: grant.expiresAt,
    scopes: grant.scopes.join(' '),
    refreshLockUntil: null,
    refreshLockOwner: null,
    updatedAt: now,
  };
  db.insert(tokens)
    .values({ id, ownerType: owner.type, ownerId: owner.id, ...values })
    .onConflictDoUpdate({ target: tokens.id, set: values })
    .run();
  return owner;
}

/** Opens the stored pair; throws TokenCipherError when no configured key opens it. */
export function readTokens(db: Db, cipher: TokenCipher, owner: TokenOwner): StoredTokens | undefined {
  const id = tokenRowId(owner);
  // Read before every HighLevel request: prepared once (building and preparing it cost more than the read).
  const row = tokenById(db).get({ id });
  if (!row) return undefined;
  return {
    id,
    owner,
    companyId: row.companyId,
    accessToken: cipher.open(row.accessToken, binding(id, 'access')),
    refreshToken: row.refreshToken === null ? null : cipher.open(row.refreshToken, binding(id, 'refresh')),
    expiresAt: row.expiresAt,
    scopes: row.scopes.split(' ').filter(Boolean),
    issuedAt: row.updatedAt,
    stale: cipher.isStale(row.accessToken) || (row.refreshToken !== null && cipher.isStale(row.refreshToken)),
    sealedRefreshToken: row.refreshToken,
  };
}

const tokenById = preparedOnce((db) => db.select().from(tokens).where(eq(tokens.id, sql.placeholder('id'))).prepare());

export function tokenRowState(db: Db, owner: TokenOwner): TokenRowState | undefined {
  const row = db
    .select({ expiresAt: tokens.expiresAt, issuedAt: tokens.updatedAt, lockUntil: tokens.refreshLockUntil, lockOwner: tokens.refreshLockOwner })
    .from(tokens)
    .where(eq(tokens.id, tokenRowId(owner)))
    .get();
  return row;
}

export function hasTokens(db: Db, owner: TokenOwner): boolean {
  return tokenRowState(db, owner) !== undefined;
}

export function deleteTokens(db: Db, owner: TokenOwner): void {
  db.delete(tokens).where(eq(tokens.id, tokenRowId(owner))).run();
}

/** Uninstall from one location. */
export function deleteTokensOfLocation(db: Db, locationId: string): void {
  deleteTokens(db, { type: 'location', id: locationId });
}

/**
 * Claims the refresh lock of row `id` for `lockOwner` until `now + ttlMs`, in ONE conditional
 * UPDATE so two processes can never both win. True when this caller holds the lock.
 */
export function tryClaimRefresh(db: Db, id: string, lockOwner: string, now: number, ttlMs: number): boolean {
  const res = db
    .update(tokens)
    .set({ refreshLockUntil: now + ttlMs, refreshLockOwner: lockOwner })
    .where(and(eq(tokens.id, id), or(isNull(tokens.refreshLockUntil), lt(tokens.refreshLockUntil, now))))
    .run();
  return res.changes === 1;
}

/** Releases the lock if `lockOwner` still holds it (a no-op otherwise). */
export function releaseRefresh(db: Db, id: string, lockOwner: string): void {
  db.update(tokens)
    .set({ refreshLockUntil: null, refreshLockOwner: null })
    .where(and(eq(tokens.id, id), eq(tokens.refreshLockOwner, lockOwner)))
    .run();
}

/**
 * Writes the refreshed pair (sealed with the current key) and releases the lock in one statement,
 * only if `lockOwner` still holds the lock. False means the lock was lost (it expired and another
 * process claimed it, or a new install replaced the row) and nothing was written.
 */
export function storeRefreshed(db: Db, cipher: TokenCipher, id: string, lockOwner: string, grant: TokenGrant, now: number): boolean {
  const res = db
    .update(tokens)
    .set({
      ...sealedPair(cipher, id, grant),
      expiresAt: grant.expiresAt,
      scopes: grant.scopes.join(' '),
      companyId: grant.companyId,
      refreshLockUntil: null,
      refreshLockOwner: null,
      updatedAt: now,
    })
    .where(and(eq(tokens.id, id), eq(tokens.refreshLockOwner, lockOwner)))
    .run();
  return res.changes === 1;
}

/**
 * Fallback when the lock was lost while HighLevel answered (the process stalled past the lock's
 * TTL): the new pair is still the only valid one as long as the row holds the refresh token we
 * spent, so it is written if — and only if — that is still the case.
 */
export function storeRefreshedIfUnchanged(
  db: Db,
  cipher: TokenCipher,
  id: string,
  spentSealedRefresh: string,
  grant: TokenGrant,
  now: number,
): boolean {
  const res = db
    .update(tokens)
    .set({ ...sealedPair(cipher, id, grant), expiresAt: grant.expiresAt, scopes: grant.scopes.join(' '), companyId: grant.companyId, updatedAt: now })
    .where(and(eq(tokens.id, id), eq(tokens.refreshToken, spentSealedRefresh)))
    .run();
  return res.changes === 1;
}

/**
 * Forgets a refresh token HighLevel declared invalid ("Invalid grant"), so no process retries it:
 * later calls go straight to re-authorisation (or to minting, for an agency's location). The
 * access token stays. Compare-and-set on the dead value, so a pair stored meanwhile survives.
 */
export function markRefreshDead(db: Db, id: string, deadSealedRefresh: string): void {
  db.update(tokens)
    .set({ refreshToken: null })
    .where(and(eq(tokens.id, id), eq(tokens.refreshToken, deadSealedRefresh)))
    .run();
}

/**
 * Operator tool after a key rotation: re-seals every value still sealed with an older key, so the
 * old key can be dropped without waiting for each row's next refresh. Each row is rewritten only if
 * it did not change meanwhile (compare-and-set on both ciphertexts). Returns the rows rewritten.
 */
export function resealStale(db: Db, cipher: TokenCipher): number {
  let rewritten = 0;
  const rows = db.select({ id: tokens.id, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken }).from(tokens).all();
  for (const row of rows) {
    if (!cipher.isStale(row.accessToken) && (row.refreshToken === null || !cipher.isStale(row.refreshToken))) continue;
    const pair = sealedPair(cipher, row.id, {
      accessToken: cipher.open(row.accessToken, binding(row.id, 'access')),
      refreshToken: row.refreshToken === null ? null : cipher.open(row.refreshToken, binding(row.id, 'refresh')),
    });
    const res = db
      .update(tokens)
      .set(pair)
      .where(
        and(
          eq(tokens.id, row.id),
          eq(tokens.accessToken, row.accessToken),
          row.refreshToken === null ? isNull(tokens.refreshToken) : eq(tokens.refreshToken, row.refreshToken),
        ),
      )
      .run();
    rewritten += res.changes;
  }
  return rewritten;
}

/** Expiry per owner without opening anything (the operator CLI shows it). */
export function tokenExpiries(db: Db): { owner: TokenOwner; companyId: string; expiresAt: number; hasRefreshToken: boolean }[] {
  return db
    .select({ type: tokens.ownerType, id: tokens.ownerId, companyId: tokens.companyId, expiresAt: tokens.expiresAt, refreshToken: tokens.refreshToken })
    .from(tokens)
    .all()
    .map((r) => ({ owner: { type: r.type, id: r.id }, companyId: r.companyId, expiresAt: r.expiresAt, hasRefreshToken: r.refreshToken !== null }));
}
