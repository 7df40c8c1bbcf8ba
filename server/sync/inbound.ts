// HighLevel → Tandem: the ONE apply path shared by webhooks and reconciliation pulls
// (ARCHITECTURE principle 5). A webhook is a hint and a one-record page: the loop re-reads the
// contact (GET) and hands the complete record here, exactly as a pull hands each search result.
//
// Rules, per HighLevel contact:
// - linked and tombstoned (deleted in HighLevel) → ignored: a late update never resurrects it;
// - linked, older than the version the ledger reflects (dateUpdated) → ignored (out of order);
// - linked, equal to the ledger → an echo of Tandem's own write or a repeat → dropped;
// - linked otherwise → three-way merge against the ledger with the location's update direction
//   (into an archived Tandem contact too, which stays archived);
//   HighLevel's changes are written to Tandem (origin 'remote', so nothing is queued back), Tandem's
//   pending changes stay pending (the ledger records what HighLevel holds, never what it does not);
//   the contact is queued for HighLevel only for changes a push can send: a value of a custom field
//   HighLevel does not define (as last listed) is not one (merge.ts `sendable`);
// - not linked → linked to the Tandem contact with the same email (case-insensitive), else the
//   same E.164 phone, that is not linked yet; else created in Tandem;
// - deleted → the Tandem contact is archived (restorable) and the link tombstoned; a contact
//   refused because this one held its email or phone is tried again (db/outbox.ts releaseRefusals).
// Every write of one contact happens in one transaction (a pull's page: one for the page); nothing
// here makes an HTTP call.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../db/client.ts';
import { listedCustomFieldIds } from '../../db/custom-fields.ts';
import {
  archiveContact, findContactsByEmail, findContactsByPhone, getContact, insertContact, liveContactsByKeys, unlinkedAfterFailedCreate, updateContact,
  type Contact,
} from '../../db/contacts.ts';
import { deleteLink, getLinkByRemote, insertLink, isContactLinked, linkedContactIds, linksByRemote, saveLink, tombstone, type Link } from '../../db/links.ts';
import { userMapFor } from '../../db/highlevel-users.ts';
import { dropOutbox, enqueueOutbox, releaseRefusals } from '../../db/outbox.ts';
import { transaction } from '../../db/prepared.ts';
import type { Direction } from '../../db/schema.ts';
import { keepLedgerPhone, WEBHOOK_SNAPSHOT_FIELDS, type RemoteContact } from '../highlevel/contact-mapping.ts';
import { SCALAR_FIELDS, emptyContact, fieldEquals, isE164, isEmptyPatch, matchKeys, sameNames, type ContactFields } from './contact-model.ts';
import { isEcho, linkFill, mergeContact, pendingLocal, type MergeResult, type Sendable } from './merge.ts';

export interface InboundDeps {
  db: Db;
  /** Epoch ms of this apply (the injected clock's now). */
  now: number;
  settings: { creationDirection: Direction; updateDirection: Direction };
  /**
   * The location's custom field ids as HighLevel last listed them (listedCustomFieldIds; null:
   * never listed), when the caller read them for its pass. Absent: read here, and only for a
   * contact whose Tandem custom values differ from the ledger (once per applyRemotePage batch).
   */
  customFieldIds?: ReadonlySet<string> | null;
  log?: Logger;
}

export type RemoteInput = RemoteContact | { deleted: string };

export type InboundOutcome =
  | 'created' // a new Tandem contact
  | 'linked' // an existing Tandem contact (same email or phone) now linked
  | 'updated' // HighLevel's changes written to Tandem
  | 'unchanged' // nothing new for Tandem (e.g. only Tandem's pending changes differ)
  | 'echo' // what the ledger already holds (Tandem's own write coming back, or a repeat)
  | 'stale' // older than the version already applied
  | 'tombstoned' // the contact was deleted in HighLevel; the update is ignored
  | 'archived' // deleted in HighLevel: archived in Tandem
  | 'ignored'; // nothing to do (a deletion of a contact never linked, a contact gone in Tandem)

