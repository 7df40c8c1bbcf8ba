// When a contact's email or phone is on a HighLevel contact that another Tandem contact holds.
// HighLevel keeps one contact per email or phone (a location that does not allow duplicates,
// CONTRACT §3.6): a create or an edit that would make a second is refused. The continuous push
// refuses to create a contact, or link it, to a HighLevel contact another LIVE Tandem contact is
// linked to; the release preview predicts that from Tandem's own data. One rule for both, here.
import type { Db } from '../../db/client.ts';
import { findContactsByEmail, findContactsByPhone, getContact, liveContactsByKeys } from '../../db/contacts.ts';
import { getLinkByContact, getLinkByRemote, type Link } from '../../db/links.ts';
import { getOutbox } from '../../db/outbox.ts';
import { getSyncSettings } from '../../db/sync-settings.ts';
import { failedChangesOfKinds, pendingChangesOfKinds } from '../../db/sync-status.ts';

/** The Tandem contact a HighLevel contact is linked to, as far as the rule needs it. */
export interface Holder {
  contactId: string;
  archivedAt: number | null;
}

/**
 * Whether `holder` keeps the HighLevel contact from `contactId`: it is another Tandem contact, and
 * live. One archived in Tandem does not count: its HighLevel contact lived on (the deletion was not
 * sent), and a new Tandem contact with its email or phone takes it over, instead of being refused
 * for good because of a contact no one uses any more. Pure.
 */
export function holdsElsewhere(holder: Holder | undefined, contactId: string): boolean {
  return holder !== undefined && holder.contactId !== contactId && holder.archivedAt === null;
}

/**
 * The link by which another Tandem contact holds this HighLevel contact for the push (read now:
 * links change between passes): a live one, or one archived whose deletion waits to go out to
 * HighLevel. That HighLevel contact is about to be deleted, not free to take over: taking it over
 * and then deleting it would leave the taker with no HighLevel contact (QA). Once the deletion is
 * sent (or completed unsent, with a direction Inbound) the archived contact holds nothing.
 */
export function liveHolder(db: Db, locationId: string, highlevelId: string, contactId: string): Link | undefined {
  const other = getLinkByRemote(db, locationId, highlevelId);
  if (!other || other.contactId === contactId) return undefined;
  const contact = getContact(db, locationId, other.contactId);
  if (!contact) return undefined;
  return holdsElsewhere({ contactId: other.contactId, archivedAt: contact.archivedAt }, contactId) || deletionOnItsWay(db, locationId, contact.id) ? other : undefined;
}

/**
 * Whether the contact's deletion waits to go out to HighLevel: its outbox row is a pending archive,
 * and the settings send deletions (both directions Bi-directional, server/sync/outbound.ts
 * pushArchive); otherwise the row completes unsent and the HighLevel contact lives on.
 */
export function deletionOnItsWay(db: Db, locationId: string, contactId: string): boolean {
  const row = getOutbox(db, locationId, contactId);
  if (row?.kind !== 'archive' || row.status !== 'pending') return false;
  const settings = getSyncSettings(db, locationId);
  return settings.creationDirection === 'bidirectional' && settings.updateDirection === 'bidirectional';
}

// HighLevel's duplicate rule compares emails case-insensitively and phones by their digits.
const digits = (phone: string) => phone.replace(/\D/g, '');

/** An email as the duplicate rule compares it; null for none. */
export function emailKey(email: string | null | undefined): string | null {
  return email?.trim() ? `e:${email.trim().toLowerCase()}` : null;
}

/** A phone as the duplicate rule compares it; null for none. */
export function phoneKey(phone: string | null | undefined): string | null {
  return phone && digits(phone) ? `p:${digits(phone)}` : null;
}

export function keysOf(email: string | null | undefined, phone: string | null | undefined): string[] {
  return [emailKey(email), phoneKey(phone)].filter((k): k is string => k !== null);
}

/** A Tandem contact and the email and phone its HighLevel contact holds, as the ledger says (keys). */
export interface KeyHolder extends Holder {
  email: string | null;
  phone: string | null;
}

/**
 * Which Tandem contact's HighLevel contact holds an email or phone, as Tandem's ledger says (what
 * HighLevel held when last synced), for a prediction of what the push meets. Looked up by Tandem's
 * own value, which is the ledger's once synced, plus the ledger's values of live contacts whose
 * pending or refused edits moved theirs away; a tombstoned link holds nothing. Then moved as the
 * changes the caller predicts would move them (take, drop). Archived contacts are looked up only
 * when asked (`archived`): that lookup costs a query each, too many for every new contact of a release.
 * Reads only.
 */
export class LedgerKeys {
  /** Keys the predicted changes moved: their holder now, or null for none. */
  private moves = new Map<string, KeyHolder | null>();
  private looked = new Map<string, KeyHolder | null>();
  private moved: Map<string, KeyHolder> | undefined;

  constructor(
    private readonly db: Db,
    private readonly locationId: string,
  ) {}

