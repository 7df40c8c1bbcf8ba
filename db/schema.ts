// Every table Tandem stores, in one file; migrations in db/migrations are generated from it
// (`npm run db:generate`). Every tenant table carries location_id.
import { sql } from 'drizzle-orm';
import { check, index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

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
}, (t) => [
  // Pending events only (the inbox processor's and the sync loops' queues), in arrival order: the
  // processed rows kept for a week of deduplication are never scanned.
  index('webhook_inbox_pending').on(t.receivedAt, t.webhookId).where(sql`${t.processedAt} is null`),
  // The inbox processor's due read and a sync loop's queue read, each over its own rows only: events
  // queued for a stopped or throttled loop stay pending, and walking them on every pass cost more
  // than the webhooks' inserts. The conditions are literal SQL, repeated word for word in the
  // queries of db/webhook-inbox.ts, so that SQLite can match the queries to these partial indexes.
  index('webhook_inbox_due').on(t.receivedAt, t.webhookId).where(sql`${t.processedAt} is null and (${t.outcome} is null or ${t.outcome} <> 'queued')`),
  index('webhook_inbox_queued').on(t.locationId, t.receivedAt, t.webhookId).where(sql`${t.processedAt} is null and ${t.outcome} = 'queued'`),
]);

// ---- Tandem's contact book and continuous sync (issue 4) ------------------------------------------

/**
 * Tandem's own contacts, per location. Field values are the normalised form of
 * server/sync/contact-model.ts; tags and custom fields are JSON. A contact deleted in HighLevel is
 * archived (archived_at), never dropped, so it can be restored.
 */
export const contacts = sqliteTable(
  'contacts',
  {
    id: text('id').primaryKey(),
    locationId: text('location_id').notNull(),
    firstName: text('first_name'),
    lastName: text('last_name'),
    email: text('email'),
    /** Lowercased email for case-insensitive matching. */
    emailLower: text('email_lower'),
    phone: text('phone'),
    companyName: text('company_name'),
    address1: text('address1'),
    city: text('city'),
    state: text('state'),
    postalCode: text('postal_code'),
    country: text('country'),
    website: text('website'),
    timezone: text('timezone'),
    dateOfBirth: text('date_of_birth'),
    source: text('source'),
    /** JSON string[] (lowercase, unique). */
    tags: text('tags').notNull().default('[]'),
    dnd: integer('dnd', { mode: 'boolean' }).notNull().default(false),
    ownerUserId: text('owner_user_id'),
    /** JSON object: HighLevel custom field id → value. */
    customFields: text('custom_fields').notNull().default('{}'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    archivedAt: integer('archived_at'),
    /** Bumped on every write; API clients may send it back for optimistic concurrency. */
    version: integer('version').notNull().default(1),
    /**
     * JSON object: field key (`city`, `customFields.<id>`) → epoch ms of its latest change made in
     * Tandem (origin 'local'); null until the first. A conflict with HighLevel under Bi-directional
     * updates goes to the more recent change of that field, not of the contact.
     */
    fieldChangedAt: text('field_changed_at'),
  },
  (t) => [
    index('contacts_location_updated').on(t.locationId, t.updatedAt, t.id),
    index('contacts_location_email').on(t.locationId, t.emailLower),
    index('contacts_location_phone').on(t.locationId, t.phone),
  ],
);

/** Tandem's users per location: contact owners. Paired with HighLevel users by email. */
export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    locationId: text('location_id').notNull(),
    name: text('name').notNull(),
    email: text('email').notNull(),
    emailLower: text('email_lower').notNull(),
    active: integer('active', { mode: 'boolean' }).notNull().default(true),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('users_location_email').on(t.locationId, t.emailLower)],
);

/**
 * The link between a Tandem contact and its HighLevel contact, with the sync ledger: `base` holds
 * the field values both sides last agreed on (JSON ContactFields), so merges are three-way and an
 * echo of Tandem's own write is recognised. A HighLevel deletion leaves a tombstone
 * (remote_deleted_at) so a late update never resurrects the contact.
 */
