// Tandem → HighLevel: drains a location's outbox, in order, through the location API (budget gate
// included), following the Sync tab's directions. Per contact:
// - not linked (creation Bi-directional): look HighLevel up by email, then phone; a match is linked
//   and only its empty fields are filled (linkFill: HighLevel's data is never overwritten, Tandem
//   takes HighLevel's values); no match → POST, linked to what HighLevel returned. A duplicate 400
//   links to the contact it names. An ambiguous create failure (no answer, 5xx, 422) is looked up
//   before anything is retried, since HighLevel may have created the contact anyway.
// - linked (updates Bi-directional): one GET, a three-way merge against the ledger, then only the
//   differences go out: PUT for fields, the tag endpoints for tags (PUT would replace the list and
//   lose a tag HighLevel gained meanwhile). HighLevel's side of the merge is written to Tandem with
//   origin 'remote', and the ledger becomes what HighLevel now holds, so the webhook echoing our
//   own write is recognised and dropped.
// - linked by Tandem's inbound side (a HighLevel contact with the same email or phone came in):
//   HighLevel's empty fields are filled as above, with Contact creation Bi-directional, whatever
//   the update direction (the outbox row's kind is 'fill'; a later Tandem edit does not turn it
//   into an 'upsert', db/outbox.ts). With updates Inbound the rest merges as Inbound does
//   (mergeFill): a Tandem edit made after the link of a field HighLevel holds is neither sent nor
//   overwritten, and its row stays, parked as any held edit (heldAfterFill).
// - a direction set to Inbound sends nothing: the row is parked (still pending on the panel) and
//   released when the setting turns Bi-directional, which then sends what changed since.
// - a custom field value under an id the location's listed fields do not hold (written before
//   Tandem checked writes, or of a field deleted in HighLevel since) is never sent, on a create or
//   an update: HighLevel may refuse an unknown id, and the contact's other changes with it. It stays
//   in Tandem, unsent, out of the ledger (merge.ts); a contact whose only change it is sends nothing
//   and its row is done. While the fields have never been listed, every value is sent.
// - archive: HighLevel's contact is deleted only when creation AND updates are both Bi-directional.
//   Deleting is the one change that cannot be merged back, and with either direction Inbound the
//   admin has said HighLevel's data is not Tandem's to take away; then the archive stays in Tandem
//   (the row is completed, not parked: a later switch does not replay old deletions).
// Errors: a DeferredError (budget, 429) ends the pass and says when to come back (no sleeping);
// transient failures retry with backoff; permanent ones are recorded with their reason. A refusal
// because another contact holds the email or phone (HighLevel's duplicate 400, or Tandem's own when
// a live Tandem contact is linked to that HighLevel contact) is recorded with the holder's HighLevel
// id; when the holder goes or changes (archived, deleted, its email or phone or link changed) the
// row is tried again by itself, once per such change (db/outbox.ts releaseRefusals). One whose
// holder had already gone or changed when HighLevel's answer came back passes: retried with backoff.
// Every HTTP call happens outside a transaction; each contact's local writes and ledger move together.
// Pacing: up to `concurrency` rows are pushed at once, every request through the location's one
// gate (which counts requests in flight, so it is never exceeded): one contact's round trips no
// longer leave the budget idle. Rows are distinct contacts (the outbox keeps one per contact).
// A lookup whose create was deferred is remembered (PushMemory) so the next pass does not repeat it.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../db/client.ts';
import { getContact } from '../../db/contacts.ts';
import { listedCustomFieldIds } from '../../db/custom-fields.ts';
import { ownerMapFor, userMapFor } from '../../db/highlevel-users.ts';
import { getLinkByContact, getLinkByRemote, tombstone, type Link } from '../../db/links.ts';
import { completeOutbox, dueOutbox, failOutbox, PARKED_AT, unparkOutbox, type OutboxRow } from '../../db/outbox.ts';
import type { Direction } from '../../db/schema.ts';
import { getSyncSettings } from '../../db/sync-settings.ts';
import { updateSyncState } from '../../db/sync-state.ts';
import type { Clock } from '../clock.ts';
import type { OwnerMap, UserMap } from '../highlevel/contact-mapping.ts';
import { DeferredError, duplicateRefusal, type DeferReason, type LocationApi } from '../highlevel/contacts.ts';
import { classifyHighLevelError, HighLevelError, retryHintMs } from '../highlevel/http.ts';
import { LocationPausedError, ReauthRequiredError } from '../highlevel/token-provider.ts';
import { backoffMs } from '../highlevel/token-policy.ts';
import { plainProblem, refusalReason } from './describe-error.ts';
import type { ContactFields, FieldKey } from './contact-model.ts';
import { emailKey, phoneKey } from './held-elsewhere.ts';
import { pendingLocal, type Sendable } from './merge.ts';
import {
  HeldByAnotherError, HolderGoneError, heldAMomentAgo, heldByAnother, pushFill, pushLinked, pushNew, type Outcome, type Pass, type PushMemory,
} from './outbound-contact.ts';

