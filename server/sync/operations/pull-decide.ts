// Pull contacts, per HighLevel contact: what the run writes to Tandem (and what its preview says it
// will write). One function for both, so the preview's counts are what the run then does. It reads
// Tandem (links, contacts) and never writes; the run applies its answer.
//
// Rules (issue 5, "Pull contacts"): HighLevel's values win, but an EMPTY HighLevel field never
// clears Tandem's (DND off counts as empty: HighLevel cannot tell "off" from "never set");
// HighLevel's tags missing in Tandem are added, Tandem-only tags kept; an owner whose HighLevel user
// has no paired Tandem user is not applied (reason recorded). A HighLevel contact not linked yet is
// linked to the live, unlinked Tandem contact with the same email (case-insensitive), else the same
// E.164 phone, else created in Tandem.
import type { Db } from '../../../db/client.ts';
import { findContactsByEmail, findContactsByPhone, getContact, type Contact } from '../../../db/contacts.ts';
import { getLinkByRemote, isContactLinked, linksByRemote, type Link } from '../../../db/links.ts';
import { keepLedgerPhone, type RemoteContact } from '../../highlevel/contact-mapping.ts';
import {
  SCALAR_FIELDS, applyPatch, applyTags, contactLabel, customValueEquals, emptyContact, fieldEquals, isE164, isEmptyPatch, matchKeys,
  type ContactFields, type ContactPatch, type CustomFieldValue,
} from '../contact-model.ts';
import { held, heldMatchKeys } from '../inbound.ts';
import type { FieldChange } from './types.ts';

export const UNMATCHED_OWNER_REASON = "owner not applied: the contact's HighLevel user has no paired Tandem user (Sync users repairs pairings)";

/** Why a pull leaves a record alone, as its skipped record says (shown beside the contact's name). */
export const SKIP_REASON = {
  deleted: 'deleted in HighLevel, and Tandem archived it: a pull does not bring it back',
  gone: 'no longer in Tandem: a pull does not recreate it',
  archived: 'archived in Tandem: a pull does not bring it back (restore it through Tandem’s REST API to pull it again)',
} as const;

/** The Tandem values a run overwrote or wrote, by field; custom fields by id (null: no value). */
export interface WrittenFields {
  [field: string]: unknown;
  customFields?: Record<string, CustomFieldValue | null>;
}

/** An item's `before` (what undo restores). */
export interface PullBefore {
  fields: WrittenFields;
  /** Tags the run added to Tandem. */
  tags?: string[];
  /** The link's ledger before the run; null when the run linked or created the contact. */
  base: ContactFields | null;
  created?: true;
  /**
   * The Tandem change that waited to go to HighLevel (its outbox row's kind) and that the run's
   * write made moot (HighLevel's values replaced it): undo puts it back in the outbox.
   */
  outbox?: 'upsert' | 'fill';
}

export type PullDecision =
  | { action: 'created'; fields: ContactFields; base: ContactFields; reason: string | null }
  | {
      action: 'updated' | 'unchanged';
      contact: Contact;
      /** The existing link, or null when the run links a matching Tandem contact now. */
      link: Link | null;
      patch: ContactPatch;
      addTags: string[];
      /** The ledger after the write. */
      base: ContactFields;
      before: PullBefore;
      after: WrittenFields;
      reason: string | null;
    }
  | { action: 'skipped'; contactId: string | null; reason: string };

/**
 * What pulling `remote` (a complete record: empty fields present as null) does to Tandem now.
 * `claimed`: Tandem contacts linked earlier in this pass; a preview writes no link, so without it
 * two HighLevel contacts could both "link" the same Tandem contact. The run adds to it too.
 */
