// HighLevel's contact on the wire (GET, search and webhook shapes, CONTRACT §3.3, §3.4, §5.3) and
// its translation to and from Tandem's fields: the only place that knows HighLevel's field names.
import { z } from 'zod';
import {
  SCALAR_FIELDS, countryFromText, emptyContact, normalizeCustomValue, normalizePhone, normalizeTags, normalizeText, readsAs,
  type ContactFields, type ContactPatch, type CustomFieldValue, type ScalarField,
} from '../sync/contact-model.ts';

// ---- wire schemas: tolerant of keys we do not use, strict on the types of those we do ------------

const str = z.string().nullish();

export const highLevelCustomFieldSchema = z.looseObject({
  id: z.string().min(1),
  // string, number, string[] or a FILE_UPLOAD object; anything else is not ours to judge.
  value: z.unknown().optional(),
});

export const highLevelContactSchema = z.looseObject({
  id: z.string().min(1),
  locationId: z.string().optional(),
  firstName: str,
  lastName: str,
  email: str,
  phone: str,
  companyName: str,
  address1: str,
  /** The search shape's name for address1. */
  address: str,
  city: str,
  state: str,
  postalCode: str,
  country: str,
  website: str,
  timezone: str,
  source: str,
  /** ISO midnight UTC (GET, webhooks) or epoch ms (search). */
  dateOfBirth: z.union([z.string(), z.number()]).nullish(),
  dnd: z.boolean().nullish(),
  assignedTo: str,
  tags: z.array(z.string()).nullish(),
  customFields: z.array(highLevelCustomFieldSchema).nullish(),
  dateAdded: str,
  dateUpdated: str,
});
export type HighLevelContact = z.infer<typeof highLevelContactSchema>;

export const CONTACT_EVENT_TYPES = ['ContactCreate', 'ContactUpdate', 'ContactDelete', 'ContactTagUpdate', 'ContactDndUpdate'] as const;
export type ContactEventType = (typeof CONTACT_EVENT_TYPES)[number];

/** A contact webhook: the contact's own fields at the top level, next to the event's. */
export const highLevelContactEventSchema = highLevelContactSchema.extend({
  type: z.enum(CONTACT_EVENT_TYPES),
  locationId: z.string().min(1),
  webhookId: z.string().optional(),
  timestamp: z.string().optional(),
});
export type HighLevelContactEvent = z.infer<typeof highLevelContactEventSchema>;

/**
 * Tandem fields a contact webhook carries (CONTRACT §5.3 lists the payload's keys): all but the
 * timezone, which only a read (GET, search) returns.
 */
export const WEBHOOK_SNAPSHOT_FIELDS = [
  'firstName', 'lastName', 'email', 'phone', 'companyName', 'address1', 'city', 'state', 'postalCode',
  'country', 'website', 'dateOfBirth', 'source', 'tags', 'dnd', 'ownerUserId', 'customFields',
] as const satisfies readonly (keyof ContactFields)[];

/**
 * A contact webhook as a (partial) record of the contact: absent keys are unknown. Its version is
 * the payload's dateUpdated when there is one (the documented payloads have none), else the event's
 * `timestamp`, which HighLevel stamps when it emits the change; undefined when neither parses.
 */
export function fromContactEvent(event: HighLevelContactEvent, ownerMap: OwnerMap): RemoteContact {
  const remote = fromHighLevel(event, ownerMap, { complete: false });
  if (remote.dateUpdated !== undefined) return remote;
  const at = typeof event.timestamp === 'string' ? Date.parse(event.timestamp) : Number.NaN;
  return { ...remote, dateUpdated: Number.isNaN(at) ? undefined : at };
}

/** GET /contacts/{id}, POST /contacts/ (201), POST /contacts/upsert. */
export const contactResponseSchema = z.looseObject({ contact: highLevelContactSchema, new: z.boolean().optional() });
/** PUT /contacts/{id} ("succeded" sic). */
export const updateContactResponseSchema = z.looseObject({ succeded: z.boolean().optional(), contact: highLevelContactSchema.optional() });
/** POST /contacts/search: each contact carries the cursor for the page after it. */
export const searchContactsResponseSchema = z.looseObject({
  contacts: z.array(highLevelContactSchema.extend({ searchAfter: z.array(z.union([z.string(), z.number()])).optional() })),
  total: z.number(),
});

// ---- HighLevel → Tandem --------------------------------------------------------------------------

/** Tandem user paired with a HighLevel user; null/undefined when there is no pairing. */
export type OwnerMap = (id: string) => string | null | undefined;