export type { PushMemory } from './outbound-contact.ts';

/** Plain words kept on a parked row (the panel may show them); also the key that releases it. */
export const PARKED_FOR_UPDATES = 'Waiting: contact updates are set to Inbound, so Tandem changes are not sent';
export const PARKED_FOR_CREATION = 'Waiting: contact creation is set to Inbound, so this contact is not created in HighLevel';
export const PARKED_FOR_FILL = 'Waiting: contact creation and updates are set to Inbound, so HighLevel’s empty fields are not filled from Tandem';

/** Rows looked at per pass at most; the next pass carries on. */
const DEFAULT_PASS_LIMIT = 500;
/**
 * Requests a linked contact's push begins only with room for: its read, the PUT and a tag call.
 * With less, on a budget kept full by other work, each attempt spent its read and had its write
 * refused, and the next attempt read again (a soak test caught a location stuck so).
 */
const LINKED_REQUESTS = 3;
const BATCH = 100;

export interface OutboundDeps {
  db: Db;
  clock: Clock;
  api: LocationApi;
  /** The settings for this pass (the supervisor reads them each pass); read from the db when absent. */
  settings?: { creationDirection: Direction; updateDirection: Direction };
  /** HighLevel user → Tandem user and back; from db/highlevel-users.ts when absent. */
  ownerMap?: OwnerMap;
  userMap?: UserMap;
  /** Country for HighLevel phones written without a + prefix. */
  defaultCountry?: string;
  limit?: number;
  /** Rows pushed at the same time (default 1: one after the other). */
  concurrency?: number;
  /** Held by the caller across passes (the location's loop): lookups not yet followed by their create. */
  memory?: PushMemory;
  random?: () => number;
  log?: Logger;
}

export interface PushResult {
  /** Rows whose change reached HighLevel (created, linked, updated, deleted). */
  sent: number;
  /** Rows recorded as failed for good, with their reason. */
  failed: number;
  /** Rows rescheduled after a transient failure. */
  retried: number;
  /** Rows held back by an Inbound setting. */
  parked: number;
  /** When the budget (or a 429) stopped the pass: come back at this time (clock ms). */
  deferred: number | null;
  /** Why, when deferred (to rethrow a DeferredError faithfully: 'daily' is worth showing). */
  deferredReason: DeferReason | null;
  /** The pass stopped at its row limit: more rows may be due now. */
  more: boolean;
  /** Tandem owners with no paired HighLevel user: sent without an owner (Sync users repairs them). */
  unmatchedOwners: string[];
  /** Fields HighLevel stored differently from what was sent; Tandem took HighLevel's value. */
  notStuck: { contactId: string; fields: FieldKey[] }[];
}

/**
 * The custom fields HighLevel defines, as last listed (a value under another id is not sent:
 * merge.ts); undefined while they have never been listed: every value goes. Read once per pass,
 * preview or run (the continuous push, Push contacts, the release preview).
 */
export function sendableIn(db: Db, locationId: string): Sendable | undefined {
  const ids = listedCustomFieldIds(db, locationId);
  return ids ? (id) => ids.has(id) : undefined;
}

