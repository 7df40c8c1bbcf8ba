// The panel's Contacts tab API: Tandem's contacts of the session's location, newest change first,
// with whether each is linked to HighLevel; admins edit a contact through the same write the REST
// API makes (origin 'local': outbox row in the same transaction, then the sync loop is woken).
// Each contact also carries its outbox state, and the page the settings that decide where an edit
// goes, so the panel can say what HighLevel has of it and what an edit will do. After Show more,
// the panel's refresh asks for every contact down to the last one it shows (`until`), so a refresh
// keeps the rows the user loaded instead of falling back to the first page. A filter keeps only
// the contacts HighLevel refused, or those with a change waiting to go; paging and `until` then run
// within it, as the search does. One contact is read alone for the edit dialog's Load latest, after
// a save found it changed since the dialog opened. Every page says how many contacts the search and
// filter match in all, counted with the list's own conditions.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import {
  ContactWriteError, countRecentContacts, decodeCursor, encodeCursor, findContactsByEmail, getContact, listRecentContacts, updateContact, type Contact, type ContactCursor,
} from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { outboxStates } from '../../db/outbox.ts';
import type { Direction } from '../../db/schema.ts';
import { getSyncSettings } from '../../db/sync-settings.ts';
import { getUser } from '../../db/users.ts';
import { requireAdmin, requireSession } from '../auth/session.ts';
import { contactFieldsSchema, normalizeContact, normalizeTags, sameEmail, type ContactPatch } from '../sync/contact-model.ts';
import { tenant } from './tenant.ts';

export const PAGE_SIZE = 50;
/**
 * The most contacts one refresh down to `until` returns (twenty pages of Show more), so a panel
 * left open while many contacts arrive reads a bounded list every few seconds. Rows loaded past it
 * give way to it at the next refresh, which then offers Show more from its last row.
 */
export const MAX_REFRESH_ROWS = 1000;

const text = z.string().trim().max(200).nullable();
const patchBody = z.strictObject({
  firstName: text.optional(),
  lastName: text.optional(),
  email: z.string().trim().max(200).refine((s) => s === '' || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s), 'must be an email address, like name@example.com').nullable().optional(),
  phone: z.string().trim().max(40).nullable().optional(),
  companyName: text.optional(),
  tags: z.array(z.string().max(100)).max(100).optional(),
  /** The version the form was filled from; a newer one (a sync landed meanwhile) is a 412. */
  version: z.number().int().positive().optional(),
});

/**
 * The Contacts tab's filters by where a contact's change to HighLevel stands: 'refused' (its
 * outbox row failed for good), 'waiting' (a change waits to go: its turn, a retry, or a setting
 * that holds it). Without one, every contact.
 */
export const CONTACT_FILTERS = ['refused', 'waiting'] as const;
export type ContactFilter = (typeof CONTACT_FILTERS)[number];
const OUTBOX_STATUS_OF: Record<ContactFilter, 'failed' | 'pending'> = { refused: 'failed', waiting: 'pending' };

const listQuery = z.object({
  query: z.string().max(200).optional(),
  filter: z.enum(CONTACT_FILTERS, { error: 'must be refused or waiting; leave it out to list every contact' }).optional(),
  /** The next page: contacts after this position (a `nextCursor`). */
  cursor: z.string().max(300).optional(),
  /** A refresh: every contact from the newest change down to this position (an `endCursor`). */
  until: z.string().max(300).optional(),
});

export interface PanelContactView {
  id: string;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  phone: string | null;
  companyName: string | null;
  tags: string[];
  owner: string | null;
  updatedAt: string;
  version: number;
  /** The HighLevel contact id when the contact is linked; null when not (yet) in HighLevel. */
  highlevelId: string | null;
  /**
   * A change of this contact that has not reached HighLevel, or null when none is outstanding:
   * 'pending' waits for its turn, for a setting (parked) or for a retry, with the last transient
   * error as `reason` when there was one; 'failed' was refused by HighLevel for good, and `reason`
   * says why. Without this a refused contact looked the same as one simply not sent yet.
   */
  outbound: { status: 'pending' | 'failed'; reason: string | null } | null;
}

/** The settings that decide what happens to an edit made here (the Sync tab changes them). */
export interface PanelContactsSync {
  creationDirection: Direction;
  updateDirection: Direction;
  paused: boolean;
}

export interface PanelContactsPage {
  contacts: PanelContactView[];
  nextCursor: string | null;
  /** The position of the last contact of this answer (null when it has none): a refresh's `until`. */
  endCursor: string | null;
  /** How many contacts the search and filter match in all, over every page ("Showing 50 of 1,512"). */
  total: number;
  canEdit: boolean;
  sync: PanelContactsSync;
}

export interface PanelContactSaved {
  contact: PanelContactView;
  /** The settings at the moment of the save, so the confirmation says what happens to this edit. */
  sync: PanelContactsSync;
}

/** One contact as it is now (the same view as its row), and the settings that decide where an edit goes. */
export interface PanelContactRead {
  contact: PanelContactView;
  sync: PanelContactsSync;
}

