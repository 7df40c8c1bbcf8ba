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
  },
  (t) => [check('installations_status', sql`${t.status} in ('active', 'needs_reauth', 'paused', 'uninstalled')`)],
);
