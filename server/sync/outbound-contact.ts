// Pushes one Tandem contact to HighLevel (the HTTP side of server/sync/outbound.ts, whose header
// states the rules): the linked path (GET, merge, PUT + tag endpoints), the unlinked path (lookup,
// link and fill, or create), the read-back of what HighLevel stored, and the one transaction per
// contact that writes HighLevel's side into Tandem and advances the ledger.
import type { Db } from '../../db/client.ts';
import { getContact, updateContact, type Contact } from '../../db/contacts.ts';
import { deleteLink, getLinkByRemote, saveLink, type Link } from '../../db/links.ts';
import { enqueueOutbox } from '../../db/outbox.ts';
import { transaction } from '../../db/prepared.ts';
import type { Direction } from '../../db/schema.ts';
import { fromHighLevel, keepLedgerPhone, toHighLevelCreate, toHighLevelUpdate, type HighLevelContact, type OwnerMap, type UserMap } from '../highlevel/contact-mapping.ts';
import { DeferredError, duplicateRefusal, isContactNotFound } from '../highlevel/contacts.ts';
import { HighLevelError } from '../highlevel/http.ts';
import {
  SCALAR_FIELDS, contactLabel, customValueEquals, fieldEquals, isE164, isEmptyPatch,
  type ContactFields, type ContactPatch, type FieldKey,
} from './contact-model.ts';
import { liveHolder } from './held-elsewhere.ts';
import { applyRemote } from './inbound.ts';
import { linkFill, mergeContact, mergeFill, sendableFields, type MergeResult, type Sendable } from './merge.ts';
import { findOwnCreate } from './own-create.ts';
import type { OutboundDeps, PushResult } from './outbound.ts';

export type Outcome = 'sent' | 'parked' | 'done';

/**
 * What the location's loop keeps between passes: a contact's lookup (by contact id and version)
 * whose create the budget deferred, so the next pass creates without asking again. An entry is
 * used once, and only for the version it was asked for.
 */
export interface PushMemory {
  lookups: Map<string, { at: number; found: HighLevelContact | null }>;
}

export interface Pass {
  deps: OutboundDeps;
  locationId: string;
  creation: Direction;
  update: Direction;
  ownerMap: OwnerMap;
  userMap: UserMap;
  /**
   * The custom fields HighLevel defines, as last listed: a value under another id is not sent
   * (merge.ts). Undefined while they have never been listed: every value is sent.
   */
  sendable: Sendable | undefined;
  memory: PushMemory;
  result: PushResult;
}

/** HighLevel no longer has the contact: the one inbound path archives it in Tandem and tombstones the link. */
function remoteGone(pass: Pass, link: Link): Outcome {
  applyRemote(inboundDeps(pass), pass.locationId, { deleted: link.highlevelId }, { complete: true });
  return 'done';
}

function inboundDeps(pass: Pass) {
  return {
    db: pass.deps.db,
    now: pass.deps.clock.now(),
    settings: { creationDirection: pass.creation, updateDirection: pass.update },
    ...(pass.deps.log ? { log: pass.deps.log } : {}),
  };
}

/**
 * Tandem's reading of HighLevel's contact. `base`: the ledger it is merged against, when there is
 * one: a phone HighLevel holds as it did, without +prefix, then reads as the ledger's number
 * whatever the contact's country now (contact-mapping.ts keepLedgerPhone).
 */
function remoteView(pass: Pass, doc: HighLevelContact, base?: ContactFields) {
  const remote = fromHighLevel(doc, pass.ownerMap, { complete: true, ...(pass.deps.defaultCountry ? { defaultCountry: pass.deps.defaultCountry } : {}) });
  return base ? keepLedgerPhone(remote, base) : remote;
}

export async function pushLinked(pass: Pass, contact: Contact, link: Link): Promise<Outcome> {
  const { api } = pass.deps;
  const doc = await api.getContact(link.highlevelId);
  if (!doc) return remoteGone(pass, link);
  const remote = remoteView(pass, doc, link.base);
  const merge = mergeContact({
    base: link.base,
    local: contact.fields,
    remote: remote.fields,
    localChangedAt: contact.updatedAt,
    localFieldChangedAt: contact.fieldChangedAt,
    remoteChangedAt: remote.dateUpdated ?? pass.deps.clock.now(),
    updateDirection: 'bidirectional',
    sendable: pass.sendable,
  });
  return sendLinked(pass, contact, link, merge, remote);
}