/** Outcomes that changed Tandem: they move the status strip's "last change received". */
export const CHANGED_OUTCOMES: ReadonlySet<InboundOutcome> = new Set(['created', 'linked', 'updated', 'archived']);

export interface ApplyOptions {
  /** The record is whole (GET, search): absent fields are empty. False for thin webhook snapshots. */
  complete: boolean;
}

/**
 * `link`: the HighLevel contact's link as the caller read it (null: it has none), when nothing can
 * have written that link since (no await in between); otherwise it is read here.
 */
export function applyRemote(deps: InboundDeps, locationId: string, remote: RemoteInput, opts: ApplyOptions, link?: Link | null): InboundOutcome {
  // better-sqlite3 transactions are synchronous: the contact, its ledger and any outbox row move
  // together. The repositories are handed `deps.db` itself (its transaction is the connection's),
  // so they reuse the statements they prepared for it.
  return transaction(deps.db, () => apply(deps, locationId, remote, opts, listedFields(deps, locationId), link));
}

/**
 * applyRemote for a batch of records (a slice of a pull's search page) in ONE transaction: one
 * commit per batch instead of per contact. Records are applied in order, each exactly as applyRemote
 * would; their outcomes are returned in the same order. A throw rolls the whole batch back (the
 * pull's checkpoint is written after the page, so the page is read again).
 *
 * What each record needs to know first is read for the whole batch in three queries (see planBatch):
 * a pull into an empty Tandem creates every contact, and one by one those reads were a third of
 * its work.
 */
export function applyRemotePage(deps: InboundDeps, locationId: string, remotes: readonly RemoteInput[], opts: ApplyOptions): InboundOutcome[] {
  return transaction(deps.db, () => {
    const plan = planBatch(deps.db, locationId, remotes);
    const sendable = listedFields(deps, locationId);
    if (!plan) return remotes.map((remote) => apply(deps, locationId, remote, opts, sendable));
    // The updatedAt written last while only new contacts are written in a row (see insertContact).
    let latest: number | undefined;
    return remotes.map((remote) => {
      if (!('deleted' in remote) && plan.creates.has(remote.id)) {
        latest = createLinked(deps, locationId, remote, latest);
        return 'created';
      }
      latest = undefined;
      return apply(deps, locationId, remote, opts, sendable, plan.links.get(remoteId(remote)) ?? null);
    });
  });
}

const remoteId = (remote: RemoteInput) => ('deleted' in remote ? remote.deleted : remote.id);

/**
 * Whether a custom field's value may go to HighLevel (merge.ts Sendable): a field HighLevel defines,
 * or any while the fields have never been listed. The listing is read at the first question (most
 * applies ask none: see apply), and once for all the contacts this is handed to.
 */
function listedFields(deps: InboundDeps, locationId: string): Sendable {
  let ids = deps.customFieldIds;
  return (id) => {
    if (ids === undefined) ids = listedCustomFieldIds(deps.db, locationId);
    return ids === null || ids.has(id);
  };
}

const isCustom = (field: string) => field.startsWith('customFields.');

/**
 * For a batch of distinct HighLevel contacts: their links, and which of them are new to Tandem (no
 * link, and no live unlinked Tandem contact with their email or E.164 phone), read before any of them
 * is applied. Both stay true while the batch is applied in order: applying a record writes only its
 * own link, and the only contacts it writes end up linked, so none becomes a match for another
 * record. A batch naming a contact twice is left to the one-by-one path (undefined).
 */