  /** The contact whose HighLevel contact holds this email or phone: a live one, or, when `archived`, any (a live one first). */
  holder(field: 'email' | 'phone', value: string, archived = false): KeyHolder | undefined {
    const key = field === 'email' ? emailKey(value) : phoneKey(value);
    if (key === null) return undefined;
    if (this.moves.has(key)) return this.moves.get(key) ?? undefined;
    const asked = `${archived ? 'any' : 'live'} ${key}`;
    if (!this.looked.has(asked)) this.looked.set(asked, this.lookup(field, value, key, archived));
    return this.looked.get(asked) ?? undefined;
  }

  /** `holder`'s HighLevel contact now holds its keys. */
  take(holder: KeyHolder): void {
    for (const key of [holder.email, holder.phone]) if (key !== null) this.moves.set(key, holder);
  }

  /** The contact's HighLevel contact no longer holds this key (its ledger's: it held it, unless another took it since). */
  drop(key: string | null, contactId: string): void {
    if (key !== null && (this.moves.get(key)?.contactId ?? contactId) === contactId) this.moves.set(key, null);
  }

  /**
   * Looks up the live holders of these emails and phones in one batch (as many queries as for one),
   * so that holder() answers for them without a query each: for the new contacts of a release.
   * `unlinked`: contacts known to hold nothing in HighLevel (those new contacts), not looked at.
   */
  prefetch(values: { emails: string[]; phones: string[] }, unlinked: ReadonlySet<string>): void {
    const found = liveContactsByKeys(this.db, this.locationId, values).filter((c) => !unlinked.has(c.id));
    const candidates = new Map(found.map((c) => [c.id, { id: c.id, archivedAt: null }]));
    const byKey = new Map<string, KeyHolder[]>();
    for (const held of this.ledgerOf([...candidates.values()])) {
      for (const key of [held.email, held.phone]) if (key !== null) byKey.set(key, [...(byKey.get(key) ?? []), held]);
    }
    for (const [field, list] of [['email', values.emails], ['phone', values.phones]] as const) {
      for (const value of list) {
        const key = field === 'email' ? emailKey(value) : phoneKey(value);
        if (key !== null && !this.looked.has(`live ${key}`)) this.looked.set(`live ${key}`, this.pick(key, byKey.get(key) ?? []));
      }
    }
  }

  private lookup(field: 'email' | 'phone', value: string, key: string, archived: boolean): KeyHolder | null {
    const { db, locationId } = this;
    const candidates: Array<{ id: string; archivedAt: number | null }> = archived
      ? field === 'email'
        ? findContactsByEmail(db, locationId, value, { includeArchived: true })
        : findContactsByPhone(db, locationId, value, { includeArchived: true })
      : liveContactsByKeys(db, locationId, field === 'email' ? { emails: [value], phones: [] } : { emails: [], phones: [value] }).map((c) => ({ id: c.id, archivedAt: null }));
    return this.pick(key, this.ledgerOf(candidates).filter((h) => h.email === key || h.phone === key));
  }

  /** What the candidates' links hold (a tombstoned one: nothing). */
  private ledgerOf(candidates: Array<{ id: string; archivedAt: number | null }>): KeyHolder[] {
    const held: KeyHolder[] = [];
    for (const contact of candidates) {
      const link = getLinkByContact(this.db, this.locationId, contact.id);
      if (link && link.remoteDeletedAt === null) held.push(ledgerHolder(link, contact.archivedAt));
    }
    return held;
  }

  /** The holder of `key` among `held` (holders of it) and the contacts whose ledger moved away from Tandem: a live one first. */
  private pick(key: string, held: KeyHolder[]): KeyHolder | null {
    const holders = [...held];
    const moved = this.movedAway().get(key);
    if (moved) holders.push(moved);
    return holders.find((h) => h.archivedAt === null) ?? holders[0] ?? null;
  }

  /**
   * The ledger's keys of live contacts whose Tandem edits wait to go out, or were refused (a refused
   * edit leaves HighLevel's contact as it was): they may differ from Tandem's values.
   */
  private movedAway(): Map<string, KeyHolder> {
    if (this.moved) return this.moved;
    this.moved = new Map();
    const kinds = ['edit', 'fill'] as const;
    for (const change of [...pendingChangesOfKinds(this.db, this.locationId, kinds), ...failedChangesOfKinds(this.db, this.locationId, kinds)]) {
      const link = getLinkByContact(this.db, this.locationId, change.contactId);
      if (!link || link.remoteDeletedAt !== null) continue;
      const held = ledgerHolder(link, null);
      for (const key of [held.email, held.phone]) if (key !== null && !this.moved.has(key)) this.moved.set(key, held);
    }
    return this.moved;
  }
}

function ledgerHolder(link: Link, archivedAt: number | null): KeyHolder {
  return { contactId: link.contactId, archivedAt, email: emailKey(link.base.email), phone: phoneKey(link.base.phone) };
}