/** What narrows the list: the search, and where the contacts' changes to HighLevel stand. */
type ListFilters = { query?: string; outbound?: 'failed' | 'pending' };

type EditField = 'firstName' | 'lastName' | 'email' | 'phone' | 'companyName';
/** The fields the dialog edits, which are also those that tell a contact apart (one must stay). */
const EDIT_FIELDS: EditField[] = ['firstName', 'lastName', 'email', 'phone', 'companyName'];

/** An id of no contact of the session's location, or of one archived (deleted in HighLevel) since. */
const NOT_FOUND = 'This contact is no longer in this sub-account; it may have been deleted.';

/** A phone typed with an extension (shown under the edit dialog's form, as the others). */
export const PHONE_EXTENSION =
  'Enter the phone number without its extension: Tandem stores phone numbers without extensions. Keep the extension in another field, such as a custom field in HighLevel. Nothing was saved.';

export const IDENTITY_REQUIRED = 'Keep at least one of First name, Last name, Email, Phone or Company: a contact with none of them cannot be told apart. Nothing was saved.';

function invalid(error: z.ZodError): AppError {
  const unknown = error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
  if (unknown.length) return new AppError(400, 'invalid_request', `Unknown properties: ${unknown.join(', ')}.`);
  const first = error.issues[0];
  return new AppError(400, 'invalid_request', first ? `${first.path.join('.') || 'request'}: ${first.message}` : 'Invalid request.');
}