export const contactLinks = sqliteTable(
  'contact_links',
  {
    contactId: text('contact_id').primaryKey(),
    locationId: text('location_id').notNull(),
    highlevelId: text('highlevel_id').notNull(),
    base: text('base').notNull(),
    /** HighLevel's dateUpdated (epoch ms) of the version the base reflects. */
    remoteUpdatedAt: integer('remote_updated_at'),
    remoteDeletedAt: integer('remote_deleted_at'),
    linkedAt: integer('linked_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('contact_links_location_remote').on(t.locationId, t.highlevelId)],
);

/** HighLevel users as last seen, per location, and which Tandem user each is paired with. */
export const highlevelUsers = sqliteTable(
  'highlevel_users',
  {
    locationId: text('location_id').notNull(),
    highlevelId: text('highlevel_id').notNull(),
    email: text('email'),
    emailLower: text('email_lower'),
    name: text('name'),
    active: integer('active', { mode: 'boolean' }).notNull().default(true),
    deleted: integer('deleted', { mode: 'boolean' }).notNull().default(false),
    /**
     * HighLevel's role for the user (`roles.role`: admin or user) as last listed; null when the
     * listing gave none. The panel's admin rights follow it (server/auth/session.ts panelAccess).
     */
    role: text('role'),
    /** The paired Tandem user, or null when unpaired. */
    userId: text('user_id'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('highlevel_users_pk').on(t.locationId, t.highlevelId),
    index('highlevel_users_user').on(t.locationId, t.userId),
  ],
);

/**
 * Outbox of Tandem-side changes to send to HighLevel, written in the same transaction as the
 * Tandem write and coalesced per contact: a row says "this contact changed locally"; the location's
 * loop merges its current values against the ledger and sends only the differences.
 */
export const outbox = sqliteTable(
  'outbox',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    locationId: text('location_id').notNull(),
    contactId: text('contact_id').notNull(),
    /**
     * 'upsert' (create or update), 'fill' (a Tandem contact just linked to a HighLevel contact by
     * email or phone: only HighLevel's empty fields are filled, as Contact creation allows) or
     * 'archive' (deleted in Tandem).
     */
    kind: text('kind', { enum: ['upsert', 'fill', 'archive'] }).notNull(),
    status: text('status', { enum: ['pending', 'failed'] }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at').notNull(),
    lastError: text('last_error'),
    /**
     * Set on a row failed for good because another contact holds its email or phone: that holder's
     * HighLevel contact id. When the holder goes or changes (db/outbox.ts releaseRefusals), the row
     * is tried again by itself. Null on every other row.
     */
    refusedBy: text('refused_by'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('outbox_location_contact').on(t.locationId, t.contactId),
    index('outbox_due').on(t.locationId, t.status, t.nextAttemptAt),
  ],
);

export const DIRECTIONS = ['bidirectional', 'inbound'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** The Sync tab's settings per location (defaults: create both ways, HighLevel wins updates). */
export const syncSettings = sqliteTable('sync_settings', {
  locationId: text('location_id').primaryKey(),
  creationDirection: text('creation_direction', { enum: DIRECTIONS }).notNull().default('bidirectional'),
  updateDirection: text('update_direction', { enum: DIRECTIONS }).notNull().default('inbound'),
  paused: integer('paused', { mode: 'boolean' }).notNull().default(false),
  updatedAt: integer('updated_at').notNull(),
  updatedBy: text('updated_by'),
});

/** Who changed which setting, when, from what to what. */
export const settingsAudit = sqliteTable(
  'settings_audit',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    locationId: text('location_id').notNull(),
    userId: text('user_id').notNull(),
    userName: text('user_name'),
    setting: text('setting').notNull(),
    oldValue: text('old_value'),
    newValue: text('new_value').notNull(),
    at: integer('at').notNull(),
  },
  (t) => [index('settings_audit_location').on(t.locationId, t.at)],
);

/**
 * Per-location sync state, the machine's view (next step, cursors) apart from what the panel shows:
 * the reconciliation cursor (dateUpdated, inclusive, with the ids already seen at that instant),
 * the last full sweep, the latest change each way and the latest error in plain words.
 */
export const syncState = sqliteTable('sync_state', {
  locationId: text('location_id').primaryKey(),
  /** JSON PullCursor (db/sync-state.ts): { dateUpdated, seenIds, settledTo, run } of the incremental pull. */
  pullCursor: text('pull_cursor'),
  lastFullSweepAt: integer('last_full_sweep_at'),
  nextPullAt: integer('next_pull_at'),
  lastInboundAt: integer('last_inbound_at'),
  lastOutboundAt: integer('last_outbound_at'),
  lastError: text('last_error'),
  lastErrorAt: integer('last_error_at'),
  /**
   * JSON { remote: HighLevel user ids, local: Tandem user ids }: owners that could not travel, as
   * far as the loop knows (db/sync-state.ts), behind the status strip's owner notice.
   */
  unmatchedOwners: text('unmatched_owners'),
  updatedAt: integer('updated_at').notNull(),
});

/**
 * The location's contact custom fields as HighLevel last listed them (server/sync/supervisor.ts),
 * one row per location: `definitions` is JSON HighLevelCustomField[] (server/highlevel/contacts.ts).
 * The REST API checks custom field writes against them (db/custom-fields.ts). `listedAt` is null
 * until a listing succeeded; `problem` says in plain words why the latest one failed (a scope the
 * install did not grant), null once one succeeds.
 */
export const customFieldDefinitions = sqliteTable('custom_field_definitions', {
  locationId: text('location_id').primaryKey(),
  definitions: text('definitions').notNull().default('[]'),
  listedAt: integer('listed_at'),
  problem: text('problem'),
  problemAt: integer('problem_at'),
  /**
   * The latest listing was refused (401/403: the install's token lacks the scope): it stays so
   * until the location's token is replaced (installed again), unlike a passing failure.
   */
  problemRefused: integer('problem_refused', { mode: 'boolean' }).notNull().default(false),
  updatedAt: integer('updated_at').notNull(),
});

/** API keys of Tandem's REST API: only a SHA-256 hash is stored; the key is shown once. */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    locationId: text('location_id').notNull(),
    name: text('name').notNull(),
    /** The first characters of the key, shown in lists so admins can tell keys apart. */
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    createdAt: integer('created_at').notNull(),
    createdBy: text('created_by'),
    lastUsedAt: integer('last_used_at'),
    revokedAt: integer('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_hash').on(t.hash), index('api_keys_location').on(t.locationId)],
);

// ---- One-time operations (issue 5) ----------------------------------------------------------------

export const OPERATION_KINDS = ['push', 'pull', 'sync_users', 'undo'] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

/**
 * previewing → previewed → (confirm) running → completed | cancelled | failed;
 * previewing | previewed → discarded (closed, replaced or expired) | failed (the preview failed).
 */
export const OPERATION_STATUSES = ['previewing', 'previewed', 'running', 'completed', 'cancelled', 'failed', 'discarded'] as const;
export type OperationStatus = (typeof OPERATION_STATUSES)[number];

/**
 * One-time operations (Push contacts, Pull contacts, Sync users, and the undo of a run): a durable
 * job per row. The preview is stored as shown to the admin; a confirmed run checkpoints after every
 * page (`checkpoint`), holds a lease while a process works on it (so a restart resumes it and two
 * processes never run it at once), and ends with a summary. At most one unfinished operation per
 * location (partial unique index).
 */
export const operations = sqliteTable(
  'operations',
  {
    id: text('id').primaryKey(),
    locationId: text('location_id').notNull(),
    kind: text('kind', { enum: OPERATION_KINDS }).notNull(),
    /** For an undo: the run it takes back. */
    undoOf: text('undo_of'),
    status: text('status', { enum: OPERATION_STATUSES }).notNull(),
    /** The panel user who asked for it (id and name from the verified session). */
    requestedBy: text('requested_by').notNull(),
    requestedByName: text('requested_by_name'),
    createdAt: integer('created_at').notNull(),
    previewedAt: integer('previewed_at'),
    confirmedAt: integer('confirmed_at'),
    finishedAt: integer('finished_at'),
    cancelRequestedAt: integer('cancel_requested_at'),
    /** JSON Preview (server/sync/operations/types.ts). */
    preview: text('preview'),
    /** JSON Progress, updated as the run advances. */
    progress: text('progress'),
    /** JSON checkpoint of the handler (where to resume). */
    checkpoint: text('checkpoint'),
    /** Why it failed, or why a preview was discarded without the admin closing it, in plain words. */
    error: text('error'),
    /** Which process works on it, until when (epoch ms); renewed while it runs. */
    leaseOwner: text('lease_owner'),
    leaseUntil: integer('lease_until'),
    /** The completed undo that took this run back. */
    undoneBy: text('undone_by'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('operations_one_active')
      .on(t.locationId)
      .where(sql`${t.status} in ('previewing', 'previewed', 'running')`),
    index('operations_location_created').on(t.locationId, t.createdAt),
    check('operations_status', sql`${t.status} in ('previewing', 'previewed', 'running', 'completed', 'cancelled', 'failed', 'discarded')`),
  ],
);

/**
 * What a run did to each record (contact or user), keyed so a resumed run never does it twice.
 * `before` holds the values the run overwrote (what an undo restores) and is written BEFORE the
 * HighLevel write it describes (state 'pending'), so a crash between the write and its local commit
 * still knows what was there; `after` what it wrote.
 */
export const operationItems = sqliteTable(
  'operation_items',
  {
    operationId: text('operation_id').notNull(),
    /** The record: a Tandem contact id, `hl:<HighLevel contact id>`, or `user:<…>`. */
    key: text('key').notNull(),
    locationId: text('location_id').notNull(),
    entity: text('entity', { enum: ['contact', 'user'] }).notNull(),
    /** The side the run wrote to (or would have). */
    side: text('side', { enum: ['tandem', 'highlevel'] }).notNull(),
    /** created | updated | unchanged | skipped | failed | deleted | archived | paired | unpaired | restored */
    action: text('action').notNull(),
    state: text('state', { enum: ['pending', 'done'] }).notNull(),
    contactId: text('contact_id'),
    highlevelId: text('highlevel_id'),
    /** What the panel shows for the record (a name or email). */
    label: text('label'),
    reason: text('reason'),
    before: text('before'),
    after: text('after'),
    seq: integer('seq').notNull(),
    at: integer('at').notNull(),
  },
  (t) => [
    uniqueIndex('operation_items_pk').on(t.operationId, t.key),
    index('operation_items_seq').on(t.operationId, t.seq),
  ],
);
