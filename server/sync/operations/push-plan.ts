// Push contacts, the pure part: what one Tandem contact's push does to its HighLevel copy, shared by
// the preview and the run so the preview's counts are what the run then does. Tandem's values win,
// except that nothing Tandem holds EMPTY clears HighLevel: an empty field, `dnd` off (HighLevel omits
// it when off, so "off" in Tandem may only mean "never set", and clearing DND could message people
// who opted out), no owner, an absent custom value. HighLevel-only tags are kept; Tandem's missing
// ones are added through the tag endpoint (a PUT with tags would replace them all).
//
// Item records (the panel and the undo read them): `before.fields` and `after.fields` are keyed by
// Tandem's field names, custom fields as `customFields.<id>`, and the owner as `assignedTo` holding
// HighLevel user ids, so an undo can put HighLevel's exact previous owner back. `before` values are
// HighLevel's raw text where it has one (an undo restores what was there, not Tandem's spelling).
//
// A custom field HighLevel does not define (`sendable` says no, as in the continuous sync: merge.ts)
// is left out: its Tandem value is neither sent nor counted as a change, stays in Tandem, and the
// ledger keeps what HighLevel holds for it (as a rule nothing), so it stays Tandem's own, pending.
// Without `sendable` (the location's fields never listed) every value goes.
import {
  fromHighLevel, toHighLevelCreate, toHighLevelUpdate,
  type CreateContactBody, type HighLevelContact, type OwnerMap, type UpdateContactBody, type UserMap,
} from '../../highlevel/contact-mapping.ts';
import {
  SCALAR_FIELDS, contactLabel, customValueEquals, fieldEquals, normalizeTags,
  type ContactFields, type ContactPatch, type CustomFieldValue, type ScalarField,
} from '../contact-model.ts';
import { sendableFields, type Sendable } from '../merge.ts';
import type { FieldChange } from './types.ts';

/** HighLevel's copy of a contact as a push compares it. */
export interface RemoteView {
  id: string;
  /** Tandem's reading of it (complete: absent = empty; unreadable values stay undefined). */
  fields: Partial<ContactFields>;
  /** HighLevel's owner id as stored (fields.ownerUserId is only set when it is paired). */
  assignedTo: string | null;
  dateUpdated: number | undefined;
  doc: HighLevelContact;
}

export function remoteView(doc: HighLevelContact, ownerMap: OwnerMap): RemoteView {
  const r = fromHighLevel(doc, ownerMap, { complete: true });
  return { id: doc.id, fields: r.fields, assignedTo: doc.assignedTo?.trim() || null, dateUpdated: r.dateUpdated, doc };
}

export type Recorded = Record<string, unknown>;

export interface PushPlan {
  action: 'created' | 'updated' | 'unchanged' | 'skipped';
  reason: string | null;
  create?: CreateContactBody;
  update?: { body: UpdateContactBody; addTags: string[] };
  /** HighLevel's values of the fields written (raw), keyed as the header says. */
  before: Recorded;
  /** What the run writes, in Tandem's form. */
  after: Recorded;
  addedTags: string[];
  /** False when Tandem's owner has no paired HighLevel user: it is not sent. */
  ownerSent: boolean;
  changes: FieldChange[];
  /** HighLevel writes the plan makes. */
  requests: number;
  /** Custom field ids whose Tandem value differs from HighLevel's and is left out: HighLevel does not define them. */
  unsent: string[];
}

/** A name or email the admin recognises (contact-model.ts). */
export const labelOf = contactLabel;

/** Another Tandem contact of this push that HighLevel holds (or will hold) with the same email or phone. */
export interface DuplicateOf {
  contactId: string;
  label: string;
  field: 'email' | 'phone';
  /** The other contact is archived in Tandem (or gone) while its HighLevel contact remains linked to it. */
  archived?: boolean;
}

/** HighLevel keeps one contact per email or phone: the second Tandem contact is not created (nor merged). */
export function duplicateReason(d: DuplicateOf): string {
  if (d.archived) {
    return `same ${d.field} as Tandem contact ${d.label}, archived in Tandem while its HighLevel contact remains: not created twice (delete that contact in HighLevel, and this one is created at the next push)`;
  }
  return `same ${d.field} as Tandem contact ${d.label}, which HighLevel already holds as one contact: not created twice (change the ${d.field} of one of the two on the Contacts tab, or delete the other in HighLevel)`;
}

