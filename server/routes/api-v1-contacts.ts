// REST API: the contact book. Thin: validate, normalise through the contact model, write through
// db/contacts.ts (origin 'local', so the outbox row is written in the same transaction), then
// nudge the location's sync loop. Every contact answered says where it stands with HighLevel (its
// link, its outbox row), read for a whole page at once.
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { AppError, errorBody } from '../errors.ts';
import {
  archiveContact,
  ContactWriteError,
  createContact,
  decodeCursor,
  findContactsByEmail,
  getContact,
  listContacts,
  restoreContact,
  updateContact,
  type Contact,
} from '../../db/contacts.ts';
import { liveHighLevelIds } from '../../db/links.ts';
import { outboxStates } from '../../db/outbox.ts';
import { getUser } from '../../db/users.ts';
import {
  contactFieldsSchema,
  normalizeContact,
  normalizePhone,
  normalizeTags,
  sameEmail,
  SCALAR_FIELDS,
  type ContactFields,
  type ContactPatch,
  type NormalizationIssue,
} from '../sync/contact-model.ts';
import {
  contactCreateBody,
  contactJson,
  contactListQuery,
  contactPage,
  contactPatchBody,
  contactResponse,
  draftOf,
  READ_ONLY_FIELDS,
  type ContactJson,
  type ContactSyncJson,
  described,
  errorReply,
  errors,
  idParams,
  ifMatchHeaders,
} from './api-v1-schemas.ts';
import { ApiError, apiTenant, type ApiInstance, type ApiV1Deps } from './api-v1.ts';
import { customFieldChecker } from './api-v1-custom-fields.ts';
import { apiIssueMessage, issuePath } from './api-v1-issues.ts';
import { tenant } from './tenant.ts';

/** Longer than any cursor this API returns (an ISO time and an id, base64url). */
const MAX_CURSOR = 200;

function notFound(): AppError {
  return new AppError(404, 'not_found', 'No contact with this id in this location.');
}

/** The fields as stored, or a 400 naming what the contact model refuses. */
function valid(fields: ContactFields): ContactFields {
  const parsed = contactFieldsSchema.safeParse(fields, { error: apiIssueMessage });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${issuePath(i.path) || 'contact'}: ${i.message}`);
    throw new AppError(400, 'invalid_request', `Invalid request: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/**
 * A phone sent with an extension is refused: Tandem stores phones in E.164, which has no extension,
 * and storing the number alone would drop part of what was sent without a word.
 */
function refuseExtension(issues: readonly NormalizationIssue[]): void {
  const issue = issues.find((i) => i.code === 'phone_extension');
  if (!issue) return;
  throw new AppError(
    400,
    'invalid_request',
    `Invalid request: body.phone: must be a number without an extension (this one has extension ${issue.extension}, and Tandem stores phones without extensions); send the number alone, and keep the extension in another field, such as a custom field.`,
  );
}

// A contact nobody can tell apart (no name, email, phone or company) is of no use to a dialer or a
// help desk, and would be created as a blank record in HighLevel: refused on create, and on an
// update that would clear the last of them. HighLevel itself allows such contacts and hands them to
// us: an update that leaves one as blank as it came is not refused (it clears nothing).
const IDENTITY_FIELDS = ['firstName', 'lastName', 'email', 'phone', 'companyName'] as const;
const NEEDS_IDENTITY = 'a contact needs at least one of firstName, lastName, email, phone or companyName';

const identified = (f: ContactFields) => IDENTITY_FIELDS.some((k) => f[k] !== null);

/** The fields a PATCH writes, as named in its body (its read-only ones are only taken back unchanged). */
const WRITABLE = new Set(Object.keys(contactPatchBody.shape).filter((k) => !(READ_ONLY_FIELDS as readonly string[]).includes(k)));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `value` without the keys whose value is `current`'s (deep equality: arrays, null). */
function withoutSame(value: Record<string, unknown>, current: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([k, v]) => !(k in current && isDeepStrictEqual(v, current[k]))));
}

/**
 * A PATCH body without the fields it sends with the value they already have, so that only the
 * fields that change are validated: a GET → PATCH round trip of what HighLevel gave us (a time zone
 * it knows and this runtime does not, an email host with "_", a longer name) is not refused for
 * values it leaves as they are. Leaving them out changes nothing else: written, they were no-ops.
 * Tags count only when sent alone (with addTags / removeTags they are refused whatever they are).
 */