function planBatch(db: Db, locationId: string, remotes: readonly RemoteInput[]): { links: Map<string, Link>; creates: Set<string> } | undefined {
  const ids = remotes.map(remoteId);
  if (new Set(ids).size !== ids.length) return undefined;
  const links = linksByRemote(db, locationId, ids);
  // Each unlinked record's matching keys, worked out once.
  const unlinked = remotes.filter((r): r is RemoteContact => !('deleted' in r) && !links.has(r.id)).map((r) => ({ id: r.id, ...matchKeys(r.fields) }));
  const taken = heldMatchKeys(db, locationId, unlinked, { unlinkedOnly: true });
  // A record with neither key may be the copy of a Tandem create in doubt: left to the one-by-one path.
  const inDoubt = unlinked.some((r) => !r.email && !r.phone) ? unlinkedAfterFailedCreate(db, locationId) : [];
  const mayBeOwn = (r: { email?: string; phone?: string }) => !r.email && !r.phone && inDoubt.length > 0;
  return { links, creates: new Set(unlinked.filter((r) => !taken.holds(r) && !mayBeOwn(r)).map((r) => r.id)) };
}

/** The match keys (matchKeys) that live Tandem contacts hold, among those asked for. */
export interface HeldKeys {
  holds(keys: { email?: string; phone?: string }): boolean;
}

/**
 * Which of these match keys live Tandem contacts hold, in two queries however many keys;
 * `unlinkedOnly`: held by contacts no link holds (one query more).
 */
export function heldMatchKeys(db: Db, locationId: string, keys: readonly { email?: string; phone?: string }[], opts: { unlinkedOnly?: boolean } = {}): HeldKeys {
  const holders = liveContactsByKeys(db, locationId, { emails: keys.flatMap((k) => (k.email ? [k.email] : [])), phones: keys.flatMap((k) => (k.phone ? [k.phone] : [])) });
  const linked = opts.unlinkedOnly ? linkedContactIds(db, locationId, holders.map((c) => c.id)) : undefined;
  const held = new Set<string>();
  for (const c of holders) {
    if (linked?.has(c.id)) continue;
    if (c.emailLower !== null) held.add(`e:${c.emailLower}`);
    if (c.phone !== null) held.add(`p:${c.phone}`);
  }
  return { holds: (k) => (k.email !== undefined && held.has(`e:${k.email}`)) || (k.phone !== undefined && held.has(`p:${k.phone}`)) };
}

/**
 * HighLevel gave the contact to a user with no paired Tandem user, away from the ledger's owner
 * (whose paired HighLevel user is someone else): the Tandem user is no longer its owner, and no
 * Tandem user is, so the owner is cleared as HighLevel's change (QA: `?ownerUserId=` went on listing
 * it under the old owner). Only the location-wide notice names the new owner, whom Sync users can
 * pair. An owner whose pairing was lost (the same HighLevel user, unpaired since) stays.
 */
function ownerGivenAway(deps: InboundDeps, locationId: string, remote: RemoteContact, base: ContactFields): RemoteContact {
  if (remote.unmatchedOwner === undefined || remote.fields.ownerUserId !== undefined || base.ownerUserId === null) return remote;
  // Read once per batch (a sweep meets every contact of an owner whose pairing was lost, each time).
  let userMap = userMaps.get(deps);
  if (!userMap) userMaps.set(deps, (userMap = userMapFor(deps.db, locationId)));
  const pairedWith = userMap(base.ownerUserId);
  if (pairedWith === null || pairedWith === remote.unmatchedOwner) return remote;
  return { ...remote, fields: { ...remote.fields, ownerUserId: null } };
}

/** The location's Tandem → HighLevel user pairing, by the deps of the batch that read it. */
const userMaps = new WeakMap<InboundDeps, (tandemUserId: string) => string | null>();

/**
 * `known`: the record's link as read for its batch (null: none), else it is read here. Valid as
 * long as nothing wrote this HighLevel contact's link since (planBatch).
 */