/** Shown to an admin beside the contact, so it names no internal id. */
const OWNER_REASON = "owner not sent: the contact's Tandem owner has no paired HighLevel user (Sync users pairs users with the same email)";

/** HighLevel's raw value of a scalar field, for `before`: what an undo writes back. */
function rawValue(remote: RemoteView, f: ScalarField): unknown {
  const doc = remote.doc as Record<string, unknown>;
  if (f === 'dnd') return remote.doc.dnd === true;
  if (f === 'dateOfBirth') return remote.fields.dateOfBirth ?? null;
  if (f === 'address1') return (doc.address1 ?? doc.address ?? null) as unknown;
  const v = doc[f];
  return typeof v === 'string' ? v : (remote.fields[f] ?? null);
}

function rawCustom(remote: RemoteView, id: string): unknown {
  const item = remote.doc.customFields?.find((c) => c.id === id);
  return item?.value ?? null;
}

/**
 * What pushing `contact` does: created (no HighLevel copy), updated (only the differing fields and
 * missing tags), unchanged, or skipped (its linked HighLevel contact was not seen: deleted there; or
 * its email or phone belongs to another contact of the push, which HighLevel would refuse).
 */
export function decidePush(input: {
  contact: ContactFields;
  remote: RemoteView | null;
  /** The contact is linked and its HighLevel copy was not found. */
  goneRemote?: boolean;
  /** Unlinked, and its email or phone already belongs to another contact of the push in HighLevel. */
  duplicateOf?: DuplicateOf;
  locationId: string;
  userMap: UserMap;
  sendable?: Sendable | undefined;
}): PushPlan {
  const { remote, userMap } = input;
  const plan: PushPlan = { action: 'unchanged', reason: null, before: {}, after: {}, addedTags: [], ownerSent: true, changes: [], requests: 0, unsent: [] };
  if (input.goneRemote) return { ...plan, action: 'skipped', reason: 'deleted in HighLevel' };
  if (input.duplicateOf) return { ...plan, action: 'skipped', reason: duplicateReason(input.duplicateOf) };
  const { sendable } = input;
  const contact = sendableFields(input.contact, sendable);
  plan.unsent = Object.keys(input.contact.customFields).filter((id) => !(id in contact.customFields));

  if (!remote) {
    const { body, unmatchedOwner } = toHighLevelCreate(contact, input.locationId, userMap);
    plan.action = 'created';
    plan.create = body;
    plan.requests = 1;
    plan.ownerSent = unmatchedOwner === undefined;
    if (unmatchedOwner) plan.reason = OWNER_REASON;
    for (const f of SCALAR_FIELDS) {
      const v = contact[f];
      if (v === null || v === false || (f === 'ownerUserId' && unmatchedOwner)) continue;
      if (f === 'ownerUserId') plan.after.assignedTo = body.assignedTo ?? null;
      else plan.after[f] = v;
      plan.changes.push({ field: f, from: null, to: v });
    }
    for (const [id, v] of Object.entries(contact.customFields)) {
      plan.after[`customFields.${id}`] = v;
      plan.changes.push({ field: `customFields.${id}`, from: null, to: v });
    }
    plan.addedTags = [...contact.tags];
    if (contact.tags.length) plan.changes.push({ field: 'tags', from: [], to: [...contact.tags] });
    return plan;
  }

  const patch: ContactPatch = {};
  for (const f of SCALAR_FIELDS) {
    const mine = contact[f];
    if (mine === null || mine === false) continue;
    if (f === 'ownerUserId') {
      const hl = userMap(mine as string);
      if (!hl) {
        plan.ownerSent = false;
        plan.reason = OWNER_REASON;
        continue;
      }
      if (hl === remote.assignedTo) continue;
      patch.ownerUserId = mine as string;
      plan.before.assignedTo = remote.assignedTo;
      plan.after.assignedTo = hl;
      plan.changes.push({ field: 'ownerUserId', from: remote.fields.ownerUserId ?? remote.assignedTo, to: mine });
      continue;
    }
    const theirs = remote.fields[f];
    if (theirs !== undefined && fieldEquals(f, mine as never, theirs as never)) continue;
    (patch as Record<string, unknown>)[f] = mine;
    plan.before[f] = rawValue(remote, f);
    plan.after[f] = mine;
    plan.changes.push({ field: f, from: theirs ?? null, to: mine });
  }
  plan.unsent = plan.unsent.filter((id) => !customValueEquals(input.contact.customFields[id], remote.fields.customFields?.[id]));
  for (const [id, mine] of Object.entries(contact.customFields)) {
    const theirs: CustomFieldValue | undefined = remote.fields.customFields?.[id];
    if (customValueEquals(mine, theirs)) continue;
    (patch.customFields ??= {})[id] = mine;
    plan.before[`customFields.${id}`] = rawCustom(remote, id);
    plan.after[`customFields.${id}`] = mine;
    plan.changes.push({ field: `customFields.${id}`, from: theirs ?? null, to: mine });
  }
  const held = new Set(remote.fields.tags ?? []);
  const add = normalizeTags(contact.tags).filter((t) => !held.has(t));
  const update = toHighLevelUpdate(patch, userMap, { add });
  const hasBody = Object.keys(update.body).length > 0;
  if (!hasBody && add.length === 0) return plan;
  plan.action = 'updated';
  plan.update = { body: update.body, addTags: add };
  plan.addedTags = add;
  if (add.length) plan.changes.push({ field: 'tags', from: [...held], to: [...held, ...add] });
  plan.requests = (hasBody ? 1 : 0) + (add.length ? 1 : 0);
  return plan;
}