export function registerPanelContactRoutes(app: FastifyInstance, deps: { db: Db; clock: Clock; wake?: (locationId: string) => void }): void {
  const { db, clock } = deps;

  const syncOf = (locationId: string): PanelContactsSync => {
    const s = getSyncSettings(db, locationId);
    return { creationDirection: s.creationDirection, updateDirection: s.updateDirection, paused: s.paused };
  };

  const view = (c: Contact, outbound: PanelContactView['outbound']): PanelContactView => {
    const owner = c.fields.ownerUserId ? getUser(db, c.locationId, c.fields.ownerUserId) : undefined;
    const f = c.fields;
    return {
      id: c.id,
      firstName: f.firstName,
      lastName: f.lastName,
      email: f.email,
      phone: f.phone,
      companyName: f.companyName,
      tags: f.tags,
      owner: owner?.name ?? f.ownerUserId,
      updatedAt: new Date(c.updatedAt).toISOString(),
      version: c.version,
      highlevelId: liveHighLevelId(c),
      outbound,
    };
  };

  // A link whose HighLevel contact was deleted names nothing in HighLevel: the contact (restored in
  // Tandem since) is a new one for HighLevel, and shows as one.
  const liveHighLevelId = (c: Contact): string | null => {
    const link = getLinkByContact(db, c.locationId, c.id);
    return link && link.remoteDeletedAt === null ? link.highlevelId : null;
  };

  const views = (locationId: string, contacts: Contact[]): PanelContactView[] => {
    // A parked row's reason only restated the setting that held it; the page's `sync` says what holds it now.
    const outbound = outboxStates(db, locationId, contacts.map((c) => c.id));
    return contacts.map((c) => view(c, outbound.get(c.id) ?? null));
  };

  /**
   * Every contact from the newest change down to `until`, read a page at a time as Show more read
   * them, at most MAX_REFRESH_ROWS. A contact changed since moved to the top and is read there; the
   * next page after these starts right after `until`, where Show more left off.
   */
  const listDownTo = (locationId: string, query: ListFilters, until: ContactCursor): { contacts: Contact[]; nextCursor: string | null } => {
    // The list runs newest first, by (updatedAt, id) as the keyset orders them (ids are ASCII, so
    // JavaScript compares them as SQLite does).
    const beyond = (c: Contact) => c.updatedAt < until.updatedAt || (c.updatedAt === until.updatedAt && c.id < until.id);
    const contacts: Contact[] = [];
    let cursor: ContactCursor | undefined;
    for (;;) {
      const page = listRecentContacts(db, locationId, { ...query, ...(cursor ? { cursor } : {}), limit: Math.min(PAGE_SIZE, MAX_REFRESH_ROWS - contacts.length) });
      const within = page.contacts.filter((c) => !beyond(c));
      contacts.push(...within);
      if (within.length < page.contacts.length) return { contacts, nextCursor: encodeCursor(until) };
      if (!page.nextCursor || contacts.length >= MAX_REFRESH_ROWS) return { contacts, nextCursor: page.nextCursor };
      cursor = decodeCursor(page.nextCursor);
    }
  };

  app.get('/api/panel/contacts', { ...tenant('session') }, async (req, reply): Promise<PanelContactsPage> => {
    const session = await requireSession(req);
    const q = listQuery.safeParse(req.query ?? {});
    if (!q.success) throw invalid(q.error);
    if (q.data.cursor && q.data.until) throw new AppError(400, 'invalid_request', 'Send cursor (the next page) or until (a refresh), not both.');
    const position = q.data.cursor ?? q.data.until;
    const cursor = position ? decodeCursor(position) : undefined;
    if (position && !cursor) throw new AppError(400, 'invalid_cursor', 'This list position is no longer valid; reload the list.');
    const query: ListFilters = {
      ...(q.data.query ? { query: q.data.query } : {}),
      ...(q.data.filter ? { outbound: OUTBOX_STATUS_OF[q.data.filter] } : {}),
    };
    const page =
      q.data.until && cursor
        ? listDownTo(session.locationId, query, cursor)
        : listRecentContacts(db, session.locationId, { ...query, ...(cursor ? { cursor } : {}), limit: PAGE_SIZE });
    const last = page.contacts.at(-1);
    reply.header('cache-control', 'no-store');
    return {
      contacts: views(session.locationId, page.contacts),
      nextCursor: page.nextCursor,
      endCursor: last ? encodeCursor(last) : null,
      total: countRecentContacts(db, session.locationId, query),
      canEdit: session.role === 'admin',
      sync: syncOf(session.locationId),
    };
  });

  app.get('/api/panel/contacts/:id', { ...tenant('session') }, async (req, reply): Promise<PanelContactRead> => {
    const session = await requireSession(req);
    const { id } = req.params as { id: string };
    // The session's location only: another location's id is a plain 404, as an unknown one.
    const contact = getContact(db, session.locationId, id);
    if (!contact || contact.archivedAt !== null) throw new AppError(404, 'not_found', NOT_FOUND);
    reply.header('cache-control', 'no-store');
    return { contact: views(session.locationId, [contact])[0]!, sync: syncOf(session.locationId) };
  });

  app.patch('/api/panel/contacts/:id', { ...tenant('session'), bodyLimit: 16384 }, async (req, reply): Promise<PanelContactSaved> => {
    const session = await requireSession(req);
    requireAdmin(session, 'edit contacts');
    const { locationId } = session;
    const { id } = req.params as { id: string };
    // The contact is looked up before the body is read: another location's id is a plain 404.
    const current = getContact(db, locationId, id);
    if (!current || current.archivedAt !== null) throw new AppError(404, 'not_found', NOT_FOUND);
    const body = patchBody.safeParse(req.body ?? {});
    if (!body.success) throw invalid(body.error);
    const { tags, version, ...fields } = body.data;
    // Normalised on top of the current values (as the REST API does), then only the sent fields kept.
    const { contact: merged, issues } = normalizeContact({ ...current.fields, ...fields }, { defaultCountry: current.fields.country ?? 'US' });
    // A phone with an extension: stored as E.164, which has none, it would lose the extension unsaid.
    const extension = 'phone' in fields ? issues.find((i) => i.code === 'phone_extension') : undefined;
    if (extension) throw new AppError(400, 'invalid_request', PHONE_EXTENSION);
    const checked = contactFieldsSchema.safeParse({ ...merged, tags: current.fields.tags, customFields: current.fields.customFields });
    if (!checked.success) throw invalid(checked.error);
    // A contact nobody can tell apart (no name, email, phone or company) is refused by the REST API
    // too, and with Contact update Bi-directional the blanks would clear HighLevel's copy. An edit
    // may not empty the last of them; a contact that already had none (HighLevel allows those, and
    // sends them) may still be edited otherwise. The panel creates no contacts, so there is no create to refuse.
    if (EDIT_FIELDS.some((f) => current.fields[f] !== null) && EDIT_FIELDS.every((f) => checked.data[f] === null)) {
      throw new AppError(400, 'contact_unidentifiable', IDENTITY_REQUIRED);
    }
    const patch: ContactPatch = {};
    for (const f of EDIT_FIELDS) if (f in fields) patch[f] = checked.data[f];
    if (patch.email && !sameEmail(patch.email, current.fields.email)) {
      const other = findContactsByEmail(db, locationId, patch.email).find((c) => c.id !== current.id);
      if (other) throw new AppError(409, 'duplicate_contact', 'Another contact in this sub-account already has this email, so nothing was saved.');
    }
    const nextTags = tags === undefined ? undefined : normalizeTags(tags);
    let contact: Contact;
    try {
      contact = updateContact(db, {
        locationId,
        id: current.id,
        patch,
        ...(nextTags ? { tags: { add: nextTags, remove: current.fields.tags.filter((t) => !nextTags.includes(t)) } } : {}),
        now: clock.now(),
        origin: 'local',
        ...(version !== undefined ? { expectedVersion: version } : {}),
      });
    } catch (err) {
      if (err instanceof ContactWriteError && err.code === 'version_mismatch') {
        // The panel offers Load latest beside it (web/lib/ContactsTab.svelte).
        throw new AppError(412, 'version_mismatch', 'This contact changed after you opened it, so nothing was saved.');
      }
      if (err instanceof ContactWriteError) throw new AppError(404, 'not_found', NOT_FOUND);
      throw err;
    }
    if (contact.version !== current.version) {
      try {
        deps.wake?.(locationId);
      } catch (err) {
        app.log.warn({ err, locationId }, 'could not wake the sync loop');
      }
    }
    reply.header('cache-control', 'no-store');
    return { contact: views(locationId, [contact])[0]!, sync: syncOf(locationId) };
  });
}