function apply(deps: InboundDeps, locationId: string, input: RemoteInput, opts: ApplyOptions, listed: Sendable, known?: Link | null): InboundOutcome {
  const { db, now } = deps;
  if ('deleted' in input) return applyDeletion(deps, locationId, input.deleted, known);

  const link = known === undefined ? getLinkByRemote(db, locationId, input.id) : (known ?? undefined);
  if (!link) return applyUnlinked(deps, locationId, input, opts, listed);
  if (link.remoteDeletedAt !== null) return 'tombstoned';
  // A phone HighLevel holds as it did, without +prefix, is the number the ledger has, whatever the
  // contact's country now (a change of the country alone is no change of the number).
  const remote = ownerGivenAway(deps, locationId, keepLedgerPhone(input, link.base), link.base);
  if (remote.dateUpdated !== undefined && link.remoteUpdatedAt !== null && remote.dateUpdated < link.remoteUpdatedAt && !isLedgerVersion(remote, link, opts)) {
    return 'stale';
  }
  if (isEcho(remote.fields, link.base)) {
    if (remote.dateUpdated !== undefined && remote.dateUpdated !== link.remoteUpdatedAt) {
      saveLink(db, { ...link, remoteUpdatedAt: remote.dateUpdated, now });
    }
    return 'echo';
  }

  const local = getContact(db, locationId, link.contactId);
  if (!local) return 'ignored';
  // Archived in Tandem: HighLevel's edit does not revive it, but is kept in it, so that a restore
  // brings back what HighLevel holds. (Its deletion is sent only when both settings are
  // Bi-directional; otherwise the HighLevel contact lives on and goes on changing.) Unless a live
  // Tandem contact, not linked, now has its email or phone (made again in Tandem after the archive):
  // that one takes the HighLevel contact over, as its own push would (held-elsewhere.ts liveHolder).
  const archived = local.archivedAt !== null;
  if (archived && !isKeyless(remote.fields) && findMatch(db, locationId, remote.fields)) {
    deleteLink(db, locationId, local.id);
    return applyUnlinked(deps, locationId, remote, opts, listed);
  }
  const pending = pendingLocal(link.base, local.fields);
  // Whether HighLevel defines a field decides only what becomes of a Tandem change of it: without
  // one to a custom field, the merge and the outbox need not ask (nor read the listing).
  const sendable = pending.some(isCustom) ? listed : undefined;
  const merge = mergeContact({
    base: link.base,
    local: local.fields,
    remote: remote.fields,
    localChangedAt: local.updatedAt,
    localFieldChangedAt: local.fieldChangedAt,
    remoteChangedAt: remote.dateUpdated ?? now,
    updateDirection: deps.settings.updateDirection,
    sendable,
  });
  const written = writeLocal(deps, local, merge);
  const base = held(link.base, remote.fields);
  saveLink(db, { ...link, base, remoteUpdatedAt: remote.dateUpdated ?? null, now });
  // A Tandem change the merge would send (Bi-directional) must reach the outbox even if its earlier
  // row is gone (e.g. it was sent before HighLevel's edit overtook it). Not for an archived contact:
  // its row is its archive, and a restore queues it again.
  if (!archived && deps.settings.updateDirection === 'bidirectional' && sendsSomething(merge)) enqueueOutbox(db, locationId, local.id, 'upsert', now);
  // Tandem's held change was overtaken (HighLevel's value won, or HighLevel came to the same
  // value): with nothing left to send, its row goes, or the panel would count it as held.
  else if (!archived && (sendable ? pendingLocal(link.base, local.fields, sendable) : pending).length > 0 && pendingLocal(base, (written ?? local).fields, sendable).length === 0) {
    dropOutbox(db, locationId, local.id);
  }
  return written ? 'updated' : 'unchanged';
}

/**
 * A complete record dated before the ledger's version may be that very version: a webhook's
 * version is the event's timestamp, which HighLevel stamps after the write it announces (the
 * record's dateUpdated), so the later read of that write looks older. It is that write when it is
 * at most WEBHOOK_STAMP_LAG_MS older and holds every value the webhook carried (the owner aside:
 * while unmatched it is not in the ledger); then it is applied like any read, bringing what no
 * webhook carries (the timezone) and owners paired since. Without this, such a contact was 'stale'
 * to every pull and sweep until HighLevel changed it again. A read of an older write (search lags)
 * holds other values or is older than that, and stays 'stale'.
 */