export async function pushPending(deps: OutboundDeps, locationId: string): Promise<PushResult> {
  const { db, clock } = deps;
  const settings = deps.settings ?? getSyncSettings(db, locationId);
  const pass: Pass = {
    deps,
    locationId,
    creation: settings.creationDirection,
    update: settings.updateDirection,
    ownerMap: deps.ownerMap ?? ownerMapFor(db, locationId),
    userMap: deps.userMap ?? userMapFor(db, locationId),
    sendable: sendableIn(db, locationId),
    memory: deps.memory ?? { lookups: new Map() },
    result: { sent: 0, failed: 0, retried: 0, parked: 0, deferred: null, deferredReason: null, more: false, unmatchedOwners: [], notStuck: [] },
  };
  const released: string[] = [];
  if (pass.update === 'bidirectional') released.push(PARKED_FOR_UPDATES, PARKED_FOR_FILL);
  if (pass.creation === 'bidirectional') released.push(PARKED_FOR_CREATION, PARKED_FOR_FILL);
  unparkOutbox(db, locationId, released, clock.now());

  const limit = deps.limit ?? DEFAULT_PASS_LIMIT;
  const concurrency = Math.max(1, deps.concurrency ?? 1);
  forgetOldLookups(pass.memory, clock.now());
  let seen = 0;
  /** A location-wide failure (reauth, paused) seen by one worker: the others stop, it is rethrown. */
  let fatal: { err: unknown } | undefined;
  let active = 0;
  /** The gate's refusal of this row's next request, or 'done' for any other end. */
  const pushOne = async (row: OutboxRow): Promise<'done' | DeferredError> => {
    try {
      const outcome = await pushRow(pass, row);
      if (outcome === 'sent') pass.result.sent++;
      if (outcome === 'parked') {
        pass.result.parked++;
        failOutbox(db, row, { error: parkReason(pass, row), nextAttemptAt: PARKED_AT, permanent: false });
      } else if (heldAfterFill(pass, row)) {
        pass.result.parked++;
        failOutbox(db, row, { error: PARKED_FOR_UPDATES, nextAttemptAt: PARKED_AT, permanent: false, kind: 'upsert' });
      } else completeOutbox(db, row);
    } catch (err) {
      if (err instanceof DeferredError) return err;
      try {
        recordFailure(pass, row, err);
      } catch (location) {
        fatal ??= { err: location };
      }
    }
    return 'done';
  };
  const stopped = () => pass.result.deferred !== null || fatal !== undefined;
  while (seen < limit && !stopped()) {
    const rows = dueOutbox(db, locationId, clock.now(), Math.min(BATCH, limit - seen));
    if (rows.length === 0) break;
    let next = 0;
    /** Rows handed back by a worker that bowed out, for the workers still running. */
    const handedBack: OutboxRow[] = [];
    const take = (): OutboxRow | undefined => {
      const back = handedBack.shift();
      if (back || next >= rows.length) return back;
      seen++;
      return rows[next++];
    };
    const worker = async () => {
      active++;
      try {
        for (let row = take(); row && !stopped(); row = take()) {
          const end = await pushOne(row);
          if (end === 'done') continue;
          // The gate refused this row's next request. With requests of other workers in flight it
          // may only be unsure of them (an answer frees room): this worker stops and hands its row
          // to them. The last worker refused ends the pass, when the gate says to come back.
          if (end.reason === 'burst' && active > 1) {
            handedBack.push(row);
            return;
          }
          // Workers refused together: come back when the latest says (earlier is refused again).
          if (pass.result.deferred === null || end.retryAt > pass.result.deferred) {
            pass.result.deferred = end.retryAt;
            pass.result.deferredReason = end.reason;
          }
        }
      } finally {
        active--;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
  }
  if (fatal) throw fatal.err;
  pass.result.more = pass.result.deferred === null && seen >= limit;
  if (pass.result.sent > 0) updateSyncState(db, locationId, { lastOutboundAt: clock.now() }, clock.now());
  return pass.result;
}

/** Lookups older than this are asked again: HighLevel may have gained the contact meanwhile. */
const LOOKUP_MEMORY_MS = 30_000;

function forgetOldLookups(memory: PushMemory, now: number): void {
  for (const [key, l] of memory.lookups) if (l.at + LOOKUP_MEMORY_MS <= now) memory.lookups.delete(key);
}

function parkReason(pass: Pass, row: OutboxRow): string {
  const link = getLinkByContact(pass.deps.db, pass.locationId, row.contactId);
  if (!link || link.remoteDeletedAt !== null) return PARKED_FOR_CREATION;
  return row.kind === 'fill' ? PARKED_FOR_FILL : PARKED_FOR_UPDATES;
}

/**
 * After a 'fill' row was pushed while updates are Inbound (pushFill, the only push of a 'fill' row
 * whose contact is linked): Tandem still holds changes HighLevel lacks, i.e. edits made after the
 * link of fields HighLevel holds. They wait as any held edit does: the row stays, no longer a fill
 * (that went out) but an 'upsert' parked until updates turn Bi-directional, which then sends what
 * changed since; and the panel counts it as a held edit. Read once the push has settled. (When the
 * contact changed again meanwhile, the row's newer version is left as it is, and pushed again.)
 */
function heldAfterFill(pass: Pass, row: OutboxRow): boolean {
  if (row.kind !== 'fill' || pass.update === 'bidirectional') return false;
  const contact = getContact(pass.deps.db, pass.locationId, row.contactId);
  const link = getLinkByContact(pass.deps.db, pass.locationId, row.contactId);
  if (!contact || contact.archivedAt !== null || !link || link.remoteDeletedAt !== null) return false;
  return pendingLocal(link.base, contact.fields, pass.sendable).length > 0;
}

/** Location-wide conditions end the pass (the supervisor acts on them); the rest are this row's. */
function recordFailure(pass: Pass, row: OutboxRow, err: unknown): void {
  const { db, clock } = pass.deps;
  if (err instanceof ReauthRequiredError || err instanceof LocationPausedError) throw err;
  // A 401 here came after the API's one retry with a fresh token: the location's access, not this
  // contact's change, failed. Given up, the change was lost for good when HighLevel recovered; so it
  // is retried with backoff (access that is really gone fails the token refresh: reconnect).
  const unauthorized = err instanceof HighLevelError && err.kind === 'http' && err.status === 401;
  const classified = classifyHighLevelError(err);
  const dup = duplicateRefusal(err);
  const held = err instanceof HeldByAnotherError ? err : undefined;
  // A duplicate refusal whose holder Tandem has since seen go or change passes; it is no refusal.
  // Checked as the refusal is recorded (no await between): a release the holder's change made
  // while this row was on its way found it pending, and would otherwise be lost (QA).
  const moved = dup?.contactId !== undefined ? holderMovedOn(pass, row.contactId, dup.contactId, dup.matchingField) : held !== undefined && !held.leaving && holderMovedOn(pass, row.contactId, held.holder, held.field);
  const stale = err instanceof HolderGoneError || moved;
  const kind = stale || held?.leaving || (classified === 'record' && unauthorized) ? 'retry' : classified;
  if (kind === 'reauth' || kind === 'paused') throw err;
  const message = held?.leaving
    ? held.message
    : stale
    ? heldAMomentAgo(err instanceof HolderGoneError ? err.field : (dup?.matchingField ?? held?.field))
    : dup
      ? heldByAnother(pass, { highlevelId: dup.contactId, name: dup.contactName, field: dup.matchingField })
      : describeFailure(err, kind === 'retry');
  // The contact holding this one's email or phone: its going or changing tries this row again.
  const refusedBy = err instanceof HeldByAnotherError ? err.holder : dup?.contactId;
  if (kind === 'retry') {
    const hint = err instanceof HighLevelError ? retryHintMs(err) : undefined;
    const nextAttemptAt = clock.now() + backoffMs(row.attempts + 1, pass.deps.random ?? Math.random, hint);
    failOutbox(db, row, { error: message, nextAttemptAt, permanent: false });
    pass.result.retried++;
  } else {
    failOutbox(db, row, { error: message, nextAttemptAt: clock.now(), permanent: true, ...(refusedBy ? { refusedBy } : {}) });
    pass.result.failed++;
  }
  // The log keeps HighLevel's answer itself (status, request); the row keeps the words.
  pass.deps.log?.warn({ locationId: pass.locationId, contactId: row.contactId, err, retry: kind === 'retry' }, 'outbound push failed');
}

/**
 * Whether what Tandem now knows of `holder`, the HighLevel contact a duplicate refusal of the
 * contact named, says it no longer holds the contact's email or phone (`field`, else either):
 * deleted in HighLevel, or its email and phone as last synced not the contact's. HighLevel answered
 * before that change reached it: another row pushed at the same time changed or deleted the holder,
 * and the release that change made (db/outbox.ts releaseRefusals) found this row still on its way.
 * A HighLevel contact Tandem has no link for is taken at HighLevel's word.
 */
function holderMovedOn(pass: Pass, contactId: string, holder: string, field: string | undefined): boolean {
  const { db } = pass.deps;
  const link = getLinkByRemote(db, pass.locationId, holder);
  if (!link) return false;
  if (link.remoteDeletedAt !== null) return true;
  const contact = getContact(db, pass.locationId, contactId);
  if (!contact) return false;
  const email = emailKey(contact.fields.email) !== null && emailKey(contact.fields.email) === emailKey(link.base.email);
  const phone = phoneKey(contact.fields.phone) !== null && phoneKey(contact.fields.phone) === phoneKey(link.base.phone);
  return !(field === 'email' ? email : field === 'phone' ? phone : email || phone);
}

/**
 * A row's failure in words for the panel (the log keeps the error itself): what went wrong for a
 * failure that passes, HighLevel's reason for a refusal; Tandem's own errors are already worded.
 */
function describeFailure(err: unknown, retry: boolean): string {
  if (err instanceof HighLevelError) return retry ? plainProblem(err) : refusalReason(err);
  return err instanceof Error ? err.message : String(err);
}

async function pushRow(pass: Pass, row: OutboxRow): Promise<Outcome> {
  const { db } = pass.deps;
  const contact = getContact(db, pass.locationId, row.contactId);
  if (!contact) return 'done';
  const link = getLinkByContact(db, pass.locationId, contact.id);
  if (contact.archivedAt !== null) return pushArchive(pass, link);
  // A live contact whose HighLevel contact was deleted (tombstone) was restored in Tandem: for
  // HighLevel it is a new contact again, created (or linked by email or phone) as Contact creation allows.
  if (link && link.remoteDeletedAt === null) {
    // Tandem's only changes are values no push sends (custom fields HighLevel does not define):
    // nothing to read for, or to hold while updates are Inbound.
    if (onlyUnsendable(pass, contact.fields, link)) return 'done';
    // A fill (the contact was just linked by email or phone) belongs to its creation: it goes out
    // with Contact creation Bi-directional even while updates are Inbound.
    const fillOnly = pass.update !== 'bidirectional';
    if (fillOnly && !(row.kind === 'fill' && pass.creation === 'bidirectional')) return 'parked';
    // A read and then its writes: begun with less room, the read would be spent for nothing.
    const retryAt = pass.deps.api.whenRoom(LINKED_REQUESTS);
    if (retryAt !== undefined) throw new DeferredError(retryAt, 'burst', 'waiting for room for a read and its writes');
    return fillOnly ? pushFill(pass, contact, link) : pushLinked(pass, contact, link);
  }
  if (pass.creation !== 'bidirectional') return 'parked';
  return pushNew(pass, contact, row.attempts > 0 ? { since: row.createdAt } : undefined);
}

/** Tandem holds changes HighLevel lacks, and none of them can be sent (Pass.sendable). */
function onlyUnsendable(pass: Pass, fields: ContactFields, link: Link): boolean {
  return pass.sendable !== undefined && pendingLocal(link.base, fields).length > 0 && pendingLocal(link.base, fields, pass.sendable).length === 0;
}

async function pushArchive(pass: Pass, link: Link | undefined): Promise<Outcome> {
  if (!link || link.remoteDeletedAt !== null) return 'done';
  if (pass.creation !== 'bidirectional' || pass.update !== 'bidirectional') return 'done';
  await pass.deps.api.deleteContact(link.highlevelId);
  tombstone(pass.deps.db, pass.locationId, link.highlevelId, pass.deps.clock.now());
  return 'sent';
}