function unchangedLeftOut(body: unknown, current: ContactJson): unknown {
  if (!isObject(body)) return body;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const now = (current as Record<string, unknown>)[key];
    // What GET gives and PATCH does not write (id, version, dates…) is dropped when it is unchanged:
    // a contact can be sent back exactly as read. Changed, it stays, and the schema refuses it as
    // read-only (or, not a property of a contact at all, as unknown).
    if (!WRITABLE.has(key) && key in current && isDeepStrictEqual(value, now)) continue;
    if (!WRITABLE.has(key) || (key === 'tags' && ('addTags' in body || 'removeTags' in body))) out[key] = value;
    else if ((key === 'address' || key === 'customFields') && isObject(value) && isObject(now)) out[key] = withoutSame(value, now);
    else if (!isDeepStrictEqual(value, now)) out[key] = value;
  }
  return out;
}

/**
 * Where the contact stands with HighLevel: it changes without its version (the sync links it, a
 * refusal comes back), so a body read a moment before says otherwise without being stale, and no
 * client sets it. Left out of every PATCH body, whatever it says.
 */
const SYNC_STATE_FIELDS = ['highlevelId', 'outbound'] as const;

function withoutSyncState(body: unknown): unknown {
  if (!isObject(body) || !SYNC_STATE_FIELDS.some((k) => k in body)) return body;
  return Object.fromEntries(Object.entries(body).filter(([k]) => !(SYNC_STATE_FIELDS as readonly string[]).includes(k)));
}

/**
 * What changes with the contact without the client writing it: sent back differing, it is a stale
 * read (the contact changed since that GET), not an attempt to set it. archivedAt too, but only with
 * the version (an archive or a restore bumps it): alone, it was set by hand. id and createdAt never
 * change.
 */
const STALE_READ_SHAPES = {
  version: contactResponse.shape.version,
  updatedAt: contactResponse.shape.updatedAt.refine((v) => !Number.isNaN(Date.parse(v))),
  archivedAt: contactResponse.shape.archivedAt.refine((v) => v === null || !Number.isNaN(Date.parse(v))),
};
type StaleReadField = keyof typeof STALE_READ_SHAPES;
const isStaleReadField = (k: string): k is StaleReadField => k in STALE_READ_SHAPES;

/**
 * The read-only properties `body` sends that differ from the contact's (`current`), when they are
 * all ones that change by themselves and each is shaped as a GET gives it: the body is an earlier
 * read of the contact. Undefined otherwise (nothing differs, or something the schema refuses as
 * read-only: a changed id, a version that is no number).
 */
function staleRead(body: unknown, current: ContactJson): StaleReadField[] | undefined {
  if (!isObject(body)) return undefined;
  const differing = READ_ONLY_FIELDS.filter((k) => k in body && !isDeepStrictEqual(body[k], current[k]));
  const stale = differing.filter(isStaleReadField).filter((k) => STALE_READ_SHAPES[k].safeParse(body[k]).success);
  if (stale.includes('archivedAt') && !stale.includes('version')) return undefined;
  return differing.length > 0 && stale.length === differing.length ? stale : undefined;
}

function versionMismatch(currentVersion: number, message: string): ApiError {
  return new ApiError(412, 'version_mismatch', message, { currentVersion });
}

/** `"3"`, `W/"3"` or `3` → 3; `*` (any current version, RFC 9110) → none; anything else is a 400. */
function expectedVersion(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(header);
  if (!m) throw new AppError(400, 'invalid_request', 'If-Match must be a contact version, e.g. If-Match: "3".');
  return Number(m[1]);
}