function isLedgerVersion(remote: RemoteContact, link: Link, opts: ApplyOptions): boolean {
  if (!opts.complete || remote.dateUpdated === undefined || link.remoteUpdatedAt === null) return false;
  if (remote.dateUpdated < link.remoteUpdatedAt - WEBHOOK_STAMP_LAG_MS) return false;
  return WEBHOOK_SNAPSHOT_FIELDS.every((f) => f === 'ownerUserId' || fieldEquals(f, remote.fields[f] as never, link.base[f] as never));
}

/**
 * How much later than its write's dateUpdated a webhook may be stamped: the emulator's by a
 * millisecond or so; HighLevel's by its queue, not documented (a minute is many times what a queue
 * in good health takes). A write older than this is another, older write.
 */
export const WEBHOOK_STAMP_LAG_MS = 60_000;

function applyDeletion(deps: InboundDeps, locationId: string, highlevelId: string, known?: Link | null): InboundOutcome {
  const { db, now } = deps;
  const link = known === undefined ? getLinkByRemote(db, locationId, highlevelId) : (known ?? undefined);
  if (!link) {
    // A contact Tandem never linked may still have kept one out of HighLevel (its email or phone,
    // refused as a duplicate): that one is tried again. A linked one is released by its tombstone.
    releaseRefusals(db, locationId, highlevelId);
    return 'ignored';
  }
  if (link.remoteDeletedAt !== null) return 'ignored';
  const local = getContact(db, locationId, link.contactId);
  if (local && local.archivedAt === null) archiveContact(db, { locationId, id: local.id, now, origin: 'remote' });
  tombstone(db, locationId, highlevelId, now);
  // The deletion wins: a Tandem change still held for this contact (updates Inbound, a failure)
  // has nowhere to go, and the panel would go on counting it. A restore queues the contact again.
  if (local) dropOutbox(db, locationId, local.id);
  return 'archived';
}

function applyUnlinked(deps: InboundDeps, locationId: string, remote: RemoteContact, opts: ApplyOptions, listed: Sendable): InboundOutcome {
  const { db, now } = deps;
  const match = findMatch(db, locationId, remote.fields);
  if (!match) {
    createLinked(deps, locationId, remote);
    return 'created';
  }
  // HighLevel's values win where it has them. Tandem's values for HighLevel's empty fields are left
  // to the outbox: with Contact creation Bi-directional as a fill (the link completes the contact's
  // creation, so it goes out whatever the update direction, as when Tandem's push finds the
  // match); otherwise as any Tandem change, sent once updates are Bi-directional. A Tandem value of
  // a custom field HighLevel does not define fills nothing: it stays Tandem's, pending, unqueued.
  const outbound = deps.settings.creationDirection === 'bidirectional';
  const sendable = Object.keys(match.fields.customFields).length > 0 ? listed : undefined;
  const fill = linkFill(match.fields, remote.fields, { outbound: true, sendable });
  writeLocal(deps, match, fill);
  // saveLink, not insertLink: a contact restored in Tandem keeps its tombstoned link row, which moves here.
  saveLink(db, { locationId, contactId: match.id, highlevelId: remote.id, base: held(fill.newBase, remote.fields), remoteUpdatedAt: remote.dateUpdated ?? null, now });
  // The contact's row from before (its create, held or not yet sent) is replaced, or dropped when
  // nothing is left to send: a row held for creation would otherwise wait for good.
  if (sendsSomething(fill)) enqueueOutbox(db, locationId, match.id, outbound ? 'fill' : 'upsert', now);
  else dropOutbox(db, locationId, match.id);
  if (!opts.complete) deps.log?.debug({ locationId, highlevelId: remote.id }, 'linked from a partial snapshot');
  return 'linked';
}