/**
 * A contact the inbound side linked to HighLevel's contact with the same email or phone, pushed
 * while updates are Inbound: HighLevel's empty fields are filled from Tandem, as when the push
 * itself finds the match (linkExisting). Unlike there, the link has a ledger and Tandem may have
 * edited the contact since it was made (the row waited behind others): mergeFill fills what is
 * empty in HighLevel and merges the rest as Inbound does, so a Tandem edit of a field HighLevel
 * holds stays Tandem's and pending, instead of being overwritten as linkFill would. The caller
 * keeps such an edit's row, parked as any held edit (outbound.ts heldAfterFill).
 */
export async function pushFill(pass: Pass, contact: Contact, link: Link): Promise<Outcome> {
  const doc = await pass.deps.api.getContact(link.highlevelId);
  if (!doc) return remoteGone(pass, link);
  const remote = remoteView(pass, doc, link.base);
  const merge = mergeFill({ base: link.base, local: contact.fields, remote: remote.fields, sendable: pass.sendable });
  return sendLinked(pass, contact, link, merge, remote);
}

/**
 * Sends a linked contact's merge and settles it. HighLevel refusing the email or phone as a
 * duplicate (another of its contacts has it) refuses the whole PUT: the edit's other fields and
 * tags are then sent without it and settled, and the refusal stands for the email or phone alone,
 * still pending in Tandem (QA: a refused phone held back an unrelated company change for good).
 */
async function sendLinked(pass: Pass, contact: Contact, link: Link, merge: MergeResult, remote: { fields: Partial<ContactFields>; dateUpdated: number | undefined }): Promise<Outcome> {
  const heldOwner = remote.fields.ownerUserId ?? link.base.ownerUserId;
  try {
    const sent = await sendChanges(pass, contact, link.highlevelId, merge, heldOwner);
    settle(pass, contact, link.highlevelId, merge, remote.dateUpdated);
    return sent ? 'sent' : 'done';
  } catch (err) {
    if (isContactNotFound(err)) return remoteGone(pass, link);
    const refused = duplicateRefusal(err);
    let rest = refused ? withoutRefusedKeys(merge, remote.fields, link.base, refused.matchingField) : undefined;
    if (!rest) throw err;
    try {
      await sendChanges(pass, contact, link.highlevelId, rest, heldOwner);
    } catch (again) {
      // The other of the two refused in turn (both are on other contacts): withheld as well.
      const second = duplicateRefusal(again);
      rest = second ? withoutRefusedKeys(rest, remote.fields, link.base, second.matchingField) : undefined;
      if (!rest) throw again;
      await sendChanges(pass, contact, link.highlevelId, rest, heldOwner);
    }
    settle(pass, contact, link.highlevelId, rest, remote.dateUpdated);
    throw err;
  }
}

/**
 * `merge` without the email or phone HighLevel refused (`field`, else both): they stay as HighLevel
 * holds them in the ledger, and Tandem's values pending. Undefined when nothing else is left to send.
 */
function withoutRefusedKeys(merge: MergeResult, remote: Partial<ContactFields>, base: ContactFields, field: string | undefined): MergeResult | undefined {
  const refused = (['email', 'phone'] as const).filter((f) => (field === 'email' || field === 'phone' ? f === field : true) && merge.toRemote[f] !== undefined);
  if (refused.length === 0) return undefined;
  const toRemote: ContactPatch = { ...merge.toRemote };
  const newBase: ContactFields = { ...merge.newBase };
  for (const f of refused) {
    delete toRemote[f];
    newBase[f] = remote[f] !== undefined ? remote[f] : base[f];
  }
  const others = Object.keys(toRemote).some((k) => k !== 'customFields') || Object.keys(toRemote.customFields ?? {}).length > 0;
  if (!others && merge.tags.addRemote.length === 0 && merge.tags.removeRemote.length === 0) return undefined;
  return { ...merge, toRemote, newBase };
}