export function decidePull(db: Db, locationId: string, remote: RemoteContact, claimed: Set<string>, known?: KnownFirst): PullDecision {
  const ownerReason = remote.unmatchedOwner !== undefined ? UNMATCHED_OWNER_REASON : null;
  const link = known ? known.link : getLinkByRemote(db, locationId, remote.id);
  if (link) {
    // Deleted in HighLevel as far as Tandem knows (search may lag a deletion): the continuous sync owns it.
    if (link.remoteDeletedAt !== null) return { action: 'skipped', contactId: link.contactId, reason: SKIP_REASON.deleted };
    const local = getContact(db, locationId, link.contactId);
    if (!local) return { action: 'skipped', contactId: link.contactId, reason: SKIP_REASON.gone };
    // Archived in Tandem (its deletion goes to HighLevel only when both settings are Bi-directional):
    // a pull does not bring it back; a restore does.
    if (local.archivedAt !== null) return { action: 'skipped', contactId: local.id, reason: SKIP_REASON.archived };
    // A phone HighLevel holds as it did, without +prefix, is the ledger's number whatever the
    // contact's country now: a change of the country alone does not rewrite Tandem's phone.
    const o = overwrite(local.fields, keepLedgerPhone(remote, link.base));
    const changed = !isEmptyPatch(o.patch) || o.addTags.length > 0;
    // The ledger records HighLevel's values for the fields written: Tandem-only pending changes
    // elsewhere stay pending, and HighLevel changes not written (a clear) stay to be merged.
    const base = changed ? { ...applyPatch(link.base, o.patch), tags: [...new Set([...link.base.tags, ...o.addTags])].sort() } : link.base;
    return {
      action: changed ? 'updated' : 'unchanged',
      contact: local,
      link,
      patch: o.patch,
      addTags: o.addTags,
      base,
      before: { fields: o.before, ...(o.addTags.length ? { tags: o.addTags } : {}), base: link.base },
      after: o.after,
      reason: ownerReason,
    };
  }

  // No live contact holds its email or phone: nothing to look up.
  const match = known && !known.keyHeld ? undefined : findMatch(db, locationId, remote.fields, claimed);
  if (match) {
    claimed.add(match.id);
    const o = overwrite(match.fields, remote);
    const changed = !isEmptyPatch(o.patch) || o.addTags.length > 0;
    const written = { ...applyPatch(match.fields, o.patch), tags: applyTags(match.fields.tags, o.addTags, []) };
    return {
      action: changed ? 'updated' : 'unchanged',
      contact: match,
      link: null,
      patch: o.patch,
      addTags: o.addTags,
      // A new link's ledger is what HighLevel holds; Tandem's extra values stay pending, as when
      // the continuous sync links a contact.
      base: held(written, remote.fields),
      before: { fields: o.before, ...(o.addTags.length ? { tags: o.addTags } : {}), base: null },
      after: o.after,
      reason: ownerReason,
    };
  }

  const fields: ContactFields = { ...emptyContact(), ...remote.fields };
  return { action: 'created', fields, base: held(fields, remote.fields), reason: ownerReason };
}

/** What decidePull reads first about a record, read with its slice's (readSlice). */
export interface KnownFirst {
  link: Link | undefined;
  /** Whether a live Tandem contact holds the record's email or E.164 phone (matchKeys). */
  keyHeld: boolean;
}

/**
 * For a slice of distinct HighLevel contacts, what decidePull would first read for each, in three
 * queries instead of two or three per record: a full pull into an empty Tandem looked up a link, an
 * email and a phone for every contact and found nothing each time. Valid while the slice is decided
 * (and run) in order: a record writes only its own link and contact and the contact it links, which
 * `claimed` then keeps from the rest, and the contacts it creates are linked, so matching nothing. A
 * key held by some contact still goes through findMatch, which reads what holds it then. A slice
 * naming a contact twice gets undefined (each record reads for itself).
 */
export function readSlice(db: Db, locationId: string, remotes: readonly RemoteContact[]): Map<string, KnownFirst> | undefined {
  const ids = remotes.map((r) => r.id);
  if (new Set(ids).size !== ids.length) return undefined;
  const links = linksByRemote(db, locationId, ids);
  const keys = new Map(remotes.filter((r) => !links.has(r.id)).map((r) => [r.id, matchKeys(r.fields)] as const));
  const taken = heldMatchKeys(db, locationId, [...keys.values()]);
  return new Map(
    remotes.map((r) => {
      const k = keys.get(r.id);
      return [r.id, { link: links.get(r.id), keyHeld: k !== undefined && taken.holds(k) }];
    }),
  );
}