export interface MappingProblem {
  field: ScalarField | `customFields.${string}`;
  /**
   * `phone_extension_unsupported`: HighLevel's phone has an extension, which Tandem does not store
   * (E.164 has none). Tandem holds the number alone, and HighLevel keeps its text with the extension:
   * Tandem writes a phone to HighLevel only when Tandem's own phone changes, and then the new number
   * replaces the old one as a whole.
   */
  code: 'phone_unrecognised' | 'phone_extension_unsupported' | 'country_unrecognised' | 'date_unrecognised' | 'custom_value_unsupported';
  value: unknown;
}

export interface RemoteContact {
  id: string;
  locationId: string | undefined;
  /** Epoch ms of HighLevel's dateUpdated, when the source gave one. */
  dateUpdated: number | undefined;
  /** Only the fields the source carried: an absent key is unknown, never "cleared". */
  fields: Partial<ContactFields>;
  /** A HighLevel owner with no paired Tandem user: `ownerUserId` is then left unknown. */
  unmatchedOwner: string | undefined;
  /** Values kept as text (a phone) or left out as unknown (the others), and phone extensions left in HighLevel. */
  problems: MappingProblem[];
  /**
   * HighLevel's phone as it holds it, when it is written without +prefix: which number it is
   * depends on the country it is read in, and `fields.phone` is its reading in the contact's
   * country as it is now. Compared with the ledger, keepLedgerPhone reads it as the number it was
   * last understood to be.
   */
  phoneText?: string;
}

export interface FromHighLevelOptions {
  /**
   * True for a whole record (GET, create/update responses, search): HighLevel omits unset fields,
   * so there an absent field is empty. False (the default, and right for webhooks) makes absent
   * fields unknown.
   */
  complete?: boolean;
  /** For phones written without +prefix: the location's country. */
  defaultCountry?: string;
}

const TEXT_FIELDS = [
  'firstName', 'lastName', 'companyName', 'city', 'state', 'postalCode', 'website', 'timezone', 'source',
] as const satisfies readonly ScalarField[];

function present(doc: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(doc, key) && doc[key] !== undefined;
}

/** The calendar day of HighLevel's birthday: ISO midnight UTC, epoch ms, or already YYYY-MM-DD. */
export function dateOfBirthFromHighLevel(value: string | number): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? new Date(value).toISOString().slice(0, 10) : undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})(T.*)?$/.exec(value.trim());
  if (!m) return undefined;
  const day = `${m[1]}-${m[2]}-${m[3]}`;
  return Number.isNaN(Date.parse(`${day}T00:00:00Z`)) ? undefined : day;
}

function customValueFromHighLevel(value: unknown): CustomFieldValue | null | undefined {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number') return normalizeCustomValue(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return normalizeCustomValue(value as string[]);
  return undefined;
}

