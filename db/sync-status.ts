// Read-only figures for the Sync tab's status strip: what waits each way, the latest change each
// way and the latest problem. Reads through the owning repositories; never writes.
import { and, count, eq, isNull } from 'drizzle-orm';
import type { Db } from './client.ts';
import { getInstallation } from './installations.ts';
import { failedOutbox, outboxCounts } from './outbox.ts';
import { webhookInbox, type InstallationStatus } from './schema.ts';
import { getSyncSettings } from './sync-settings.ts';
import { getSyncState } from './sync-state.ts';

export interface SyncStatus {
  /** Paused by an admin (sync_settings). */
  paused: boolean;
  /** The installation's own state (HighLevel access), apart from the admin's pause. */
  installation: { status: InstallationStatus | null; reason: string | null };
  /** Tandem changes waiting to go to HighLevel (outbox, pending). */
  pendingOutbound: number;
  /** Tandem changes HighLevel refused for good (outbox, failed). */
  failedOutbound: number;
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
}

export function syncStatus(db: Db, locationId: string): SyncStatus {
  const outbox = outboxCounts(db, locationId);
  const failure = failedOutbox(db, locationId, 1)[0];
  const state = getSyncState(db, locationId);
  const installation = getInstallation(db, locationId);
  return {
    paused: getSyncSettings(db, locationId).paused,
    installation: { status: installation?.status ?? null, reason: installation?.statusReason ?? null },
    pendingOutbound: outbox.pending,
    failedOutbound: outbox.failed,
    pendingInbound: pendingInboxCount(db, locationId),
    lastInboundAt: state.lastInboundAt,
    lastOutboundAt: state.lastOutboundAt,
    lastError: state.lastError ? { message: state.lastError, at: state.lastErrorAt ?? state.updatedAt ?? 0 } : null,
    lastFailure: failure?.lastError ? { message: failure.lastError, at: failure.updatedAt, contactId: failure.contactId } : null,
  };
}

/** HighLevel events of the location stored and not yet applied (deferred ones included). */
function pendingInboxCount(db: Db, locationId: string): number {
  return (
    db
      .select({ n: count() })
      .from(webhookInbox)
      .where(and(eq(webhookInbox.locationId, locationId), isNull(webhookInbox.processedAt)))
      .get()?.n ?? 0
  );
}
