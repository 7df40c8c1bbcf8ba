// The Sync tab's settings per location and their audit trail: the only code that touches
// sync_settings and settings_audit. A location without a row has the defaults.
import { and, asc, desc, eq, gt, max, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { preparedOnce, transaction } from './prepared.ts';
import { settingsAudit, syncSettings, type Direction } from './schema.ts';

export type { Direction };

export interface SyncSettings {
  locationId: string;
  /** Whether contacts created in Tandem are created in HighLevel ('bidirectional') or stay ('inbound'). */
  creationDirection: Direction;
  /** Whether Tandem's edits reach HighLevel ('bidirectional') or HighLevel wins ('inbound'). */
  updateDirection: Direction;
  /** Paused by an admin on the panel: the loop does nothing for the location. */
  paused: boolean;
  /** Epoch ms of the last change; null while the defaults were never changed. */
  updatedAt: number | null;
  /** Id of the user who made the last change. */
  updatedBy: string | null;
}

export const DEFAULT_SYNC_SETTINGS = {
  creationDirection: 'bidirectional',
  updateDirection: 'inbound',
  paused: false,
} as const satisfies Pick<SyncSettings, 'creationDirection' | 'updateDirection' | 'paused'>;

export type SyncSettingsPatch = Partial<Pick<SyncSettings, 'creationDirection' | 'updateDirection' | 'paused'>>;

/** The names settings_audit records, one per setting. */
export type SettingName = keyof SyncSettingsPatch;
const SETTING_NAMES: readonly SettingName[] = ['creationDirection', 'updateDirection', 'paused'];

export interface SettingsChange {
  id: number;
  locationId: string;
  userId: string;
  userName: string | null;
  setting: string;
  oldValue: string | null;
  newValue: string;
  /** Epoch ms. */
  at: number;
}

/** Works inside a transaction too (anything that can select). */
/** Prepared once per connection: every pass of a location's loop reads the settings. */
const settingsOf = preparedOnce((db) => db.select().from(syncSettings).where(eq(syncSettings.locationId, sql.placeholder('locationId'))).prepare());

export function getSyncSettings(db: Db, locationId: string): SyncSettings {
  const row = settingsOf(db).get({ locationId });
  if (!row) return { locationId, ...DEFAULT_SYNC_SETTINGS, updatedAt: null, updatedBy: null };
  return {
    locationId,
    creationDirection: row.creationDirection,
    updateDirection: row.updateDirection,
    paused: row.paused,
    updatedAt: row.updatedAt,
    updatedBy: row.updatedBy,
  };
}

/**
 * Applies a patch and records one audit row per setting whose value actually changed, in one
 * transaction (so the history never disagrees with the settings). A patch that changes nothing
 * writes nothing. Returns the settings as they are afterwards. `check` runs first in the same
 * transaction, on the settings as they are: what it reads cannot change before the write, and a
 * throw from it saves nothing.
 */
export function updateSyncSettings(
  db: Db,
  input: { locationId: string; patch: SyncSettingsPatch; user: { id: string; name: string | null }; now: number; check?: (current: SyncSettings) => void },
): SyncSettings {
  const { locationId, patch, user, now, check } = input;
  return transaction(db, () => {
    const current = getSyncSettings(db, locationId);
    check?.(current);
    const changed = SETTING_NAMES.filter((name) => patch[name] !== undefined && patch[name] !== current[name]);
    if (changed.length === 0) return current;
    const next = {
      creationDirection: patch.creationDirection ?? current.creationDirection,
      updateDirection: patch.updateDirection ?? current.updateDirection,
      paused: patch.paused ?? current.paused,
      updatedAt: now,
      updatedBy: user.id,
    };
    db.insert(syncSettings)
      .values({ locationId, ...next })
      .onConflictDoUpdate({ target: syncSettings.locationId, set: next })
      .run();
    db.insert(settingsAudit)
      .values(
        changed.map((setting) => ({
          locationId,
          userId: user.id,
          userName: user.name,
          setting,
          oldValue: String(current[setting]),
          newValue: String(next[setting]),
          at: now,
        })),
      )
      .run();
    return { locationId, ...next };
  });
}

/** The latest changes to a location's settings, newest first. */
export function settingsHistory(db: Db, locationId: string, limit = 20): SettingsChange[] {
  return db
    .select()
    .from(settingsAudit)
    .where(eq(settingsAudit.locationId, locationId))
    .orderBy(desc(settingsAudit.at), desc(settingsAudit.id))
    .limit(limit)
    .all();
}

/**
 * The location's settings revision: the id of its latest audited change (0 before any). Ids only
 * grow, whatever the clock does, so a draft that remembers one can ask what changed after it.
 */
export function settingsRevision(db: Db, locationId: string): number {
  return db.select({ id: max(settingsAudit.id) }).from(settingsAudit).where(eq(settingsAudit.locationId, locationId)).get()?.id ?? 0;
}

/** The location's settings changes after revision `afterId`, oldest first. */
export function settingsChangedSince(db: Db, locationId: string, afterId: number): SettingsChange[] {
  return db
    .select()
    .from(settingsAudit)
    .where(and(eq(settingsAudit.locationId, locationId), gt(settingsAudit.id, afterId)))
    .orderBy(asc(settingsAudit.id))
    .all();
}