export function registerApiContactRoutes(api: ApiInstance, deps: ApiV1Deps): void {
  const { db, clock } = deps;
  const checkedCustomFields = customFieldChecker(deps);
  const countryFor = (locationId: string, contactCountry: string | null) => contactCountry ?? deps.defaultCountry?.(locationId) ?? 'US';

  const requireOwner = (locationId: string, ownerUserId: string | null | undefined) => {
    if (!ownerUserId) return;
    const user = getUser(db, locationId, ownerUserId);
    if (!user || !user.active) throw new AppError(400, 'unknown_owner', `ownerUserId ${JSON.stringify(ownerUserId)} is not an active user of this location.`);
  };

  const written = (locationId: string, c: Contact) => {
    deps.wake?.(locationId);
    return c;
  };

  /**
   * The contacts as the API shows them, with where each stands with HighLevel (as the panel's
   * Contacts tab, server/routes/panel-contacts.ts): its HighLevel id while its link is live (a
   * link whose HighLevel contact was deleted names nothing there), and its outbox row. Read for all
   * of them at once, one query each.
   */
  const asJson = (locationId: string, contacts: readonly Contact[]): ContactJson[] => {
    const ids = contacts.map((c) => c.id);
    const outbound = outboxStates(db, locationId, ids);
    const linked = liveHighLevelIds(db, locationId, ids);
    return contacts.map((c) => {
      const state = outbound.get(c.id);
      const sync: ContactSyncJson = { highlevelId: linked.get(c.id) ?? null, outbound: state ? { status: state.status, reason: state.reason } : null };
      return contactJson(c, sync);
    });
  };
  const oneJson = (c: Contact): ContactJson => asJson(c.locationId, [c])[0]!;

  /** Runs a contact write, turning its refusals into HTTP answers. */
  const write = (fn: () => Contact): Contact => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ContactWriteError && err.code === 'not_found') throw notFound();
      if (err instanceof ContactWriteError) {
        throw versionMismatch(err.currentVersion!, `The contact changed since the version you sent; its current version is ${err.currentVersion}. Read it again and retry.`);
      }
      throw err;
    }
  };

  api.get(
    '/api/v1/contacts',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['contacts'],
        operationId: 'listContacts',
        summary: 'List contacts',
        description:
          'Ordered by (updatedAt, id), oldest first. A contact changed while you page moves to a later page, so paging to the end misses nothing; poll again with `updatedSince` for later changes. Archived contacts only with includeArchived=true.',
        querystring: contactListQuery,
        response: { 200: described('A page of contacts, oldest change first; follow nextCursor for the next.', contactPage), ...errors(400, 401) },
      },
    },
    async (req) => {
      const { locationId } = apiTenant(req);
      const q = req.query;
      // A cursor longer than any this API hands out is not decoded at all.
      const cursor = q.cursor === undefined || q.cursor.length > MAX_CURSOR ? undefined : decodeCursor(q.cursor);
      if (q.cursor !== undefined && !cursor) throw new AppError(400, 'invalid_cursor', 'cursor is not one this API returned; start again without it.');
      const page = listContacts(db, locationId, {
        filters: {
          ...(q.email !== undefined ? { email: q.email } : {}),
          ...(q.phone !== undefined ? { phone: normalizePhone(q.phone, countryFor(locationId, null)).phone ?? '' } : {}),
          ...(q.tag !== undefined ? { tag: q.tag } : {}),
          ...(q.ownerUserId !== undefined ? { ownerUserId: q.ownerUserId } : {}),
          ...(q.updatedSince !== undefined ? { updatedSince: Date.parse(q.updatedSince) } : {}),
          includeArchived: q.includeArchived === 'true',
        },
        ...(cursor ? { cursor } : {}),
        limit: q.limit ?? 50,
      });
      return { contacts: asJson(locationId, page.contacts), nextCursor: page.nextCursor };
    },
  );

  api.get(
    '/api/v1/contacts/:id',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['contacts'],
        operationId: 'getContact',
        summary: 'Get a contact (archived ones too)',
        params: idParams,
        response: { 200: described('The contact; ETag carries its version.', contactResponse), ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const contact = getContact(db, apiTenant(req).locationId, req.params.id);
      if (!contact) throw notFound();
      reply.header('etag', `"${contact.version}"`);
      return oneJson(contact);
    },
  );

  api.post(
    '/api/v1/contacts',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['contacts'],
        operationId: 'createContact',
        summary: 'Create a contact',
        description:
          'A contact needs at least one of firstName, lastName, email, phone or companyName. Fields are normalised (trimmed; phone to E.164; tags lower case and unique). An email another active contact of this location already has is refused with 409 naming it (`error.contactId`), unless allowDuplicate is true. A 201 means Tandem has the contact, not HighLevel: `outbound` says it waits to go; read it later for its `highlevelId`, or for `outbound` failed with HighLevel’s reason (a duplicate email or phone, say).',
        body: contactCreateBody,
        response: {
          201: described('Created: Location names the new contact, ETag carries its version.', contactResponse),
          ...errors(400, 401, 413, 415),
          409: errorReply('Another active contact of this location has the email (`duplicate_contact`; `error.contactId` names it).'),
        },
      },
    },
    async (req, reply) => {
      const { locationId } = apiTenant(req);
      const { allowDuplicate, tags, customFields, ...rest } = req.body;
      const draft = draftOf(rest);
      const country = typeof draft.country === 'string' ? draft.country.trim().toUpperCase() || null : null;
      const { contact: fields, issues } = normalizeContact(
        { ...draft, tags: tags ?? [], customFields: checkedCustomFields(locationId, customFields ?? {}) },
        { defaultCountry: countryFor(locationId, country) },
      );
      refuseExtension(issues);
      const checked = valid(fields);
      if (!identified(checked)) throw new AppError(400, 'invalid_request', `Invalid request: ${NEEDS_IDENTITY}.`);
      requireOwner(locationId, checked.ownerUserId);
      // Check and insert run without an await between them, so no other request slips in.
      if (checked.email && !allowDuplicate) {
        const existing = findContactsByEmail(db, locationId, checked.email)[0];
        if (existing) {
          return reply.code(409).send({
            error: { ...errorBody('duplicate_contact', `A contact with this email already exists (${existing.id}). Update it, or send allowDuplicate: true.`).error, contactId: existing.id },
          });
        }
      }
      const contact = createContact(db, { locationId, fields: checked, now: clock.now(), origin: 'local' });
      reply.code(201).header('etag', `"${contact.version}"`).header('location', `/api/v1/contacts/${contact.id}`);
      return oneJson(written(locationId, contact));
    },
  );

  api.patch(
    '/api/v1/contacts/:id',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['contacts'],
        operationId: 'updateContact',
        summary: 'Update a contact',
        description:
          'Only the fields sent change; null or "" clears one (not the last of firstName, lastName, email, phone and companyName the contact has). A field sent with the value it has is left as it is and not checked, so a contact read with GET can be sent back as read: its read-only properties (id, createdAt, updatedAt, archivedAt, version) are then ignored, and refused as read-only when they differ; highlevelId and outbound, which change without the version, are always ignored. A body read before the contact changed (only version or updatedAt differ, or archivedAt with version) is a 412, as a stale If-Match is; with If-Match: * they are ignored. Tags: `tags` replaces them, or `addTags` / `removeTags` change some (not the same tag in both). With If-Match, the update happens only on that version (412 otherwise). An email another active contact already has is refused with 409.',
        params: idParams,
        headers: ifMatchHeaders,
        body: contactPatchBody,
        response: {
          200: described('The contact as it now is; ETag carries its version.', contactResponse),
          ...errors(400, 401, 404, 412, 413, 415),
          409: errorReply('The contact is archived (`archived`: restore it first), or another active contact has the email (`duplicate_contact`; `error.contactId` names it).'),
        },
      },
      // Before validation, which then sees only the fields that change (unchangedLeftOut). A body
      // that is an earlier read of the contact (QA: a stale GET → PATCH was a 400 "updatedAt is
      // read-only") is answered as a stale If-Match is, unless If-Match: * says any version will do.
      preValidation: async (req) => {
        const current = getContact(db, apiTenant(req).locationId, req.params.id);
        if (!current) return;
        req.body = withoutSyncState(req.body) as typeof req.body;
        const json = oneJson(current);
        const stale = staleRead(req.body, json);
        if (stale && req.headers['if-match']?.trim() === '*') {
          req.body = Object.fromEntries(Object.entries(req.body as object).filter(([k]) => !isStaleReadField(k))) as typeof req.body;
        } else if (stale) {
          throw versionMismatch(
            current.version,
            `The contact changed since the GET this body was read from (${stale.join(', ')} ${stale.length === 1 ? 'differs' : 'differ'}); its current version is ${current.version}. Read it again, and make your change to what it now is.`,
          );
        }
        req.body = unchangedLeftOut(req.body, json) as typeof req.body;
      },
    },
    async (req, reply) => {
      const { locationId } = apiTenant(req);
      const version = expectedVersion(req.headers['if-match']);
      const current = getContact(db, locationId, req.params.id);
      if (!current) throw notFound();
      if (current.archivedAt !== null) throw new AppError(409, 'archived', 'This contact is archived. Restore it (POST …/restore) before changing it.');
      const { tags, addTags, removeTags, customFields, ...rest } = req.body;
      const draft = draftOf(rest);
      const country = 'country' in draft ? (typeof draft.country === 'string' ? draft.country.trim().toUpperCase() || null : null) : current.fields.country;
      // Normalised on top of the current values, then only the fields the body names are kept.
      const { contact: merged, issues } = normalizeContact({ ...current.fields, ...draft }, { defaultCountry: countryFor(locationId, country) });
      if ('phone' in draft) refuseExtension(issues);
      const next = valid({ ...merged, tags: current.fields.tags, customFields: current.fields.customFields });
      if (identified(current.fields) && !identified(next)) {
        const cleared = IDENTITY_FIELDS.filter((f) => current.fields[f] !== null);
        throw new AppError(400, 'invalid_request', `Invalid request: ${NEEDS_IDENTITY}, and this update would clear ${cleared.join(' and ')}, the last it has; set another of them in the same request.`);
      }
      const patch: ContactPatch = {};
      for (const field of SCALAR_FIELDS) if (field in draft) (patch as Record<string, unknown>)[field] = next[field];
      if (customFields) patch.customFields = checkedCustomFields(locationId, customFields, current.fields.customFields);
      if ('ownerUserId' in patch && patch.ownerUserId !== current.fields.ownerUserId) requireOwner(locationId, patch.ownerUserId);
      if (patch.email && !sameEmail(patch.email, current.fields.email)) {
        const other = findContactsByEmail(db, locationId, patch.email).find((c) => c.id !== current.id);
        if (other) {
          return reply.code(409).send({
            error: {
              ...errorBody('duplicate_contact', `Another active contact already has this email (${other.id}). Send another email, or change or archive that contact first.`).error,
              contactId: other.id,
            },
          });
        }
      }
      const tagChange =
        tags !== undefined
          ? { add: normalizeTags(tags), remove: current.fields.tags.filter((t) => !normalizeTags(tags).includes(t)) }
          : addTags || removeTags
            ? { add: addTags ?? [], remove: removeTags ?? [] }
            : undefined;
      const contact = write(() =>
        updateContact(db, {
          locationId,
          id: current.id,
          patch,
          ...(tagChange ? { tags: tagChange } : {}),
          now: clock.now(),
          origin: 'local',
          ...(version !== undefined ? { expectedVersion: version } : {}),
        }),
      );
      if (contact.version !== current.version) written(locationId, contact);
      reply.header('etag', `"${contact.version}"`);
      return oneJson(contact);
    },
  );

  api.delete(
    '/api/v1/contacts/:id',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['contacts'],
        operationId: 'archiveContact',
        summary: 'Delete (archive) a contact',
        description: 'Archives the contact: it leaves lists and HighLevel (as the Sync tab allows) but can be restored. Honours If-Match (`*`: whatever the version).',
        params: idParams,
        headers: ifMatchHeaders,
        response: { 204: z.null().describe('Archived (no body).'), ...errors(400, 401, 404, 412, 413, 415) },
      },
    },
    async (req, reply) => {
      const { locationId } = apiTenant(req);
      const version = expectedVersion(req.headers['if-match']);
      const before = getContact(db, locationId, req.params.id);
      if (!before) throw notFound();
      const contact = write(() => archiveContact(db, { locationId, id: before.id, now: clock.now(), origin: 'local', ...(version !== undefined ? { expectedVersion: version } : {}) }));
      if (contact.version !== before.version) written(locationId, contact);
      return reply.code(204).send(null);
    },
  );

  api.post(
    '/api/v1/contacts/:id/restore',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['contacts'],
        operationId: 'restoreContact',
        summary: 'Restore an archived contact',
        params: idParams,
        response: {
          200: described('The contact, no longer archived (one that was not is returned unchanged).', contactResponse),
          ...errors(400, 401, 404, 413, 415),
          409: errorReply('Another active contact of this location has its email (`duplicate_contact`; `error.contactId` names it): archive that one, or change its email, first.'),
        },
      },
    },
    async (req, reply) => {
      const { locationId } = apiTenant(req);
      const before = getContact(db, locationId, req.params.id);
      if (!before) throw notFound();
      // As create and update refuse: restoring must not make two active contacts of one email.
      if (before.archivedAt !== null && before.fields.email) {
        const other = findContactsByEmail(db, locationId, before.fields.email).find((c) => c.id !== before.id);
        if (other) {
          return reply.code(409).send({
            error: { ...errorBody('duplicate_contact', `Another active contact has this contact’s email (${other.id}). Archive it, or change its email, before restoring this one.`).error, contactId: other.id },
          });
        }
      }
      const contact = write(() => restoreContact(db, { locationId, id: before.id, now: clock.now(), origin: 'local' }));
      if (contact.version !== before.version) written(locationId, contact);
      reply.header('etag', `"${contact.version}"`);
      return oneJson(contact);
    },
  );
}
