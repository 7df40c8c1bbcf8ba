// The panel's Contacts tab API: Tandem's contacts of the session's location, newest change first,
// with whether each is linked to HighLevel; admins edit a contact through the same write the REST
// API makes (origin 'local': outbox row in the same transaction, then the sync loop is woken).
// Each contact also carries its outbox state, and the page the settings that decide where an edit
// goes, so the panel can say what HighLevel has of it and what an edit will do.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { ContactWriteError, decodeCursor, findContactsByEmail, getContact, listRecentContacts, updateContact, type Contact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { outboxStates } from '../../db/outbox.ts';
import type { Direction } from '../../db/schema.ts';
import { getSyncSettings } from '../../db/sync-settings.ts';
import { getUser } from '../../db/users.ts';
import { requireAdmin, requireSession } from '../auth/session.ts';
import { contactFieldsSchema, normalizeContact, normalizeTags, sameEmail, type ContactPatch } from '../sync/contact-model.ts';
import { tenant } from './tenant.ts';

export const PAGE_SIZE = 50;

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

const listQuery = z.object({ query: z.string().max(200).optional(), cursor: z.string().max(300).optional() });

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
  canEdit: boolean;
  sync: PanelContactsSync;
}

export interface PanelContactSaved {
  contact: PanelContactView;
  /** The settings at the moment of the save, so the confirmation says what happens to this edit. */
  sync: PanelContactsSync;
}

type EditField = 'firstName' | 'lastName' | 'email' | 'phone' | 'companyName';
/** The fields the dialog edits, which are also those that tell a contact apart (one must stay). */
const EDIT_FIELDS: EditField[] = ['firstName', 'lastName', 'email', 'phone', 'companyName'];

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

  app.get('/api/panel/contacts', { ...tenant('session') }, async (req, reply): Promise<PanelContactsPage> => {
    const session = await requireSession(req);
    const q = listQuery.safeParse(req.query ?? {});
    if (!q.success) throw invalid(q.error);
    const cursor = q.data.cursor ? decodeCursor(q.data.cursor) : undefined;
    if (q.data.cursor && !cursor) throw new AppError(400, 'invalid_cursor', 'This list position is no longer valid; reload the list.');
    const page = listRecentContacts(db, session.locationId, { ...(q.data.query ? { query: q.data.query } : {}), ...(cursor ? { cursor } : {}), limit: PAGE_SIZE });
    reply.header('cache-control', 'no-store');
    return { contacts: views(session.locationId, page.contacts), nextCursor: page.nextCursor, canEdit: session.role === 'admin', sync: syncOf(session.locationId) };
  });

  app.patch('/api/panel/contacts/:id', { ...tenant('session'), bodyLimit: 16384 }, async (req, reply): Promise<PanelContactSaved> => {
    const session = await requireSession(req);
    requireAdmin(session, 'edit contacts');
    const { locationId } = session;
    const { id } = req.params as { id: string };
    // The contact is looked up before the body is read: another location's id is a plain 404.
    const current = getContact(db, locationId, id);
    if (!current || current.archivedAt !== null) throw new AppError(404, 'not_found', 'No such contact in this sub-account.');
    const body = patchBody.safeParse(req.body ?? {});
    if (!body.success) throw invalid(body.error);
    const { tags, version, ...fields } = body.data;
    // Normalised on top of the current values (as the REST API does), then only the sent fields kept.
    const { contact: merged } = normalizeContact({ ...current.fields, ...fields }, { defaultCountry: current.fields.country ?? 'US' });
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
      if (other) throw new AppError(409, 'duplicate_contact', 'Another contact already has this email.');
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
        throw new AppError(412, 'version_mismatch', 'This contact changed since you opened it. Reload it and try again.');
      }
      if (err instanceof ContactWriteError) throw new AppError(404, 'not_found', 'No such contact in this sub-account.');
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