/**
 * Sends the merge's HighLevel side: one PUT for fields, then tag adds and removes. Adjusts
 * `merge` to what HighLevel holds afterwards: an owner that could not be sent stays HighLevel's
 * (`heldOwner`), and a field HighLevel stored differently is taken into Tandem. True when
 * anything was sent.
 */
async function sendChanges(pass: Pass, contact: Contact, highlevelId: string, merge: MergeResult, heldOwner: string | null): Promise<boolean> {
  const { api } = pass.deps;
  const update = toHighLevelUpdate(merge.toRemote, pass.userMap, { add: merge.tags.addRemote, remove: merge.tags.removeRemote });
  if (update.unmatchedOwner) {
    noteUnmatched(pass, update.unmatchedOwner);
    merge.newBase.ownerUserId = heldOwner;
  }
  let sent = false;
  if (Object.keys(update.body).length > 0) {
    const after = await api.updateContact(highlevelId, update.body);
    adoptStored(pass, contact, merge, remoteView(pass, after, merge.newBase).fields);
    sent = true;
  }
  if (update.tags.add.length) {
    await api.addTags(highlevelId, update.tags.add);
    sent = true;
  }
  if (update.tags.remove.length) {
    await api.removeTags(highlevelId, update.tags.remove);
    sent = true;
  }
  return sent;
}

/**
 * Read-back of a write (RELIABILITY: "report fields that did not stick"): for each field sent, if
 * HighLevel's answer holds another value, that value is what HighLevel has — it becomes the
 * ledger's and Tandem's, so the two agree instead of re-sending the field forever.
 */
function adoptStored(pass: Pass, contact: Contact, merge: MergeResult, stored: Partial<ContactFields>): void {
  const differs: FieldKey[] = [];
  for (const f of SCALAR_FIELDS) {
    if (f === 'ownerUserId' || merge.toRemote[f] === undefined || stored[f] === undefined) continue;
    if (fieldEquals(f, stored[f] as never, merge.newBase[f] as never)) continue;
    (merge.newBase as Record<string, unknown>)[f] = stored[f];
    (merge.toLocal as Record<string, unknown>)[f] = stored[f];
    differs.push(f);
  }
  for (const id of Object.keys(merge.toRemote.customFields ?? {})) {
    if (stored.customFields === undefined) break;
    const value = stored.customFields[id] ?? null;
    if (customValueEquals(value, merge.newBase.customFields[id])) continue;
    if (value === null) delete merge.newBase.customFields[id];
    else merge.newBase.customFields[id] = value;
    (merge.toLocal.customFields ??= {})[id] = value;
    differs.push(`customFields.${id}`);
  }
  if (differs.length) pass.result.notStuck.push({ contactId: contact.id, fields: differs });
}

/**
 * After the HTTP calls, in one transaction: HighLevel's side of the merge is written to Tandem
 * (origin 'remote', so nothing is queued back) and the ledger becomes what HighLevel holds.
 * A Tandem field written again while we were away keeps its newer value, and the contact is queued
 * again so the next pass merges it against the new ledger: an edit through the API queues itself,
 * but a one-time Pull contacts writes HighLevel's values as a webhook would, queuing nothing, and
 * without this the ledger said HighLevel's value while Tandem held the operation's (a soak test
 * ended with the two sides' values swapped).
 */
function settle(pass: Pass, read: Contact, highlevelId: string, merge: MergeResult, remoteUpdatedAt: number | undefined): void {
  const { db, clock } = pass.deps;
  const now = clock.now();
  // The repositories get `db` itself: its statements run inside the connection's transaction.
  transaction(db, () => {
    // Linking to a HighLevel contact an archived Tandem contact held moves the link here (liveHolder).
    const holder = getLinkByRemote(db, pass.locationId, highlevelId);
    if (holder && holder.contactId !== read.id) {
      if (liveHolder(db, pass.locationId, highlevelId, read.id)) throw heldError(pass, highlevelId);
      deleteLink(db, pass.locationId, holder.contactId);
    }
    const current = getContact(db, read.locationId, read.id);
    if (current) writeLocal(db, read, current, merge, now);
    saveLink(db, { locationId: pass.locationId, contactId: read.id, highlevelId, base: merge.newBase, remoteUpdatedAt: remoteUpdatedAt ?? null, now });
    if (current && current.version !== read.version) enqueueOutbox(db, pass.locationId, read.id, current.archivedAt === null ? 'upsert' : 'archive', now);
  });
}

