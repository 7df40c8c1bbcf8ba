// API keys of Tandem's REST API, per location. Only the SHA-256 of a key is stored; the key itself
// ("tk_" + 32 base62 characters, ~190 bits) is returned once, when it is created. A key is found
// by its hash through the unique index, so no comparison ever runs over a secret.
import { createHash } from 'node:crypto';
import { and, desc, eq, isNull, lt, or } from 'drizzle-orm';
import type { Db } from './client.ts';
import { newId, randomBase62 } from './ids.ts';
import { apiKeys } from './schema.ts';

export type ApiKey = typeof apiKeys.$inferSelect;
/** What lists show: everything but the hash. */
export type ApiKeyInfo = Omit<ApiKey, 'hash'>;

export const API_KEY_PREFIX = 'tk_';
/** How much of a key lists show. */
const SHOWN_CHARS = 10;
/** lastUsedAt is written at most this often per key, so a busy client does not write on every call. */
export const LAST_USED_RESOLUTION_MS = 60_000;
const KEY_SHAPE = /^tk_[0-9A-Za-z]{32}$/;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function looksLikeApiKey(key: string): boolean {
  return KEY_SHAPE.test(key);
}

function info(row: ApiKey): ApiKeyInfo {
  const { hash: _hash, ...rest } = row;
  return rest;
}

/** A new key; `key` is the only time the plaintext exists outside the caller's hands. */
export function createApiKey(db: Db, input: { locationId: string; name: string; createdBy: string | null; now: number }): { apiKey: ApiKeyInfo; key: string } {
  const key = `${API_KEY_PREFIX}${randomBase62(32)}`;
  const row = {
    id: newId('k'),
    locationId: input.locationId,
    name: input.name.trim(),
    prefix: key.slice(0, SHOWN_CHARS),
    hash: hashApiKey(key),
    createdAt: input.now,
    createdBy: input.createdBy,
    lastUsedAt: null,
    revokedAt: null,
  };
  db.insert(apiKeys).values(row).run();
  return { apiKey: info(row), key };
}

/** The location's keys, newest first, revoked ones included (they say when). */
export function listApiKeys(db: Db, locationId: string): ApiKeyInfo[] {
  return db.select().from(apiKeys).where(eq(apiKeys.locationId, locationId)).orderBy(desc(apiKeys.createdAt), desc(apiKeys.id)).all().map(info);
}

export function getApiKey(db: Db, locationId: string, id: string): ApiKeyInfo | undefined {
  const row = db.select().from(apiKeys).where(and(eq(apiKeys.locationId, locationId), eq(apiKeys.id, id))).get();
  return row ? info(row) : undefined;
}

export function countActiveApiKeys(db: Db, locationId: string): number {
  return db.select({ id: apiKeys.id }).from(apiKeys).where(and(eq(apiKeys.locationId, locationId), isNull(apiKeys.revokedAt))).all().length;
}

/** Revokes a key of this location (idempotent); undefined when the location has no such key. */
export function revokeApiKey(db: Db, input: { locationId: string; id: string; now: number }): ApiKeyInfo | undefined {
  db.update(apiKeys)
    .set({ revokedAt: input.now })
    .where(and(eq(apiKeys.locationId, input.locationId), eq(apiKeys.id, input.id), isNull(apiKeys.revokedAt)))
    .run();
  return getApiKey(db, input.locationId, input.id);
}

/**
 * The live key a presented secret names, or undefined (unknown, malformed or revoked). Records the
 * use, at most once per LAST_USED_RESOLUTION_MS.
 */
export function authenticateApiKey(db: Db, key: string, now: number): ApiKeyInfo | undefined {
  if (!looksLikeApiKey(key)) return undefined;
  const hash = hashApiKey(key);
  const row = db.select().from(apiKeys).where(eq(apiKeys.hash, hash)).get();
  if (!row || row.revokedAt !== null) return undefined;
  if (row.lastUsedAt === null || row.lastUsedAt <= now - LAST_USED_RESOLUTION_MS) {
    db.update(apiKeys)
      .set({ lastUsedAt: now })
      .where(and(eq(apiKeys.id, row.id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, now - LAST_USED_RESOLUTION_MS + 1))))
      .run();
    row.lastUsedAt = now;
  }
  return info(row);
}

/** Whether this plaintext key is still a live key of the location (the sandbox keeps its key across restarts). */
export function isLiveApiKey(db: Db, locationId: string, key: string): boolean {
  if (!looksLikeApiKey(key)) return false;
  const row = db.select().from(apiKeys).where(eq(apiKeys.hash, hashApiKey(key))).get();
  return !!row && row.locationId === locationId && row.revokedAt === null;
}
