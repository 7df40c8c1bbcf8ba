// Read-only figures for the Sync tab's status strip: what waits each way, the latest change each
// way and the latest problem. Reads through the owning repositories; the counts only this strip
// needs (pending webhooks, what waits to go out by kind) are read here, and so is the list of what
// waits to go out that the settings' Save previews before a switch to Bi-directional sends it (and
// the refusals such a switch may free).
// Never writes.
import { and, asc, count, eq, inArray, isNotNull, isNull, ne, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import type { Db } from './client.ts';
import { customFieldsProblem } from './custom-fields.ts';
import { getInstallation } from './installations.ts';
import { outboxCounts, refusedDeletions, refusedOutbox, retryingOutbox } from './outbox.ts';
import { contactLinks, contacts, outbox as outboxTable, webhookInbox, type InstallationStatus } from './schema.ts';
import { getSyncSettings } from './sync-settings.ts';
import { getSyncState } from './sync-state.ts';

export interface SyncStatus {
  /** Paused by an admin (sync_settings). */
  paused: boolean;
  /** The installation's own state (HighLevel access), apart from the admin's pause. */
  installation: { status: InstallationStatus | null; reason: string | null };
  /** Tandem changes waiting to go to HighLevel (outbox, pending). */
  pendingOutbound: number;
  /**
   * Of pendingOutbound, the contacts not in HighLevel (held while Contact creation is Inbound) and
   * the edits of contacts there (held while Contact update is Inbound): the panel says which setting
   * holds what waits. Deletions, never held, are in neither.
   */
  pendingOutboundNew: number;
  pendingOutboundEdits: number;
  /**
   * Contacts whose change HighLevel refused for good (outbox, failed): the live contacts the
   * Contacts tab's Refused filter lists, no more (a refused deletion of an archived one is not there).
   */
  failedOutbound: number;
  /**
   * Deletions HighLevel refused for good of contacts archived in Tandem: how many, and the latest
   * (its reason, when, whose). Not in failedOutbound: the contact is not on the Contacts tab.
   */
  refusedDeletion: { count: number; message: string; at: number; contactId: string } | null;
  /** HighLevel events received and not yet applied (webhook_inbox of the location). */
  pendingInbound: number;
  /** Epoch ms of the latest change applied from HighLevel. */
  lastInboundAt: number | null;
  /** Epoch ms of the latest change sent to HighLevel. */
  lastOutboundAt: number | null;
  /** The latest error of the location's loop, in plain words. */
  lastError: { message: string; at: number } | null;
  /** The latest change HighLevel refused for good, with its reason (at: when the change was queued). */
  lastFailure: { message: string; at: number; contactId: string } | null;
  /**
   * Changes whose sending failed for a passing reason (HighLevel down, a 5xx) and that wait to be
   * tried again: how many, and the one that failed last, with its reason and next try (epoch ms).
   */
  retrying: { count: number; message: string; nextAttemptAt: number; contactId: string } | null;
  /**
   * Why the latest listing of HighLevel's custom fields failed (db/custom-fields.ts); null when it
   * did not. `refused`: HighLevel refused the token (the scope), which lasts until installed again.
   */
  customFieldsProblem: { message: string; at: number; refused: boolean } | null;
}

export function syncStatus(db: Db, locationId: string): SyncStatus {
  const outbox = outboxCounts(db, locationId);
  const refused = refusedOutbox(db, locationId);
  const failure = refused.latest;
  const deletions = refusedDeletions(db, locationId);
  const deletion = deletions.latest;
  const retry = retryingOutbox(db, locationId);
  const state = getSyncState(db, locationId);
  const installation = getInstallation(db, locationId);
  return {
    paused: getSyncSettings(db, locationId).paused,
    installation: { status: installation?.status ?? null, reason: installation?.statusReason ?? null },
    pendingOutbound: outbox.pending,
    ...pendingByKind(db, locationId),
    failedOutbound: refused.count,
    refusedDeletion: deletion?.lastError ? { count: deletions.count, message: deletion.lastError, at: deletion.nextAttemptAt, contactId: deletion.contactId } : null,
    pendingInbound: pendingInboxCount(db, locationId),
    lastInboundAt: state.lastInboundAt,
    lastOutboundAt: state.lastOutboundAt,
    lastError: state.lastError ? { message: state.lastError, at: state.lastErrorAt ?? state.updatedAt ?? 0 } : null,
    // A row failed for good keeps its enqueue time as updatedAt (its version); nextAttemptAt is when HighLevel refused it.
    lastFailure: failure?.lastError ? { message: failure.lastError, at: failure.nextAttemptAt, contactId: failure.contactId } : null,
    retrying: retry.latest?.lastError ? { count: retry.count, message: retry.latest.lastError, nextAttemptAt: retry.latest.nextAttemptAt, contactId: retry.latest.contactId } : null,
    customFieldsProblem: customFieldsProblem(db, locationId),
  };
}

/** HighLevel events of the location stored and not yet applied (deferred ones included). */
export function pendingInboxCount(db: Db, locationId: string): number {
  return (
    db
      .select({ n: count() })
      .from(webhookInbox)
      .where(and(eq(webhookInbox.locationId, locationId), isNull(webhookInbox.processedAt)))
      .get()?.n ?? 0
  );
}

/**
 * The location's pending contact changes (not deletions) split by whether the contact is linked to
 * HighLevel. A contact whose HighLevel contact was deleted (tombstoned link) and that waits to go
 * out was restored in Tandem: it is a new contact for HighLevel.
 */
function pendingByKind(db: Db, locationId: string): { pendingOutboundNew: number; pendingOutboundEdits: number } {
  const linked = sql<number>`(${contactLinks.contactId} is not null and ${contactLinks.remoteDeletedAt} is null)`;
  const rows = db
    .select({ linked, n: count() })
    .from(outboxTable)
    .leftJoin(contactLinks, eq(contactLinks.contactId, outboxTable.contactId))
    .where(and(eq(outboxTable.locationId, locationId), eq(outboxTable.status, 'pending'), ne(outboxTable.kind, 'archive')))
    .groupBy(linked)
    .all();
  return { pendingOutboundNew: rows.find((r) => !r.linked)?.n ?? 0, pendingOutboundEdits: rows.find((r) => r.linked)?.n ?? 0 };
}

/**
 * What sending a waiting change does in HighLevel: create the contact ('new': not linked, or its
 * HighLevel contact deleted), send a linked contact's edits ('edit'), or fill the empty fields of
 * the HighLevel contact a Tandem contact was just linked to by email or phone ('fill').
 */
export type PendingKind = 'new' | 'edit' | 'fill';

/** What sending a row does (PendingKind), in SQL: the kind the preview describes and the save checks alike. */
const pendingKind = sql<PendingKind>`case when ${contactLinks.contactId} is null or ${contactLinks.remoteDeletedAt} is not null then 'new' when ${outboxTable.kind} = 'fill' then 'fill' else 'edit' end`;

/** The location's rows of live contacts whose change waits to go out, or was refused ('failed'); deletions are never held. */
const rowsOfLiveContacts = (locationId: string, status: 'pending' | 'failed') =>
  and(eq(outboxTable.locationId, locationId), eq(outboxTable.status, status), ne(outboxTable.kind, 'archive'), isNull(contacts.archivedAt));

/** One waiting change as the release preview's fingerprint sees it. */
export interface PendingChange {
  /** The outbox row: a row sent (or dropped) and queued again is a new one. */
  rowId: number;
  contactId: string;
  kind: PendingKind;
  /** When the change was last queued: every Tandem-side write of the contact moves it on. */
  queuedAt: number;
}

/**
 * Every change of `kinds` waiting to go out for live contacts (deletions are never held; archived
 * contacts and rows of contacts no longer in Tandem send nothing), oldest row first: what a release
 * sends, for the preview to describe and fingerprint and the save to check it against.
 */
export function pendingChangesOfKinds(db: Db, locationId: string, kinds: readonly PendingKind[]): PendingChange[] {
  return changesOfKinds(db, locationId, kinds, 'pending');
}

/**
 * Every change of `kinds` of live contacts that HighLevel refused for good, oldest row first: for
 * a linked contact, its HighLevel contact still holds the ledger's values, not Tandem's.
 */
export function failedChangesOfKinds(db: Db, locationId: string, kinds: readonly PendingKind[]): PendingChange[] {
  return changesOfKinds(db, locationId, kinds, 'failed');
}

function changesOfKinds(db: Db, locationId: string, kinds: readonly PendingKind[], status: 'pending' | 'failed'): PendingChange[] {
  if (kinds.length === 0) return [];
  return db
    .select({ rowId: outboxTable.id, contactId: outboxTable.contactId, kind: pendingKind, queuedAt: outboxTable.updatedAt })
    .from(outboxTable)
    .innerJoin(contacts, and(eq(contacts.id, outboxTable.contactId), eq(contacts.locationId, outboxTable.locationId)))
    .leftJoin(contactLinks, eq(contactLinks.contactId, outboxTable.contactId))
    .where(and(rowsOfLiveContacts(locationId, status), inArray(pendingKind, [...kinds])))
    .orderBy(asc(outboxTable.id))
    .all();
}

/** A change refused for good because another contact's HighLevel contact holds its email or phone. */
export interface RefusedChange extends PendingChange {
  /** That HighLevel contact (outbox.refused_by). */
  refusedBy: string;
  /** The Tandem contact linked to it; null for a contact HighLevel has alone. */
  holderId: string | null;
}

const holderLinks = alias(contactLinks, 'holder_links');

/**
 * Every change of a live contact refused for good because another contact held its email or phone:
 * when that holder's email or phone changes, the row is tried again by itself (db/outbox.ts
 * releaseRefusalsLeaving), so a release that moves the holder sends it too. In the order the push
 * then reads them: due since they failed (nextAttemptAt), ahead of what the release made due.
 * One query, by the outbox's (location, status) index.
 */
export function refusedChanges(db: Db, locationId: string): RefusedChange[] {
  return db
    .select({
      rowId: outboxTable.id,
      contactId: outboxTable.contactId,
      kind: pendingKind,
      queuedAt: outboxTable.updatedAt,
      refusedBy: sql<string>`${outboxTable.refusedBy}`,
      holderId: holderLinks.contactId,
    })
    .from(outboxTable)
    .innerJoin(contacts, and(eq(contacts.id, outboxTable.contactId), eq(contacts.locationId, outboxTable.locationId)))
    .leftJoin(contactLinks, eq(contactLinks.contactId, outboxTable.contactId))
    .leftJoin(holderLinks, and(eq(holderLinks.locationId, outboxTable.locationId), eq(holderLinks.highlevelId, outboxTable.refusedBy)))
    .where(and(rowsOfLiveContacts(locationId, 'failed'), isNotNull(outboxTable.refusedBy)))
    .orderBy(asc(outboxTable.nextAttemptAt), asc(outboxTable.id))
    .all();
}