function writeLocal(db: Db, read: Contact, current: Contact, merge: MergeResult, now: number): void {
  const patch: ContactPatch = {};
  for (const f of SCALAR_FIELDS) {
    const v = merge.toLocal[f];
    if (v !== undefined && fieldEquals(f, current.fields[f] as never, read.fields[f] as never)) (patch as Record<string, unknown>)[f] = v;
  }
  for (const [id, v] of Object.entries(merge.toLocal.customFields ?? {})) {
    if (customValueEquals(current.fields.customFields[id], read.fields.customFields[id])) (patch.customFields ??= {})[id] = v;
  }
  const { addLocal, removeLocal } = merge.tags;
  if (isEmptyPatch(patch) && addLocal.length === 0 && removeLocal.length === 0) return;
  updateContact(db, { locationId: read.locationId, id: read.id, patch, tags: { add: addLocal, remove: removeLocal }, now, origin: 'remote' });
}

// ---- contacts not linked yet ---------------------------------------------------------------------

/**
 * `tried`: when the contact's create was first queued, if an attempt to send it failed before
 * (it may be in HighLevel already, whatever the error said).
 */
export async function pushNew(pass: Pass, contact: Contact, tried?: { since: number }): Promise<Outcome> {
  const key = `${contact.id}@${contact.version}`;
  const remembered = pass.memory.lookups.get(key);
  pass.memory.lookups.delete(key);
  const found = remembered ? remembered.found : await findRemote(pass, contact, tried);
  const match = found && unlinkedElsewhere(pass, contact, found);
  if (match) return linkExisting(pass, contact, match);

  const { body, unmatchedOwner } = toHighLevelCreate(sendableFields(contact.fields, pass.sendable), pass.locationId, pass.userMap);
  if (unmatchedOwner) noteUnmatched(pass, unmatchedOwner);
  let created;
  try {
    created = await pass.deps.api.createContact(body);
  } catch (err) {
    // The budget said not now: the next pass creates without asking HighLevel again.
    if (err instanceof DeferredError) pass.memory.lookups.set(key, { at: pass.deps.clock.now(), found });
    if (!isAmbiguous(err)) throw err;
    // HighLevel may have created it anyway ("422 yet created", an answer lost on the way back):
    // look before anything is retried. A DeferredError here leaves the row to the next pass, which
    // starts with the same lookup.
    const again = await lookup(pass, contact, { since: tried?.since ?? pass.deps.clock.now() });
    if (again) return linkExisting(pass, contact, again);
    throw err;
  }
  if ('duplicate' in created) {
    const { contactId, matchingField } = created.duplicate;
    const existing = await pass.deps.api.getContact(contactId);
    if (!existing) throw new HolderGoneError(matchingField);
    return linkExisting(pass, contact, existing, matchingField);
  }
  linkCreated(pass, contact, created.contact, unmatchedOwner !== undefined);
  return 'sent';
}

/** No answer, a server error, or a 422 (which HighLevel has been seen to send after creating). */
function isAmbiguous(err: unknown): boolean {
  if (!(err instanceof HighLevelError)) return false;
  return err.kind === 'network' || err.kind === 'timeout' || err.kind === 'invalid_response' || err.status >= 500 || err.status === 422;
}

/** HighLevel's contact with the same email, else the same phone (E.164 only), not linked to another Tandem contact. */
async function lookup(pass: Pass, contact: Contact, tried?: { since: number }): Promise<HighLevelContact | null> {
  const found = await findRemote(pass, contact, tried);
  return found && unlinkedElsewhere(pass, contact, found);
}