/** Field by field, HighLevel's non-empty values that differ from Tandem's, and its missing tags. */
function overwrite(local: ContactFields, remote: RemoteContact): { patch: ContactPatch; addTags: string[]; before: WrittenFields; after: WrittenFields } {
  const patch: ContactPatch = {};
  const before: WrittenFields = {};
  const after: WrittenFields = {};
  for (const f of SCALAR_FIELDS) {
    const v = remote.fields[f];
    // Unknown (an unreadable value, an owner without pairing), empty, or DND off: never written.
    if (v === undefined || v === null || (f === 'dnd' && v !== true)) continue;
    if (fieldEquals(f, local[f], v as never)) continue;
    (patch as Record<string, unknown>)[f] = v;
    before[f] = local[f];
    after[f] = v;
  }
  for (const [id, v] of Object.entries(remote.fields.customFields ?? {})) {
    if (customValueEquals(local.customFields[id], v)) continue;
    (patch.customFields ??= {})[id] = v;
    (before.customFields ??= {})[id] = local.customFields[id] ?? null;
    (after.customFields ??= {})[id] = v;
  }
  const have = new Set(local.tags);
  const addTags = (remote.fields.tags ?? []).filter((t) => !have.has(t));
  return { patch, addTags, before, after };
}

/** The first live Tandem contact with the same email, else the same E.164 phone, that nothing links. */
function findMatch(db: Db, locationId: string, fields: Partial<ContactFields>, claimed: Set<string>): Contact | undefined {
  const free = (c: Contact) => c.archivedAt === null && !claimed.has(c.id) && !isContactLinked(db, locationId, c.id);
  if (fields.email) {
    const byEmail = findContactsByEmail(db, locationId, fields.email).find(free);
    if (byEmail) return byEmail;
  }
  if (fields.phone && isE164(fields.phone)) return findContactsByPhone(db, locationId, fields.phone).find(free);
  return undefined;
}

/** The field-level changes of a decision, for the preview's sample. */
export function changesOf(d: PullDecision): FieldChange[] {
  if (d.action === 'skipped') return [];
  if (d.action === 'created') {
    const out: FieldChange[] = [];
    for (const f of SCALAR_FIELDS) {
      const v = d.fields[f];
      if (v !== null && !(f === 'dnd' && v === false)) out.push({ field: f, from: null, to: v });
    }
    if (d.fields.tags.length) out.push({ field: 'tags', from: [], to: d.fields.tags });
    for (const [id, v] of Object.entries(d.fields.customFields)) out.push({ field: `customFields.${id}`, from: null, to: v });
    return out;
  }
  const out: FieldChange[] = [];
  const { customFields, ...scalars } = d.after;
  for (const [field, to] of Object.entries(scalars)) out.push({ field, from: d.before.fields[field] ?? null, to });
  for (const [id, to] of Object.entries(customFields ?? {})) out.push({ field: `customFields.${id}`, from: d.before.fields.customFields?.[id] ?? null, to });
  if (d.addTags.length) out.push({ field: 'tags', from: d.contact.fields.tags, to: applyTags(d.contact.fields.tags, d.addTags, []) });
  return out;
}

/** The non-empty fields of a contact the run created (what its undo compares against). */
export function createdFields(fields: ContactFields): WrittenFields {
  const out: WrittenFields = {};
  for (const f of SCALAR_FIELDS) if (fields[f] !== null && !(f === 'dnd' && fields[f] === false)) out[f] = fields[f];
  if (fields.tags.length) out.tags = fields.tags;
  if (Object.keys(fields.customFields).length) out.customFields = { ...fields.customFields };
  return out;
}

/** A name or email the admin recognises (contact-model.ts). */
export const labelOf = contactLabel;