/**
 * A new Tandem contact for a HighLevel contact no one holds, and its link. Inside apply's
 * transaction: no savepoint of its own (a throw rolls back the whole apply). Returns its updatedAt.
 */
function createLinked(deps: InboundDeps, locationId: string, remote: RemoteContact, latestUpdatedAt?: number): number {
  const { db, now } = deps;
  const fields: ContactFields = { ...emptyContact(), ...remote.fields };
  const created = insertContact(db, { locationId, fields, now, origin: 'remote' }, { latestUpdatedAt });
  insertLink(db, { locationId, contactId: created.id, highlevelId: remote.id, base: held(created.fields, remote.fields), remoteUpdatedAt: remote.dateUpdated ?? null, now });
  return created.updatedAt;
}

/**
 * The first live, unlinked Tandem contact with the same email, else the same E.164 phone. A
 * HighLevel contact with neither may be the copy of a Tandem create whose answer was lost: it is
 * matched by name to such a contact only (see ownCreateOf).
 */
function findMatch(db: Db, locationId: string, fields: Partial<ContactFields>): Contact | undefined {
  if (isKeyless(fields)) return ownCreateOf(db, locationId, fields);
  const candidates: Contact[] = [];
  if (fields.email) candidates.push(...findContactsByEmail(db, locationId, fields.email));
  if (fields.phone && isE164(fields.phone)) candidates.push(...findContactsByPhone(db, locationId, fields.phone));
  return candidates.find((c) => c.archivedAt === null && !isContactLinked(db, locationId, c.id));
}

const isKeyless = (fields: Partial<ContactFields>) => Object.keys(matchKeys(fields)).length === 0;

/**
 * The Tandem contact, with no email or usable phone either, whose create failed without a clear
 * answer (it may have reached HighLevel) and whose names and company are this HighLevel contact's:
 * only when exactly one is. Without this, the create's own webhook became a second Tandem contact,
 * and the retried create a second HighLevel one.
 */
function ownCreateOf(db: Db, locationId: string, fields: Partial<ContactFields>): Contact | undefined {
  const same = unlinkedAfterFailedCreate(db, locationId).filter((c) => isKeyless(c.fields) && sameNames(c.fields, fields));
  return same.length === 1 ? same[0] : undefined;
}

/** Writes the merge's changes for Tandem: the contact as written, or undefined when there were none. */
function writeLocal(deps: InboundDeps, local: Contact, merge: MergeResult): Contact | undefined {
  const { addLocal, removeLocal } = merge.tags;
  if (isEmptyPatch(merge.toLocal) && addLocal.length === 0 && removeLocal.length === 0) return undefined;
  // `local` was read in this apply's transaction, and nothing has written it since.
  return updateContact(
    deps.db,
    { locationId: local.locationId, id: local.id, patch: merge.toLocal, tags: { add: addLocal, remove: removeLocal }, now: deps.now, origin: 'remote' },
    local,
  );
}

function sendsSomething(merge: MergeResult): boolean {
  return !isEmptyPatch(merge.toRemote) || merge.tags.addRemote.length > 0 || merge.tags.removeRemote.length > 0;
}

/**
 * The ledger after reading HighLevel: what HighLevel holds. A field the snapshot carried is its
 * value; one it did not carry (a thin webhook, an unmatched owner) keeps the ledger's value.
 */
export function held(base: ContactFields, remote: Partial<ContactFields>): ContactFields {
  const next: ContactFields = { ...base, tags: [...(remote.tags ?? base.tags)].sort(), customFields: { ...(remote.customFields ?? base.customFields) } };
  for (const f of SCALAR_FIELDS) {
    const v = remote[f];
    if (v !== undefined) (next as Record<string, unknown>)[f] = v;
  }
  return next;
}

export type { Link };