/**
 * HighLevel's contact with the same email, else the same phone (E.164 only). A contact with
 * neither cannot be matched; but once a create of it may have reached HighLevel (`tried`), its
 * copy is looked for by name among the contacts added since.
 */
async function findRemote(pass: Pass, contact: Contact, tried?: { since: number }): Promise<HighLevelContact | null> {
  const { email, phone } = contact.fields;
  const usablePhone = isE164(phone) ? phone : null;
  if (email || usablePhone) return pass.deps.api.findDuplicate({ email, phone: usablePhone });
  return tried ? findOwnCreate(pass.deps.api, contact.fields, tried.since, (doc) => remoteView(pass, doc).fields) : null;
}

/** The contact found, unless another live Tandem contact holds it (read now: links change between passes). */
function unlinkedElsewhere(pass: Pass, contact: Contact, found: HighLevelContact): HighLevelContact | null {
  return liveHolder(pass.deps.db, pass.locationId, found.id, contact.id) ? null : found;
}

/**
 * Tandem's own refusal of a contact whose email or phone is on a HighLevel contact another live
 * Tandem contact holds. `holder`: that HighLevel contact, kept with the refusal so that its going
 * or changing tries the contact again (db/outbox.ts releaseRefusals); `field`: the one HighLevel
 * matched, when it said. `leaving`: the holder is archived and its deletion on its way, so this
 * passes (server/sync/outbound.ts retries it after a wait).
 */
export class HeldByAnotherError extends Error {
  override name = 'HeldByAnotherError';
  constructor(
    message: string,
    readonly holder: string,
    readonly field: string | undefined,
    readonly leaving: boolean,
  ) {
    super(message);
  }
}

/** The refusal of a contact whose email or phone `highlevelId` holds for another Tandem contact (liveHolder). */
function heldError(pass: Pass, highlevelId: string, field?: string): HeldByAnotherError {
  const link = getLinkByRemote(pass.deps.db, pass.locationId, highlevelId);
  const holder = link ? getContact(pass.deps.db, pass.locationId, link.contactId) : undefined;
  // Archived yet holding: its deletion waits to go out (liveHolder), after which this one can go.
  const leaving = holder !== undefined && holder.archivedAt !== null;
  const message = leaving
    ? `the other contact with this contact’s ${fieldWord(field)} was archived in Tandem and is being deleted in HighLevel; Tandem sends this one once it is gone`
    : heldByAnother(pass, { highlevelId, ...(field ? { field } : {}) });
  return new HeldByAnotherError(message, highlevelId, field, leaving);
}

/**
 * HighLevel refused a create as a duplicate of a contact it then did not have: that contact went
 * while the request was out. A passing failure (server/sync/outbound.ts retries it after a wait).
 */
export class HolderGoneError extends Error {
  override name = 'HolderGoneError';
  constructor(readonly field: string | undefined) {
    super(heldAMomentAgo(field));
  }
}

const fieldWord = (field: string | undefined) => (field === 'email' || field === 'phone' ? field : 'email or phone');

/** A duplicate refusal whose holder has gone or changed since HighLevel answered, in words: it passes. */
export function heldAMomentAgo(field: string | undefined): string {
  return `another contact held this contact’s ${fieldWord(field)} a moment ago, and no longer does`;
}

/**
 * Why a contact cannot go to HighLevel: its email or phone is on another HighLevel contact and the
 * location does not allow duplicates. Said from the refused contact's side, in words (the panel
 * shows it beside that contact): the other by its Tandem name when Tandem links it, else by
 * HighLevel's name for it; never by ids an admin never sees. One archived in Tandem whose
 * HighLevel contact lives on (its deletion is not sent with a direction Inbound) is said to be
 * archived: archiving it again is no remedy, deleting it in HighLevel is.
 */
