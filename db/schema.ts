// Every table Tandem stores, in one file; migrations in db/migrations are generated from it
// (`npm run db:generate`). Every tenant table carries location_id.
import { sql } from 'drizzle-orm';
import { check, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

export const INSTALLATION_STATUSES = ['active', 'needs_reauth', 'paused', 'uninstalled'] as const;
export type InstallationStatus = (typeof INSTALLATION_STATUSES)[number];

/** One row per HighLevel location Tandem is (or was) installed on. */
export const installations = sqliteTable(
  'installations',
  {
    locationId: text('location_id').primaryKey(),
    companyId: text('company_id').notNull(),
    status: text('status', { enum: INSTALLATION_STATUSES }).notNull(),
    /** The agency's white-label domain from the INSTALL webhook; the panel may be framed from it. */
    whitelabelDomain: text('whitelabel_domain'),
    /** Epoch ms. */
    installedAt: integer('installed_at').notNull(),
    /** Epoch ms. */
    updatedAt: integer('updated_at').notNull(),
    /** The location's display name from HighLevel, for the panel header and the CLI. */
    locationName: text('location_name'),
    /** Why the installation needs re-authorisation or was paused, in plain words. */
    statusReason: text('status_reason'),
    /** Epoch ms of the last UNINSTALL; null while installed. */
    uninstalledAt: integer('uninstalled_at'),
  },
  (t) => [check('installations_status', sql`${t.status} in ('active', 'needs_reauth', 'paused', 'uninstalled')`)],
);

export const COMPANY_STATUSES = ['active', 'needs_reauth', 'uninstalled'] as const;
export type CompanyStatus = (typeof COMPANY_STATUSES)[number];

/** One row per agency (company) with a bulk install: its Company token mints location tokens. */
export const companies = sqliteTable(
  'companies',
  {
    companyId: text('company_id').primaryKey(),
    status: text('status', { enum: COMPANY_STATUSES }).notNull(),
    /** The agency chose "install to future locations": new locations are approved automatically. */
    installToFutureLocations: integer('install_to_future_locations', { mode: 'boolean' }).notNull(),
    whitelabelDomain: text('whitelabel_domain'),
    installedAt: integer('installed_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [check('companies_status', sql`${t.status} in ('active', 'needs_reauth', 'uninstalled')`)],
);

/**
 * OAuth tokens, one row per owner ("location:<id>" or "company:<id>"). Both tokens are sealed with
 * AES-256-GCM bound to (row id, column) — see server/security/token-cipher.ts. The refresh lock
 * columns make one refresh per owner at a time across processes: a refresher claims the row with
 * a conditional UPDATE, re-reads it, refreshes, and writes the new pair before releasing.
 */
export const tokens = sqliteTable('tokens', {
  id: text('id').primaryKey(),
  ownerType: text('owner_type', { enum: ['location', 'company'] }).notNull(),
  ownerId: text('owner_id').notNull(),
  companyId: text('company_id').notNull(),
  accessToken: text('access_token').notNull(),
  refreshToken: text('refresh_token'),
  /** Epoch ms at which the access token expires. */
  expiresAt: integer('expires_at').notNull(),
  scopes: text('scopes').notNull(),
  /** Epoch ms until which a refresher holds the row; null when free. */
  refreshLockUntil: integer('refresh_lock_until'),
  refreshLockOwner: text('refresh_lock_owner'),
  updatedAt: integer('updated_at').notNull(),
});

/**
 * Webhook inbox: every verified HighLevel event is stored here before it is acknowledged, so a
 * crash after the 200 loses nothing (HighLevel redelivers only on 429). Deduplicated by webhookId.
 */
export const webhookInbox = sqliteTable('webhook_inbox', {
  webhookId: text('webhook_id').primaryKey(),
  type: text('type').notNull(),
  locationId: text('location_id'),
  companyId: text('company_id'),
  /** The raw JSON body as received. */
  body: text('body').notNull(),
  receivedAt: integer('received_at').notNull(),
  /** Epoch ms when applied (or deliberately ignored); null while pending. */
  processedAt: integer('processed_at'),
  /** 'applied' | 'ignored' | 'failed' and why, for operators. */
  outcome: text('outcome'),
  attempts: integer('attempts').notNull().default(0),
  /** Epoch ms before which a failed event is not retried. */
  nextAttemptAt: integer('next_attempt_at'),
});