/** Tandem's view of a HighLevel contact (any of its shapes). */
export function fromHighLevel(doc: HighLevelContact, ownerMap: OwnerMap, opts: FromHighLevelOptions = {}): RemoteContact {
  const raw = doc as Record<string, unknown>;
  const fields: Partial<ContactFields> = {};
  const problems: MappingProblem[] = [];
  let unmatchedOwner: string | undefined;
  // Fields whose value could not be read: unknown even in a complete record.
  const unreadable = new Set<string>();

  for (const f of TEXT_FIELDS) if (present(raw, f)) fields[f] = normalizeText(doc[f]);
  if (present(raw, 'address1')) fields.address1 = normalizeText(doc.address1);
  else if (present(raw, 'address')) fields.address1 = normalizeText(doc.address);
  // Composed as Tandem stores emails (contact-model.ts normalizeContact), so one spelling matches the other.
  if (present(raw, 'email')) fields.email = normalizeText(doc.email)?.normalize('NFC') ?? null;
  let phoneText: string | undefined;
  if (present(raw, 'phone')) {
    // Read in the contact's own country when it has one, as Tandem reads the phones it is given.
    const own = typeof doc.country === 'string' ? countryFromText(doc.country) : undefined;
    const text = normalizeText(doc.phone);
    const { phone, e164, extension } = normalizePhone(text, own ?? opts.defaultCountry);
    fields.phone = phone;
    if (text !== null && !text.startsWith('+')) phoneText = text;
    if (phone !== null && !e164) problems.push({ field: 'phone', code: 'phone_unrecognised', value: phone });
    // The number is kept (it is what the contact is called and matched on); the extension stays in HighLevel.
    if (extension !== undefined) problems.push({ field: 'phone', code: 'phone_extension_unsupported', value: text });
  }
  if (present(raw, 'country')) {
    const c = normalizeText(doc.country);
    const code = c === null ? null : countryFromText(c);
    if (code !== undefined) fields.country = code;
    else {
      unreadable.add('country');
      problems.push({ field: 'country', code: 'country_unrecognised', value: c });
    }
  }
  if (present(raw, 'dateOfBirth')) {
    const v = doc.dateOfBirth;
    const day = v === null || v === undefined || v === '' ? null : dateOfBirthFromHighLevel(v);
    if (day !== undefined) fields.dateOfBirth = day;
    else {
      unreadable.add('dateOfBirth');
      problems.push({ field: 'dateOfBirth', code: 'date_unrecognised', value: v });
    }
  }
  if (present(raw, 'dnd')) fields.dnd = doc.dnd === true;
  if (present(raw, 'tags')) fields.tags = normalizeTags(doc.tags ?? []);
  if (present(raw, 'assignedTo')) {
    const hlUser = normalizeText(doc.assignedTo);
    const tandemUser = hlUser === null ? null : ownerMap(hlUser);
    if (hlUser === null) fields.ownerUserId = null;
    else if (typeof tandemUser === 'string' && tandemUser) fields.ownerUserId = tandemUser;
    else {
      unreadable.add('ownerUserId');
      unmatchedOwner = hlUser;
    }
  }
  if (present(raw, 'customFields')) {
    const record: Record<string, CustomFieldValue> = {};
    for (const item of doc.customFields ?? []) {
      const v = customValueFromHighLevel(item.value);
      if (v === undefined) problems.push({ field: `customFields.${item.id}`, code: 'custom_value_unsupported', value: item.value });
      else if (v !== null) record[item.id] = v;
    }
    fields.customFields = record;
  }

  if (opts.complete) {
    const empty = emptyContact();
    for (const f of [...SCALAR_FIELDS, 'tags', 'customFields'] as const) {
      if (fields[f] === undefined && !unreadable.has(f)) (fields as Record<string, unknown>)[f] = empty[f];
    }
  }
  const updated = typeof doc.dateUpdated === 'string' ? Date.parse(doc.dateUpdated) : Number.NaN;
  return {
    id: doc.id,
    locationId: doc.locationId,
    dateUpdated: Number.isNaN(updated) ? undefined : updated,
    fields,
    unmatchedOwner,
    problems,
    ...(phoneText !== undefined ? { phoneText } : {}),
  };
}

/**
 * `remote` as compared with what Tandem last synced of it (`base`, the link's ledger): a phone
 * HighLevel holds without +prefix (`phoneText`) is the ledger's number when it reads as that number
 * in the number's own country (contact-model.ts readsAs). HighLevel's text did not change, so
 * neither did the number: a change of the contact's country alone ("(415) 555-0123" with US, then
 * DE) would otherwise read it as another number (+494155550123), taken for an edit of the phone
 * and written over Tandem's. Other digits read as before, in the contact's country: a change. Used
 * wherever a read of HighLevel meets the ledger (inbound apply, the push's read before merging,
 * Pull contacts).
 */
export function keepLedgerPhone(remote: RemoteContact, base: Pick<ContactFields, 'phone'> | null | undefined): RemoteContact {
  const ledger = base?.phone ?? null;
  if (remote.phoneText === undefined || ledger === null || remote.fields.phone === ledger || !readsAs(remote.phoneText, ledger)) return remote;
  return {
    ...remote,
    fields: { ...remote.fields, phone: ledger },
    // Read in the number's own country, the text is that number: not unrecognised.
    problems: remote.problems.filter((p) => p.code !== 'phone_unrecognised'),
  };
}

// ---- Tandem → HighLevel --------------------------------------------------------------------------

/** Tandem user id → paired HighLevel user id; null/undefined when there is no pairing. */
export type UserMap = (tandemUserId: string) => string | null | undefined;

export interface CustomFieldInput {
  id: string;
  field_value: CustomFieldValue;
}

/** The writable fields we use, as CreateContactDto / UpdateContactDto name them (CONTRACT §3.2). */
export interface ContactWriteBody {
  firstName?: string | null;
  lastName?: string | null;
  email?: string | null;
  phone?: string | null;
  companyName?: string | null;
  address1?: string | null;
  city?: string | null;
  state?: string | null;
  postalCode?: string | null;
  country?: string | null;
  website?: string | null;
  timezone?: string | null;
  dateOfBirth?: string | null;
  source?: string | null;
  dnd?: boolean;
  assignedTo?: string | null;
  customFields?: CustomFieldInput[];
}

