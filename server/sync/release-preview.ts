// What saving new sync settings sends to HighLevel at once: the changes an Inbound setting held back
// that the new settings release (outbound.ts parks them, and its next pass sends them). The panel
// shows it before such a save. An edit is described against the ledger (HighLevel's values as
// Tandem last synced them) by the merge the push itself runs, so the fields listed are those the
// push sends, unless HighLevel changed the same field since (then the more recent change wins).
// A change HighLevel will refuse as a duplicate (its email or phone is already on another Tandem
// contact's HighLevel contact, held-elsewhere.ts) is counted apart, not as created or sent; an edit
// refused so still sends its other fields (outbound-contact.ts sendLinked), counted as sent too. A
// contact refused so before, whose holder's held edit moves that email or phone away, is tried
// again once the edit is sent (db/outbox.ts releaseRefusalsLeaving): counted as created or sent
// when HighLevel then takes it; otherwise it stays refused, as it was, and is not counted.
// The preview carries a fingerprint of what it describes, and a save that confirms it is refused
// when what it would send is no longer that (server/routes/panel-sync.ts).
import { createHash } from 'node:crypto';
import type { Db } from '../../db/client.ts';
import { getContact, type Contact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import type { Direction } from '../../db/schema.ts';
import { settingsRevision } from '../../db/sync-settings.ts';
import { pendingChangesOfKinds, refusedChanges, type PendingChange, type PendingKind, type RefusedChange } from '../../db/sync-status.ts';
import { getUser } from '../../db/users.ts';
import { SCALAR_FIELDS, applyTags, contactLabel, type ContactFields } from './contact-model.ts';
import { emailKey, holdsElsewhere, LedgerKeys, phoneKey } from './held-elsewhere.ts';
import { mergeContact, mergeFill, type MergeResult, type Sendable } from './merge.ts';
import { sendableIn } from './outbound.ts';
import type { FieldChange } from './operations/types.ts';

export interface Directions {
  creationDirection: Direction;
  updateDirection: Direction;
}

/** One contact of the sample: who, and (for an edit) the fields that change in HighLevel. */
export interface ReleasedContact {
  contactId: string;
  label: string;
  /** Tandem's field names (`customFields.<id>` for custom fields); an owner by its user's name. */
  changes: FieldChange[];
}

export interface ReleasedGroup {
  count: number;
  /** The most recently changed, at most RELEASE_SAMPLE_SIZE. */
  samples: ReleasedContact[];
}

/**
 * One contact of the sample whose held change HighLevel will refuse: its email or phone is already
 * on the HighLevel contact of another Tandem contact.
 */
export interface RefusedContact {
  contactId: string;
  label: string;
  /** What is refused: its creation in HighLevel (or link to a contact there), or an edit. */
  change: 'create' | 'edit';
  field: 'email' | 'phone';
  /** The other Tandem contact, by its name (or email, phone). */
  holder: string;
  /** An edit whose other fields or tags are sent all the same (counted among the updated too). */
  othersSent: boolean;
}

export interface RefusedGroup {
  count: number;
  /** Of them, edits whose other fields or tags are sent all the same. */
  othersSent: number;
  /** The most recently changed, at most RELEASE_SAMPLE_SIZE. */
  samples: RefusedContact[];
}

export interface ReleasePreview {
  /**
   * Contacts not in HighLevel that go there: created, or linked to one with the same email or phone.
   * Among them, contacts refused before as duplicates whose email or phone the release frees.
   */
  created: ReleasedGroup;
  /** Contacts in both whose held edits go to HighLevel, and edits refused before that the release frees. */
  updated: ReleasedGroup;
  /**
   * Contacts whose creation or edit is sent and refused by HighLevel as a duplicate: not created,
   * and an edit's email or phone not sent (its other fields are, and it is among the updated too).
   */
  refused: RefusedGroup;
  /**
   * What the preview describes, opaque (releaseFingerprint): a save sent with it is refused when
   * saving would send anything else, or the settings changed since.
   */
  fingerprint: string;
}

export const RELEASE_SAMPLE_SIZE = 5;

/** How a released edit goes out: the full merge (updates Bi-directional) or the fill of HighLevel's empty fields. */
export type Release = 'merge' | 'fill';

/** What a switch of the settings sends of what was held (releasedBy). */
export interface Released {
  created: boolean;
  edits: boolean;
  fills: Release | null;
}

/**
 * What `to` releases of what `from` holds back (the rules of outbound.ts's pushRow): contacts not
 * in HighLevel wait for Contact creation, edits of linked ones for Contact update, and the fill of
 * a contact just linked by email or phone for either (with both Inbound); a fill released by
 * Contact creation alone fills HighLevel's empty fields only.
 */
export function releasedBy(from: Directions, to: Directions): Released {
  const opens = (setting: keyof Directions) => from[setting] === 'inbound' && to[setting] === 'bidirectional';
  const fillsHeld = from.creationDirection === 'inbound' && from.updateDirection === 'inbound';
  return {
    created: opens('creationDirection'),
    edits: opens('updateDirection'),
    fills: !fillsHeld ? null : to.updateDirection === 'bidirectional' ? 'merge' : to.creationDirection === 'bidirectional' ? 'fill' : null,
  };
}

/**
 * The fields a released edit changes in HighLevel, HighLevel's value as the ledger holds it → Tandem's.
 * Pure: it runs the push's own merge against a HighLevel that still holds the ledger, with the
 * push's `sendable` (a value under a custom field HighLevel does not define is not sent).
 */
export function releasedChanges(base: ContactFields, local: ContactFields, release: Release, sendable?: Sendable): FieldChange[] {
  const merge: MergeResult =
    release === 'merge'
      ? mergeContact({ base, local, remote: base, localChangedAt: 0, remoteChangedAt: 0, updateDirection: 'bidirectional', ...(sendable ? { sendable } : {}) })
      : mergeFill({ base, local, remote: base, ...(sendable ? { sendable } : {}) });
  const changes: FieldChange[] = [];
  for (const field of SCALAR_FIELDS) {
    const to = merge.toRemote[field];
    if (to !== undefined) changes.push({ field, from: base[field], to });
  }
  for (const [id, to] of Object.entries(merge.toRemote.customFields ?? {})) {
    changes.push({ field: `customFields.${id}`, from: base.customFields[id] ?? null, to });
  }
  const { addRemote, removeRemote } = merge.tags;
  if (addRemote.length || removeRemote.length) changes.push({ field: 'tags', from: [...base.tags], to: applyTags(base.tags, addRemote, removeRemote) });
  return changes;
}

/** The kinds of waiting change (db/sync-status.ts) a release sends. */
function releasedKinds(released: Released): PendingKind[] {
  return [...(released.created ? (['new'] as const) : []), ...(released.edits ? (['edit'] as const) : []), ...(released.fills ? (['fill'] as const) : [])];
}

/** How `released` sends a change of `kind`: the contact created, or the edit's merge or fill; undefined while it stays held. */
function sendOf(released: Released, kind: PendingKind): 'create' | Release | undefined {
  if (kind === 'new') return released.created ? 'create' : undefined;
  if (kind === 'edit') return released.edits ? 'merge' : undefined;
  return released.fills ?? undefined;
}

/**
 * How a row goes out under `to` when nothing holds it any more (a refused row freed): as a held one
 * of its kind is sent by a switch from both Inbound to `to` (outbound.ts's pushRow reads `to` alone).
 */
const sentUnder = (to: Directions): Released => releasedBy({ creationDirection: 'inbound', updateDirection: 'inbound' }, to);

/**
 * A release's fingerprint: the settings revision it starts from, the switch, each change it sends
 * (its outbox row, contact, kind and when it was last queued, which every Tandem-side write of the
 * contact moves on) and each that HighLevel will refuse, with the contact whose email or phone it
 * meets (it changes with that contact, archived or edited, and not with the refused one's row), and
 * each refusal made before that it frees, with what then becomes of it (the refused row is no
 * pending change: archived, edited or refused anew, it changes the release all the same).
 * Changes from HighLevel are not in it: they are not held, and where one meets a released edit the
 * more recent change wins, as the dialog says. Pure.
 */
export function fingerprintOf(input: {
  revision: number;
  from: Directions;
  to: Directions;
  changes: readonly PendingChange[];
  refusals?: readonly Refusal[];
  freed?: readonly Freed[];
}): string {
  const { revision, from, to, changes } = input;
  const hash = createHash('sha256').update(JSON.stringify(['release', revision, from.creationDirection, from.updateDirection, to.creationDirection, to.updateDirection]));
  for (const c of changes) hash.update(`\n${JSON.stringify([c.rowId, c.contactId, c.kind, c.queuedAt])}`);
  for (const r of input.refusals ?? []) hash.update(`\n${JSON.stringify(['refused', r.contactId, r.change, r.field, r.holderId])}`);
  for (const f of input.freed ?? []) hash.update(`\n${JSON.stringify(['freed', f.rowId, f.contactId, f.kind, f.queuedAt, f.refusedBy, f.outcome])}`);
  return hash.digest('hex');
}

/**
 * A change refused before as a duplicate that the release frees (the contact holding its email or
 * phone moves it), and what becomes of it: created, or its edit sent; refused again (it stays
 * refused, as it was); or held by the new settings.
 */
export interface Freed extends RefusedChange {
  outcome: 'create' | Release | 'refused' | 'held';
}

/** A released change HighLevel will refuse as a duplicate: whose, and the contact holding its email or phone. */
export interface Refusal {
  contactId: string;
  change: 'create' | 'edit';
  field: 'email' | 'phone';
  holderId: string;
}

/** What saving `to` over `from` sends (oldest row first), which of it HighLevel refuses, and the refusals it frees. Reads only. */
function releaseOf(db: Db, locationId: string, from: Directions, to: Directions) {
  const released = releasedBy(from, to);
  const changes = pendingChangesOfKinds(db, locationId, releasedKinds(released));
  const sendable = sendableIn(db, locationId);
  const { refusals, partial, freed } = predict(db, locationId, released, to, changes, sendable);
  const fingerprint = fingerprintOf({ revision: settingsRevision(db, locationId), from, to, changes, refusals: [...refusals.values()], freed });
  return { released, changes, sendable, refusals, partial, freed, fingerprint };
}

/**
 * The released changes HighLevel will refuse as duplicates, predicted as the push meets them: in
 * the order it sends them (oldest row first), from what HighLevel holds as far as Tandem knows (the
 * ledger; a contact HighLevel has that no Tandem contact is linked to is not known), each change
 * moving what the next one meets. A contact of HighLevel only, unknown here, can still make the
 * push link or refuse otherwise; and a location that allows duplicates takes them all.
 * A refused change is tried again once the contact holding its email or phone moves off it (a sent
 * edit changes that contact's ledger: db/outbox.ts releaseRefusalsLeaving), at the push's next read
 * of the outbox. A refused row is due since it failed, so that read takes the freed rows first, in
 * the order they failed: refusals made before the release (read once something moves), then the
 * release's own. So a freed refusal is predicted again after the read that freed it: after all the
 * released changes, then after the freed ones that moved in turn. The push reads 100 rows at a time
 * (and again after a pause for the rate budget), so in a release of more, a freed row can go out
 * before later released ones, which only matters where two of them want the same email or phone.
 */
function predict(db: Db, locationId: string, released: Released, to: Directions, changes: readonly PendingChange[], sendable: Sendable | undefined) {
  const refusals = new Map<string, Refusal>();
  /** Of the refused edits, those whose other fields go all the same: the email or phone withheld. */
  const partial = new Map<string, ReadonlySet<'email' | 'phone'>>();
  /** The refusals made before that the release frees, by row: what finally becomes of each. */
  const freed = new Map<number, Freed>();
  if (changes.length === 0) return { refusals, partial, freed: [] };
  const ledger = new LedgerKeys(db, locationId);
  const contacts = new Map(changes.flatMap((c) => {
    const contact = getContact(db, locationId, c.contactId);
    return contact ? [[c.contactId, contact] as const] : [];
  }));
  // The holders of the new contacts' emails and phones, in one batch rather than a query each.
  const created = changes.flatMap((c) => (c.kind === 'new' && contacts.has(c.contactId) ? [contacts.get(c.contactId)!] : []));
  ledger.prefetch(
    { emails: created.flatMap((c) => (c.fields.email ? [c.fields.email] : [])), phones: created.flatMap((c) => (c.fields.phone ? [c.fields.phone] : [])) },
    new Set(created.map((c) => c.id)),
  );
  // A freed row goes out as any row does under `to`; for a released change that is as released.
  const under = sentUnder(to);
  /** Refused changes in the order they failed, with the contact holding their email or phone; and by that contact. */
  let waiting: Waiting[] = [];
  const byHolder = new Map<string, Waiting[]>();
  const wait = (w: Waiting) => {
    const list = byHolder.get(w.holderId);
    if (list) list.push(w);
    else byHolder.set(w.holderId, [w]);
  };
  let earlierRead = false;
  for (let read: Attempt[] = changes.map((change) => ({ change })); read.length > 0; ) {
    for (const { change, earlier } of read) {
      const contact = contacts.get(change.contactId) ?? getContact(db, locationId, change.contactId);
      const send = sendOf(earlier ? under : released, change.kind);
      if (!contact || !send) {
        if (earlier) freed.set(earlier.rowId, { ...earlier, outcome: 'held' });
        continue;
      }
      const met = meet(db, locationId, ledger, contact, send, sendable);
      if (earlier) freed.set(earlier.rowId, { ...earlier, outcome: met.refusal ? 'refused' : send });
      else if (met.refusal) refusals.set(contact.id, met.refusal);
      else refusals.delete(contact.id);
      if (!earlier && met.withheld) partial.set(contact.id, met.withheld);
      else if (!earlier) partial.delete(contact.id);
      if (met.refusal) {
        const w: Waiting = { attempt: { change, ...(earlier ? { earlier } : {}) }, holderId: met.refusal.holderId, freed: false };
        waiting.push(w);
        wait(w);
      }
      if (!met.moved) continue;
      // The first move: the refusals made before the release come into it (one query), ahead of its own.
      if (!earlierRead) {
        earlierRead = true;
        const before = refusedChanges(db, locationId).flatMap((r): Waiting[] => (r.holderId === null ? [] : [{ attempt: { change: r, earlier: r }, holderId: r.holderId, freed: false }]));
        before.forEach(wait);
        waiting = [...before, ...waiting];
      }
      for (const w of byHolder.get(contact.id) ?? []) w.freed = true;
      byHolder.delete(contact.id);
    }
    read = waiting.filter((w) => w.freed).map((w) => w.attempt);
    waiting = waiting.filter((w) => !w.freed);
  }
  return { refusals, partial, freed: [...freed.values()] };
}

/** A change the push tries: a held one the release sends, or (`earlier`) one refused before it that it frees. */
interface Attempt {
  change: PendingChange;
  earlier?: RefusedChange;
}

/** A refused change, the contact holding its email or phone, and whether that one moved since (freeing it). */
interface Waiting {
  attempt: Attempt;
  holderId: string;
  freed: boolean;
}

/**
 * What a change the push sends (`send`) meets: HighLevel's refusal as a duplicate, or none; and,
 * sent, whether it moves the contact's HighLevel contact off an email or phone (a created one held
 * none). Moves the ledger as the push would.
 */
function meet(db: Db, locationId: string, ledger: LedgerKeys, contact: Contact, send: 'create' | Release, sendable: Sendable | undefined): Met {
  if (send === 'create') return { refusal: refusedCreate(ledger, contact.id, contact.fields), moved: false };
  const link = getLinkByContact(db, locationId, contact.id);
  return link ? refusedEdit(ledger, contact.id, link.base, contact.fields, send, sendable) : { refusal: undefined, moved: false };
}

interface Met {
  refusal: Refusal | undefined;
  moved: boolean;
  /** A refused edit whose other fields and tags go all the same: the email or phone it withholds. */
  withheld?: ReadonlySet<'email' | 'phone'>;
}

/**
 * As the push (outbound-contact.ts pushNew): HighLevel's contact with the same email, else the same
 * phone; another live Tandem contact's is refused, else the contact is created (or linked to a
 * contact HighLevel has alone, or one an archived Tandem contact leaves: not looked up, see LedgerKeys).
 */
function refusedCreate(ledger: LedgerKeys, contactId: string, fields: ContactFields): Refusal | undefined {
  const { email, phone } = fields;
  for (const [field, value] of [['email', email], ['phone', phone]] as const) {
    const found = value ? ledger.holder(field, value) : undefined;
    if (found && holdsElsewhere(found, contactId)) return { contactId, change: 'create', field, holderId: found.contactId };
  }
  ledger.take({ contactId, archivedAt: null, email: emailKey(email), phone: phoneKey(phone) });
  return undefined;
}

/**
 * An edit sends its email or phone in a PUT, which HighLevel refuses when another of its contacts
 * holds the value, whoever that is in Tandem (an archived contact's is still there). The push then
 * sends the edit again without that email or phone (and without the other too when HighLevel
 * refuses it in turn): its other fields and tags go, when it has any (outbound-contact.ts
 * sendLinked). Sent, the contact's HighLevel contact holds the new values instead of the old.
 */
function refusedEdit(ledger: LedgerKeys, contactId: string, base: ContactFields, local: ContactFields, release: Release, sendable: Sendable | undefined): Met {
  // Neither changes (as HighLevel compares them): nothing to check, no merge to run, nothing freed.
  // (A new spelling of the same one frees a refusal too, which HighLevel then refuses again.)
  if (emailKey(local.email) === emailKey(base.email) && phoneKey(local.phone) === phoneKey(base.phone)) return { refusal: undefined, moved: false };
  const changes = releasedChanges(base, local, release, sendable);
  const keys = changes.filter((c): c is FieldChange & { field: 'email' | 'phone' } => c.field === 'email' || c.field === 'phone');
  const keyOf = (field: 'email' | 'phone', v: unknown) => (typeof v !== 'string' ? null : field === 'email' ? emailKey(v) : phoneKey(v));
  let refusal: Refusal | undefined;
  const withheld = new Set<'email' | 'phone'>();
  for (const c of keys) {
    if (typeof c.to !== 'string' || keyOf(c.field, c.to) === keyOf(c.field, c.from)) continue;
    const other = ledger.holder(c.field, c.to, true);
    if (!other || other.contactId === contactId) continue;
    refusal ??= { contactId, change: 'edit', field: c.field, holderId: other.contactId };
    withheld.add(c.field);
  }
  if (refusal && !changes.some((c) => !withheld.has(c.field as 'email' | 'phone'))) return { refusal, moved: false };
  const sent = keys.filter((c) => !withheld.has(c.field));
  for (const c of sent) ledger.drop(keyOf(c.field, c.from), contactId);
  const held = { email: emailKey(base.email), phone: phoneKey(base.phone) };
  for (const c of sent) held[c.field] = keyOf(c.field, c.to);
  ledger.take({ contactId, archivedAt: null, ...held });
  const moved = sent.some((c) => keyOf(c.field, c.to) !== keyOf(c.field, c.from));
  return refusal ? { refusal, moved, withheld } : { refusal: undefined, moved };
}

/**
 * The fingerprint of saving `to` over the location's settings `from` as things are now. Reads only;
 * run it in the transaction of whatever it is compared with or shown beside.
 */
export function releaseFingerprint(db: Db, locationId: string, from: Directions, to: Directions): string {
  return releaseOf(db, locationId, from, to).fingerprint;
}

/**
 * What saving `to` over the location's settings `from` sends to HighLevel at once. Reads only; run
 * it in one transaction with the read of `from`, so its counts and fingerprint describe one moment.
 */
export function releasePreview(db: Db, locationId: string, from: Directions, to: Directions): ReleasePreview {
  const { released, changes, sendable, refusals, partial, freed, fingerprint } = releaseOf(db, locationId, from, to);
  if (changes.length === 0) return { created: none(), updated: none(), refused: { ...none(), othersSent: 0 }, fingerprint };
  const owner = (id: unknown) => (typeof id === 'string' ? (getUser(db, locationId, id)?.name ?? 'a user no longer in Tandem') : id);
  const labelOf = (contactId: string) => {
    const contact = getContact(db, locationId, contactId);
    return contact ? contactLabel(contact.fields, 'An unnamed contact') : 'a contact no longer in Tandem';
  };

  const sample = (contactId: string, release: Release | null): ReleasedContact | undefined => {
    const withheld = partial.get(contactId);
    const contact = getContact(db, locationId, contactId);
    if (!contact) return undefined;
    const label = contactLabel(contact.fields, 'An unnamed contact');
    if (!release) return { contactId, label, changes: [] };
    const link = getLinkByContact(db, locationId, contactId);
    if (!link) return undefined;
    const changes = releasedChanges(link.base, contact.fields, release, sendable)
      .filter((c) => !withheld?.has(c.field as 'email' | 'phone'))
      .map((c) => (c.field === 'ownerUserId' ? { ...c, from: owner(c.from), to: owner(c.to) } : c));
    // Nothing left to send (changed back since): it goes out as nothing, and is no example.
    return changes.length ? { contactId, label, changes } : undefined;
  };
  /** The most recently changed first (as the outbox's latest write of each). */
  const latestFirst = (a: PendingChange, b: PendingChange) => b.queuedAt - a.queuedAt || b.rowId - a.rowId;
  const group = (of: Sent[]): ReleasedGroup => {
    const samples: ReleasedContact[] = [];
    for (const { change, send } of [...of].sort((a, b) => latestFirst(a.change, b.change))) {
      if (samples.length === RELEASE_SAMPLE_SIZE) break;
      const s = sample(change.contactId, send === 'create' ? null : send);
      if (s) samples.push(s);
    }
    return { count: of.length, samples };
  };
  // What HighLevel takes: the held changes it does not refuse (all of an edit but its refused email
  // or phone), and the refusals they free that it takes then.
  const sent: Sent[] = [
    ...changes.flatMap((change) => {
      const send = sendOf(released, change.kind);
      return send && (!refusals.has(change.contactId) || partial.has(change.contactId)) ? [{ change, send }] : [];
    }),
    ...freed.flatMap((f) => (f.outcome === 'refused' || f.outcome === 'held' ? [] : [{ change: f, send: f.outcome }])),
  ];
  const refused = changes.filter((c) => refusals.has(c.contactId)).sort(latestFirst);

  return {
    created: group(sent.filter((s) => s.send === 'create')),
    updated: group(sent.filter((s) => s.send !== 'create')),
    refused: {
      count: refused.length,
      othersSent: refused.filter((c) => partial.has(c.contactId)).length,
      samples: refused.slice(0, RELEASE_SAMPLE_SIZE).map((c) => {
        const r = refusals.get(c.contactId)!;
        return { contactId: r.contactId, label: labelOf(r.contactId), change: r.change, field: r.field, holder: labelOf(r.holderId), othersSent: partial.has(c.contactId) };
      }),
    },
    fingerprint,
  };
}

/** A change that goes out, and how: the contact created, or the edit's merge or fill. */
interface Sent {
  change: PendingChange;
  send: 'create' | Release;
}

const none = <T>(): { count: number; samples: T[] } => ({ count: 0, samples: [] });