export function heldByAnother(pass: Pass, other: { highlevelId?: string; name?: string; field?: string }): string {
  const field = fieldWord(other.field);
  const link = other.highlevelId ? getLinkByRemote(pass.deps.db, pass.locationId, other.highlevelId) : undefined;
  const holder = link ? getContact(pass.deps.db, pass.locationId, link.contactId) : undefined;
  const name = holder ? contactLabel(holder.fields, 'another contact') : 'another contact';
  const archived = holder !== undefined && holder.archivedAt !== null;
  const who = !link
    ? other.name?.trim()
      ? `another HighLevel contact (${other.name.trim()})`
      : 'another HighLevel contact'
    : archived
      ? `a HighLevel contact still linked to ${name}, who is archived in Tandem`
      : `a HighLevel contact linked to ${name} in Tandem`;
  // Each step something an admin can do: Edit on the Contacts tab, or a deletion in HighLevel (Tandem then archives its contact).
  const remedy = archived || !link ? 'delete that contact in HighLevel' : 'delete the other contact in HighLevel';
  return `this contact’s ${field} is already on ${who}, and the location does not allow duplicates; change the ${field} of one of the two, or ${remedy}`;
}

/**
 * Links to an existing HighLevel contact: HighLevel's values stay and come into Tandem; only its
 * empty fields are filled from Tandem (one PUT), and Tandem's extra tags are added. `field`: the
 * one HighLevel matched it by, when it said.
 */
async function linkExisting(pass: Pass, contact: Contact, doc: HighLevelContact, field?: string): Promise<Outcome> {
  if (liveHolder(pass.deps.db, pass.locationId, doc.id, contact.id)) throw heldError(pass, doc.id, field);
  const remote = remoteView(pass, doc);
  const fill = linkFill(contact.fields, remote.fields, { outbound: true, sendable: pass.sendable });
  await sendChanges(pass, contact, doc.id, fill, remote.fields.ownerUserId ?? null);
  settle(pass, contact, doc.id, fill, remote.dateUpdated);
  return 'sent';
}

/**
 * The ledger of a contact HighLevel just created is what HighLevel returned; where that differs
 * from Tandem (HighLevel normalised or dropped a value), Tandem takes it — except an owner we
 * could not send, which stays Tandem's and pending, and a custom value not sent (sendableFields),
 * which stays Tandem's and pending, out of the ledger.
 */
function linkCreated(pass: Pass, contact: Contact, doc: HighLevelContact, ownerUnsent: boolean): void {
  const remote = remoteView(pass, doc);
  const base: ContactFields = { ...sendableFields(contact.fields, pass.sendable), ...remote.fields };
  const toLocal: ContactPatch = {};
  const differs: FieldKey[] = [];
  for (const f of SCALAR_FIELDS) {
    if (f === 'ownerUserId' && (ownerUnsent || remote.fields.ownerUserId === undefined)) continue;
    if (!fieldEquals(f, base[f] as never, contact.fields[f] as never)) {
      (toLocal as Record<string, unknown>)[f] = base[f];
      differs.push(f);
    }
  }
  const unsent = new Set(Object.keys(contact.fields.customFields).filter((id) => pass.sendable && !pass.sendable(id)));
  for (const id of new Set([...Object.keys(contact.fields.customFields), ...Object.keys(base.customFields)])) {
    if (unsent.has(id)) continue;
    if (!customValueEquals(base.customFields[id], contact.fields.customFields[id])) {
      (toLocal.customFields ??= {})[id] = base.customFields[id] ?? null;
      differs.push(`customFields.${id}`);
    }
  }
  const local = new Set(contact.fields.tags);
  const addLocal = base.tags.filter((t) => !local.has(t));
  const removeLocal = contact.fields.tags.filter((t) => !base.tags.includes(t));
  if (addLocal.length || removeLocal.length) differs.push('tags');
  if (differs.length) pass.result.notStuck.push({ contactId: contact.id, fields: differs });
  const merge: MergeResult = {
    toLocal,
    toRemote: {},
    tags: { addLocal, removeLocal, addRemote: [], removeRemote: [] },
    newBase: { ...base, tags: [...base.tags].sort() },
    conflicts: [],
  };
  settle(pass, contact, doc.id, merge, remote.dateUpdated);
}

function noteUnmatched(pass: Pass, userId: string): void {
  if (!pass.result.unmatchedOwners.includes(userId)) pass.result.unmatchedOwners.push(userId);
}