export type CreateContactBody = ContactWriteBody & { locationId: string; tags?: string[] };
/** UpdateContactDto: no locationId (HighLevel rejects it on PUT), and no tags (PUT would replace them all). */
export type UpdateContactBody = ContactWriteBody;

export interface TagChanges {
  add: string[];
  remove: string[];
}

/**
 * How a cleared custom field is written. HighLevel's way is undocumented; an empty string is what
 * integrations send for text fields and the emulator reads "", null and [] alike (guess).
 */
export const CLEARED_CUSTOM_VALUE = '';

/**
 * The update that puts back values recorded as HighLevel held them (a push's item `before`): keys
 * are HighLevel's field names, `customFields.<id>` for a custom field; null means it was empty.
 */
export function restoreBody(recorded: Record<string, unknown>): UpdateContactBody {
  const body: UpdateContactBody = {};
  const custom: NonNullable<UpdateContactBody['customFields']> = [];
  for (const [key, value] of Object.entries(recorded)) {
    if (key.startsWith('customFields.')) custom.push({ id: key.slice('customFields.'.length), field_value: (value ?? CLEARED_CUSTOM_VALUE) as never });
    else if (key === 'dnd') body.dnd = value === true;
    else (body as Record<string, unknown>)[key] = value ?? null;
  }
  if (custom.length) body.customFields = custom;
  return body;
}

function ownerToHighLevel(ownerUserId: string | null, userMap: UserMap): { assignedTo?: string | null; unmatched?: string } {
  if (ownerUserId === null) return { assignedTo: null };
  const hl = userMap(ownerUserId);
  return typeof hl === 'string' && hl ? { assignedTo: hl } : { unmatched: ownerUserId };
}

/**
 * POST /contacts/ body for a Tandem contact. Empty fields are left out (nothing to clear on a new
 * record); an owner without a paired HighLevel user is left out and reported.
 */
export function toHighLevelCreate(contact: ContactFields, locationId: string, userMap: UserMap): { body: CreateContactBody; unmatchedOwner?: string } {
  const body: CreateContactBody = { locationId };
  for (const f of SCALAR_FIELDS) {
    if (f === 'dnd' || f === 'ownerUserId') continue;
    const v = contact[f];
    if (v !== null) body[f] = v;
  }
  if (contact.dnd) body.dnd = true;
  const owner = contact.ownerUserId === null ? {} : ownerToHighLevel(contact.ownerUserId, userMap);
  if (owner.assignedTo) body.assignedTo = owner.assignedTo;
  if (contact.tags.length) body.tags = [...contact.tags];
  const custom = Object.entries(contact.customFields).map(([id, field_value]) => ({ id, field_value }));
  if (custom.length) body.customFields = custom;
  return owner.unmatched ? { body, unmatchedOwner: owner.unmatched } : { body };
}

/**
 * PUT /contacts/{id} body for the changed fields (null clears a field), with the tag changes
 * returned apart for POST/DELETE /contacts/{id}/tags. An owner without a paired HighLevel user is
 * left out and reported rather than clearing HighLevel's owner.
 */
export function toHighLevelUpdate(
  changed: ContactPatch,
  userMap: UserMap,
  tags: Partial<TagChanges> = {},
): { body: UpdateContactBody; tags: TagChanges; unmatchedOwner?: string } {
  const body: UpdateContactBody = {};
  let unmatchedOwner: string | undefined;
  for (const f of SCALAR_FIELDS) {
    const v = changed[f];
    if (v === undefined) continue;
    if (f === 'dnd') body.dnd = v === true;
    else if (f === 'ownerUserId') {
      const owner = ownerToHighLevel(v as string | null, userMap);
      if (owner.assignedTo !== undefined) body.assignedTo = owner.assignedTo;
      unmatchedOwner = owner.unmatched;
    } else body[f] = v as string | null;
  }
  const custom = Object.entries(changed.customFields ?? {}).map(([id, value]) => ({ id, field_value: normalizeCustomValue(value) ?? CLEARED_CUSTOM_VALUE }));
  if (custom.length) body.customFields = custom;
  const add = normalizeTags(tags.add ?? []);
  const remove = normalizeTags(tags.remove ?? []).filter((t) => !add.includes(t));
  return unmatchedOwner ? { body, tags: { add, remove }, unmatchedOwner } : { body, tags: { add, remove } };
}
