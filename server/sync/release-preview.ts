// What saving new sync settings sends to HighLevel at once: the changes an Inbound setting held back
// that the new settings release (outbound.ts parks them, and its next pass sends them). The panel
// shows it before such a save. An edit is described against the ledger (HighLevel's values as
// Tandem last synced them) by the merge the push itself runs, so the fields listed are those the
// push sends, unless HighLevel changed the same field since (then the more recent change wins).
// The preview carries a fingerprint of what it describes, and a save that confirms it is refused
// when what it would send is no longer that (server/routes/panel-sync.ts).
import { createHash } from 'node:crypto';
import type { Db } from '../../db/client.ts';
import { getContact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import type { Direction } from '../../db/schema.ts';
import { settingsRevision } from '../../db/sync-settings.ts';
import { pendingChangesOfKinds, pendingOutboundOfKinds, type PendingChange, type PendingKind, type PendingOfKind } from '../../db/sync-status.ts';
import { getUser } from '../../db/users.ts';
import { SCALAR_FIELDS, applyTags, contactLabel, type ContactFields } from './contact-model.ts';
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

export interface ReleasePreview {
  /** Contacts not in HighLevel that go there: created, or linked to one with the same email or phone. */
  created: ReleasedGroup;
  /** Contacts in both whose held edits go to HighLevel. */
  updated: ReleasedGroup;
  /**
   * What the preview describes, opaque (releaseFingerprint): a save sent with it is refused when
   * saving would send anything else, or the settings changed since.
   */
  fingerprint: string;
}

export const RELEASE_SAMPLE_SIZE = 5;

/** How a released edit goes out: the full merge (updates Bi-directional) or the fill of HighLevel's empty fields. */
export type Release = 'merge' | 'fill';

/**
 * What `to` releases of what `from` holds back (the rules of outbound.ts's pushRow): contacts not
 * in HighLevel wait for Contact creation, edits of linked ones for Contact update, and the fill of
 * a contact just linked by email or phone for either (with both Inbound); a fill released by
 * Contact creation alone fills HighLevel's empty fields only.
 */
export function releasedBy(from: Directions, to: Directions): { created: boolean; edits: boolean; fills: Release | null } {
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
function releasedKinds(released: ReturnType<typeof releasedBy>): PendingKind[] {
  return [...(released.created ? (['new'] as const) : []), ...(released.edits ? (['edit'] as const) : []), ...(released.fills ? (['fill'] as const) : [])];
}

/**
 * A release's fingerprint: the settings revision it starts from, the switch, and each change it
 * sends (its outbox row, contact, kind and when it was last queued, which every Tandem-side write
 * of the contact moves on). Changes from HighLevel are not in it: they are not held, and where one
 * meets a released edit the more recent change wins, as the dialog says. Pure.
 */
export function fingerprintOf(input: { revision: number; from: Directions; to: Directions; changes: readonly PendingChange[] }): string {
  const { revision, from, to, changes } = input;
  const hash = createHash('sha256').update(JSON.stringify(['release', revision, from.creationDirection, from.updateDirection, to.creationDirection, to.updateDirection]));
  for (const c of changes) hash.update(`\n${JSON.stringify([c.rowId, c.contactId, c.kind, c.queuedAt])}`);
  return hash.digest('hex');
}

/**
 * The fingerprint of saving `to` over the location's settings `from` as things are now. Reads only;
 * run it in the transaction of whatever it is compared with or shown beside.
 */
export function releaseFingerprint(db: Db, locationId: string, from: Directions, to: Directions): string {
  const changes = pendingChangesOfKinds(db, locationId, releasedKinds(releasedBy(from, to)));
  return fingerprintOf({ revision: settingsRevision(db, locationId), from, to, changes });
}

/**
 * What saving `to` over the location's settings `from` sends to HighLevel at once. Reads only; run
 * it in one transaction with the read of `from`, so its counts and fingerprint describe one moment.
 */
export function releasePreview(db: Db, locationId: string, from: Directions, to: Directions): ReleasePreview {
  const fingerprint = releaseFingerprint(db, locationId, from, to);
  const released = releasedBy(from, to);
  if (!released.created && !released.edits && !released.fills) return { created: none(), updated: none(), fingerprint };
  const pending = pendingOutboundOfKinds(db, locationId, RELEASE_SAMPLE_SIZE);
  // As outbound.ts's pass: once the location's custom fields are listed, only theirs are sent.
  const sendable = sendableIn(db, locationId);
  const owner = (id: unknown) => (typeof id === 'string' ? (getUser(db, locationId, id)?.name ?? 'a user no longer in Tandem') : id);

  const sample = (contactId: string, release: Release | null): ReleasedContact | undefined => {
    const contact = getContact(db, locationId, contactId);
    if (!contact) return undefined;
    const label = contactLabel(contact.fields, 'An unnamed contact');
    if (!release) return { contactId, label, changes: [] };
    const link = getLinkByContact(db, locationId, contactId);
    if (!link) return undefined;
    const changes = releasedChanges(link.base, contact.fields, release, sendable).map((c) =>
      c.field === 'ownerUserId' ? { ...c, from: owner(c.from), to: owner(c.to) } : c,
    );
    // Nothing left to send (changed back since): it goes out as nothing, and is no example.
    return changes.length ? { contactId, label, changes } : undefined;
  };
  const group = (parts: Array<{ of: PendingOfKind; release: Release | null }>): ReleasedGroup => ({
    count: parts.reduce((n, p) => n + p.of.count, 0),
    samples: parts
      .flatMap((p) => p.of.contactIds.map((id) => sample(id, p.release)))
      .filter((s): s is ReleasedContact => s !== undefined)
      .slice(0, RELEASE_SAMPLE_SIZE),
  });

  return {
    created: released.created ? group([{ of: pending.new, release: null }]) : none(),
    updated: group([
      ...(released.edits ? [{ of: pending.edit, release: 'merge' as const }] : []),
      ...(released.fills ? [{ of: pending.fill, release: released.fills }] : []),
    ]),
    fingerprint,
  };
}

const none = (): ReleasedGroup => ({ count: 0, samples: [] });