/**
 * The link's ledger after the push wrote `written` (and added `addedTags`). A linked contact: the base it had,
 * with the written fields applied, so Tandem-only pending changes stay pending and HighLevel-only
 * changes still flow to Tandem. A new link (matched or created): Tandem's values, since HighLevel
 * now holds them wherever Tandem has one, except an owner that could not be sent (HighLevel's, as
 * Tandem reads it) and a custom value not sent (`sendable`: HighLevel's, as a rule none); where Tandem
 * is empty the base is too, so HighLevel's values come into Tandem and are never taken for a
 * Tandem deletion.
 */
export function ledgerAfter(input: {
  baseBefore: ContactFields | null;
  contact: ContactFields;
  remote: RemoteView | null;
  ownerSent: boolean;
  /** The `after.fields` actually written (see the header for the keys). */
  written: Recorded;
  addedTags: string[];
  sendable?: Sendable | undefined;
}): ContactFields {
  const { baseBefore, contact, remote, written, sendable } = input;
  if (baseBefore === null) {
    const base: ContactFields = { ...contact, tags: [...contact.tags].sort(), customFields: { ...sendableFields(contact, sendable).customFields } };
    if (!input.ownerSent) base.ownerUserId = remote?.fields.ownerUserId ?? null;
    for (const id of Object.keys(contact.customFields)) {
      const theirs = remote?.fields.customFields?.[id];
      if (!(id in base.customFields) && theirs !== undefined && theirs !== null) base.customFields[id] = theirs;
    }
    // Tags Tandem has that could not be added stay pending against the ledger.
    if (remote) base.tags = [...new Set([...(remote.fields.tags ?? []), ...input.addedTags])].filter((t) => contact.tags.includes(t)).sort();
    return base;
  }
  const base: ContactFields = { ...baseBefore, tags: [...baseBefore.tags], customFields: { ...baseBefore.customFields } };
  for (const [key, value] of Object.entries(written)) {
    if (key === 'assignedTo') base.ownerUserId = contact.ownerUserId;
    else if (key.startsWith('customFields.')) base.customFields[key.slice('customFields.'.length)] = value as CustomFieldValue;
    else (base as Record<string, unknown>)[key] = value;
  }
  base.tags = [...new Set([...base.tags, ...input.addedTags])].sort();
  return base;
}
