// The REST API's wire format (zod, also the source of the OpenAPI document): contacts and users as
// JSON, request bodies and queries, and the mapping between the JSON and Tandem's ContactFields.
import { z } from 'zod';
import type { Contact } from '../../db/contacts.ts';
import type { User } from '../../db/users.ts';
import { customFieldValueSchema, isCalendarDate, isCountryCode, normalizeTags, type ContactDraft } from '../sync/contact-model.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/** Named schemas of this API's OpenAPI document (its own registry: nothing else leaks into it). */
export const apiSchemas = z.registry<{ id: string }>();

// ---- responses ----------------------------------------------------------------------------------

export const errorResponse = z
  .object({
    error: z.looseObject({
      code: z.string().describe('Stable machine-readable code, e.g. "not_found", "duplicate_contact".'),
      message: z.string().describe('What went wrong, in words for a person.'),
      contactId: z.string().optional().describe('A 409 `duplicate_contact`: the other contact, which has the email.'),
      userId: z.string().optional().describe('A 409 `duplicate_user`: the other user, who has the email.'),
      currentVersion: z.number().int().optional().describe('A 412 `version_mismatch`: the contact’s current version.'),
    }),
  })
  .describe('Every error. Some carry more: a 409 names the existing record (contactId / userId), a 412 the current version (currentVersion).')
  .register(apiSchemas, { id: 'Error' });

const address = z.object({
  line1: z.string().nullable(),
  city: z.string().nullable(),
  state: z.string().nullable(),
  postalCode: z.string().nullable(),
  country: z.string().nullable().describe('ISO 3166-1 alpha-2, upper case.'),
});

/**
 * A change of the contact that has not reached HighLevel, as the panel's Contacts tab shows it
 * (server/routes/panel-contacts.ts): without it, a contact HighLevel refused read like a synced one.
 */
const outboundResponse = z
  .object({
    status: z
      .enum(['pending', 'failed'])
      .describe('pending: waits for its turn, for a setting (the Sync tab’s directions, a pause) or for a retry; failed: refused by HighLevel for good, until the contact changes again or what blocked it goes away.'),
    reason: z.string().nullable().describe('Why, in plain words: HighLevel’s refusal, or the last error before a retry; null while it simply waits.'),
  })
  .nullable()
  .describe('A change of this contact not yet in HighLevel; null when nothing is outstanding. It changes without bumping version.');

export const contactResponse = z
  .object({
    id: z.string().describe('"c_" + 20 characters.'),
    firstName: z.string().nullable(),
    lastName: z.string().nullable(),
    email: z.string().nullable(),
    phone: z.string().nullable().describe('E.164 (e.g. "+14155550123") when the number could be read; otherwise kept as entered and not used for matching.'),
    companyName: z.string().nullable(),
    address,
    website: z.string().nullable(),
    timezone: z.string().nullable(),
    dateOfBirth: z.string().nullable().describe('YYYY-MM-DD.'),
    source: z.string().nullable(),
    tags: z.array(z.string()).describe('Lower case, unique.'),
    dnd: z.boolean().describe('Do not disturb.'),
    ownerUserId: z.string().nullable().describe('A user of this location ("u_…"), or null.'),
    customFields: z.record(z.string(), customFieldValueSchema).describe('HighLevel custom field id → value.'),
    createdAt: z.string().describe('ISO 8601.'),
    updatedAt: z.string().describe('ISO 8601; also the list order.'),
    archivedAt: z.string().nullable().describe('ISO 8601 when archived (deleted here or in HighLevel); restorable.'),
    version: z.number().int().describe('Bumped on every change; send it back as If-Match to update only that version.'),
    highlevelId: z
      .string()
      .nullable()
      .describe('The id of the HighLevel contact this one is linked to; null while HighLevel has none of it (not sent yet, or refused: see outbound), or once its HighLevel contact was deleted. It changes without bumping version.'),
    outbound: outboundResponse,
  })
  .register(apiSchemas, { id: 'Contact' });
export type ContactJson = z.output<typeof contactResponse>;
/** Where a contact stands with HighLevel: read apart from the contact (db/links.ts, db/outbox.ts). */
export type ContactSyncJson = Pick<ContactJson, 'highlevelId' | 'outbound'>;

export function contactJson(c: Contact, sync: ContactSyncJson): ContactJson {
  const f = c.fields;
  return {
    id: c.id,
    firstName: f.firstName,
    lastName: f.lastName,
    email: f.email,
    phone: f.phone,
    companyName: f.companyName,
    address: { line1: f.address1, city: f.city, state: f.state, postalCode: f.postalCode, country: f.country },
    website: f.website,
    timezone: f.timezone,
    dateOfBirth: f.dateOfBirth,
    source: f.source,
    tags: f.tags,
    dnd: f.dnd,
    ownerUserId: f.ownerUserId,
    customFields: f.customFields,
    createdAt: iso(c.createdAt),
    updatedAt: iso(c.updatedAt),
    archivedAt: c.archivedAt === null ? null : iso(c.archivedAt),
    version: c.version,
    highlevelId: sync.highlevelId,
    outbound: sync.outbound,
  };
}

export const contactPage = z.object({
  contacts: z.array(contactResponse),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
});

export const userResponse = z
  .object({
    id: z.string().describe('"u_" + 20 characters.'),
    name: z.string(),
    email: z.string(),
    active: z.boolean().describe('False once deactivated; deactivated users cannot be made owners.'),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .register(apiSchemas, { id: 'User' });

export function userJson(u: User): z.output<typeof userResponse> {
  return { id: u.id, name: u.name, email: u.email, active: u.active, createdAt: iso(u.createdAt), updatedAt: iso(u.updatedAt) };
}

// ---- requests -----------------------------------------------------------------------------------

/**
 * Error options for a schema whose value may be missing: zod's own words for that are "expected
 * string, received undefined", and a misused message (e.g. "must be an email address") is worse.
 */
function required(invalid?: string) {
  return { error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : invalid) };
}
/** A JSON object body; every issue of the object itself (not of its fields) says so. Fastify hands a
 * missing body to validation as null. */
const objectBody = { error: (issue: { input?: unknown }) => (issue.input == null ? 'is required' : 'must be a JSON object') };

// C0 control characters and DEL are invisible in most tools and went to HighLevel as sent (QA:
// firstName "a\u0000b" was created). Refused in every text a write takes, but for tab, line feed
// and carriage return where a value may hold several lines (a custom field's text: LARGE_TEXT).
// Checked before trimming, so a name with a trailing line break is refused, not quietly cut.
const CONTROLS = /[\u0000-\u001F\u007F]/;
const CONTROLS_BUT_LINES = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const CONTROL_NAMES: Record<string, string> = { '\u0000': 'NUL', '\t': 'tab', '\n': 'line feed', '\r': 'carriage return', '\u007F': 'DEL' };

function controlRefusal(value: string, lines: boolean): string {
  const found = (lines ? CONTROLS_BUT_LINES : CONTROLS).exec(value)?.[0] ?? '';
  const code = `U+${found.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  const named = CONTROL_NAMES[found] ? `${code}, ${CONTROL_NAMES[found]}` : code;
  return `must not contain control characters${lines ? ' other than tab, line feed and carriage return' : ''} (U+0000–U+001F, U+007F); this one has ${named}: remove it`;
}

/**
 * A string without control characters (`lines`: but tab, line feed and carriage return), checked
 * first and alone (`abort`: the format checks after it would only add a second message). Not
 * aborting inside a union, which would then say only that the value is none of its forms.
 */
function plainText(lines = false, base: z.ZodString = z.string(), abort = true) {
  const pattern = lines ? CONTROLS_BUT_LINES : CONTROLS;
  return base.refine((v) => !pattern.test(v), { abort, error: (issue) => controlRefusal(String(issue.input), lines) });
}

// A contact's text fields take "" (or only spaces) as they take null: "nothing" (cleared on PATCH,
// absent on create). The fields with a format (email, date, country) therefore accept a blank value
// besides the format, rather than being the only ones where "" is a 400.
const text = (max: number) => plainText().max(max).nullable().optional();
const blank = (v: string) => v.trim() === '';

/**
 * zod's email pattern, with letters and digits of any script in the local part ("josé@…"), as
 * HighLevel accepts; the domain stays ASCII letters, digits and hyphens (an internationalised one
 * is written in its xn-- form).
 */
const EMAIL = /(?:[\p{L}\p{M}\p{N}_'+\-]+\.)*[\p{L}\p{M}\p{N}_'+\-]*[\p{L}\p{M}\p{N}_+-]@(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}/u;
// Trimmed before the check, as every other field is (QA: " ada@example.com " was "not an email");
// the pattern allows the spaces too, so that it says what the API takes.
const padded = (pattern: string) => new RegExp(`^\\s*(?:${pattern})\\s*$`, 'u');
const email = plainText(false, z.string(required('must be an email address')))
  .trim()
  .max(254)
  .regex(padded(EMAIL.source), 'must be an email address')
  .meta({ description: 'An email address (surrounding spaces are trimmed).' });
const contactEmail = plainText()
  .trim()
  .max(254)
  .regex(padded(`|${EMAIL.source}`), 'must be an email address')
  .meta({ description: 'An email address (surrounding spaces are trimmed); "" clears it, as null does.' });
const name = plainText(false, z.string(required())).trim().min(1, 'must not be empty').max(200);
// `abort`: a value that is not even shaped like a date gets one message, not the same one twice.
const dateOfBirth = plainText()
  .regex(/^\s*$|^\d{4}-\d{2}-\d{2}$/, { error: 'must be a date as YYYY-MM-DD', abort: true })
  .refine((v) => blank(v) || isCalendarDate(v), 'must be a date as YYYY-MM-DD')
  .meta({ description: 'A calendar date, YYYY-MM-DD; "" clears it, as null does.' });
const COUNTRY = 'must be an ISO 3166-1 alpha-2 country code, e.g. "US" or "GB"';
const country = plainText()
  .regex(/^\s*$|^[A-Za-z]{2}$/, { error: COUNTRY, abort: true })
  .refine((v) => blank(v) || isCountryCode(v.toUpperCase()), COUNTRY)
  .meta({ description: 'ISO 3166-1 alpha-2 (any case; stored upper case), or XK (Kosovo); "" clears it, as null does.' });
/** A tag as a write names it: "" or only spaces would be no tag at all, so it is refused rather than dropped. */
const tag = plainText().max(100).regex(/\S/, 'must not be empty');

/**
 * A custom field's value: what the contact model holds (a non-empty string, a number, a non-empty
 * list of strings), a list of numbers (an option field's options by their text, as a number alone
 * is: api-v1-custom-fields.ts), or nothing: null, "" or [] (left out on create, cleared on PATCH, as
 * the model reads them). One message for anything else: zod's is "Invalid input".
 */
const customFieldText = plainText(true, z.string(), false);
const customFieldValue = z.union([customFieldText, z.number(), z.array(customFieldText), z.array(z.number()), z.null()], {
  error: 'must be a string, a number, or a list of strings or of numbers (null, "" or [] for no value)',
});
const customFieldName = plainText()
  .min(1, 'a custom field is named by its id or key, not by an empty name')
  .max(100, 'a custom field id or key has at most 100 characters');
const customFieldsInput = z.record(customFieldName, customFieldValue);

/** A time zone the runtime knows (IANA names and their aliases, e.g. "America/New_York", "UTC"). */
function isTimeZone(name: string): boolean {
  return canonicalTimeZone(name) !== undefined;
}

/** Its IANA name as written in the database ("europe/paris" → "Europe/Paris"), or undefined if unknown. */
function canonicalTimeZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}
const tagList = z.array(tag).max(100);

/** What GET gives and no write sets. */
export const READ_ONLY_FIELDS = ['id', 'createdAt', 'updatedAt', 'archivedAt', 'version', 'highlevelId', 'outbound'] as const;
const READ_ONLY = 'is read-only: send it as GET gave it, or leave it out';

/**
 * A read-only property in a PATCH body. One sent as the record has it never gets here (the route
 * leaves unchanged values out before validation, api-v1-contacts.ts and api-v1-users.ts), so
 * whatever gets here is a change: refused, whatever its type, in words that say why (`refusal`).
 */
function readOnly<T extends z.ZodType>(schema: T, description: string, record = 'contact', refusal = READ_ONLY) {
  return schema
    .refine(() => false, { error: refusal })
    .optional()
    .meta({ readOnly: true, description: `Read-only: accepted, and ignored, when it is the ${record}’s own (${description}); any other value is refused.` });
}

const readOnlyFields = {
  id: readOnly(z.string({ error: READ_ONLY }), 'as GET gives it'),
  createdAt: readOnly(z.string({ error: READ_ONLY }), 'ISO 8601'),
  updatedAt: readOnly(z.string({ error: READ_ONLY }), 'ISO 8601; one of an earlier read is a 412, as a stale If-Match'),
  archivedAt: readOnly(z.string({ error: READ_ONLY }).nullable(), 'ISO 8601 or null; one of an earlier read, with its version, is a 412'),
  version: readOnly(z.int({ error: READ_ONLY }), 'another version is a 412, as If-Match would answer'),
  highlevelId: readOnly(z.string({ error: READ_ONLY }).nullable(), 'the linked HighLevel contact’s id, or null; one of an earlier read is a 412'),
  // A union, so that whatever is wrong with it is said once, of the property itself.
  outbound: readOnly(
    z.union([z.object({ status: z.enum(['pending', 'failed']), reason: z.string().nullable() }), z.null()], { error: READ_ONLY }),
    'as GET gives it; one of an earlier read is a 412',
  ),
} satisfies Record<(typeof READ_ONLY_FIELDS)[number], z.ZodType>;

const addressInput = z.strictObject({
  line1: text(200),
  city: text(100),
  state: text(100),
  postalCode: text(20),
  country: country.nullable().optional(),
});

const contactFieldsInput = {
  // As long as the panel allows (and HighLevel sends longer ones than 100).
  firstName: text(200),
  lastName: text(200),
  email: contactEmail.nullable().optional(),
  phone: text(40).describe(
    'Any common format; stored as E.164, read with the contact’s country (default US) when it has no +prefix. A number with an extension ("+1 415 555 0123 ext 12") is refused (400): Tandem stores phones without extensions; keep the extension in another field, such as a custom field.',
  ),
  companyName: text(200),
  address: addressInput.optional(),
  website: text(2048),
  timezone: plainText()
    .max(64)
    .refine((v) => v.trim() === '' || isTimeZone(v.trim()), 'must be an IANA time zone, e.g. "America/New_York"')
    .meta({ description: 'An IANA time zone, e.g. "America/New_York"; stored under its own name ("europe/paris" → "Europe/Paris").' })
    .nullable()
    .optional(),
  dateOfBirth: dateOfBirth.nullable().optional(),
  source: text(200),
  dnd: z.boolean().optional(),
  ownerUserId: plainText().max(64).nullable().optional(),
};

export const contactCreateBody = z.strictObject(
  {
    ...contactFieldsInput,
    tags: tagList.optional(),
    customFields: customFieldsInput.optional().describe('Custom field id (or key, e.g. "contact.lead_score") → value, one of the location’s fields (GET /api/v1/custom-fields) with a value of its kind; null, "" or [] mean no value.'),
    allowDuplicate: z
      .boolean()
      .optional()
      .describe('Create even when a contact of this location already has the email (otherwise 409 naming it).'),
  },
  objectBody,
);
export type ContactCreateBody = z.output<typeof contactCreateBody>;

export const contactPatchBody = z
  .strictObject(
    {
      ...contactFieldsInput,
      tags: tagList.optional().describe('Replaces the tags. Not together with addTags / removeTags.'),
      addTags: tagList.optional(),
      removeTags: tagList.optional(),
      customFields: customFieldsInput.optional().describe('Only the fields given change (by id or key, as on create); null, "" or [] clears a value.'),
      ...readOnlyFields,
    },
    objectBody,
  )
  .refine((b) => b.tags === undefined || (b.addTags === undefined && b.removeTags === undefined), {
    message: 'send either tags (replace) or addTags/removeTags, not both',
    path: ['tags'],
  })
  .superRefine((b, ctx) => {
    // Tags are compared in lower case: "zz" added and "ZZ" removed is one tag both ways.
    const removed = normalizeTags(b.removeTags ?? []);
    const both = normalizeTags(b.addTags ?? []).filter((t) => removed.includes(t));
    if (both.length) {
      ctx.addIssue({ code: 'custom', path: ['removeTags'], message: `addTags and removeTags both name ${both.map((t) => JSON.stringify(t)).join(', ')} (tags are compared in lower case); send each tag in one of them` });
    }
  });
export type ContactPatchBody = z.output<typeof contactPatchBody>;

/** The loosely formatted draft of the fields a body names (absent keys stay absent). */
export function draftOf(body: Omit<ContactPatchBody, 'tags' | 'addTags' | 'removeTags' | 'customFields'>): ContactDraft {
  const draft: ContactDraft = {};
  const put = <K extends keyof ContactDraft>(key: K, value: ContactDraft[K] | undefined) => {
    if (value !== undefined) draft[key] = value;
  };
  put('firstName', body.firstName);
  put('lastName', body.lastName);
  put('email', body.email);
  put('phone', body.phone);
  put('companyName', body.companyName);
  put('address1', body.address?.line1);
  put('city', body.address?.city);
  put('state', body.address?.state);
  put('postalCode', body.address?.postalCode);
  put('country', body.address?.country);
  put('website', body.website);
  put('timezone', typeof body.timezone === 'string' && body.timezone.trim() ? (canonicalTimeZone(body.timezone.trim()) ?? body.timezone) : body.timezone);
  put('dateOfBirth', body.dateOfBirth);
  put('source', body.source);
  put('dnd', body.dnd);
  put('ownerUserId', body.ownerUserId);
  return draft;
}

/** A whole number from the query string; every way of missing the range gets the same plain words. */
function integerBetween(min: number, max: number) {
  const message = `must be an integer between ${min} and ${max}`;
  return z.coerce.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message });
}

/**
 * A query string's parameters. One given twice (`?limit=1&limit=2`) arrives as an array, which each
 * parameter would refuse in words about its type or range: say what is wrong instead.
 */
export function query<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.preprocess((q, ctx) => {
    for (const [key, value] of Object.entries(q ?? {})) {
      if (Array.isArray(value)) ctx.addIssue({ code: 'custom', path: [key], message: 'is given more than once; send it once', input: value });
    }
    return q;
  }, z.strictObject(shape));
}

/** A filter given empty would match nothing without a word (QA: `?tag=` answered an empty list). */
const filterText = (max: number) => z.string().max(max).regex(/\S/, 'must not be empty (leave the parameter out to match any)');

export const contactListQuery = query({
  email: filterText(254).optional().describe('Exact email, case-insensitive.'),
  phone: filterText(40).optional().describe('Any format; compared in E.164.'),
  tag: filterText(100).optional(),
  ownerUserId: filterText(64).optional(),
  updatedSince: z.iso.datetime({ offset: true }).optional().describe('An ISO 8601 date-time with a time zone, e.g. 2026-12-07T09:30:00Z; contacts updated at or after it.'),
  includeArchived: z.enum(['true', 'false']).optional(),
  // Any length: one this API did not hand out is 400 invalid_cursor, however long (the route decodes it).
  cursor: z.string().optional().describe('The nextCursor of the previous page, as given; anything else is 400 `invalid_cursor`.'),
  limit: integerBetween(1, 200).optional().describe('1–200, default 50.'),
});

export const idParams = z.strictObject({ id: z.string().min(1).max(64) });

export const ifMatchHeaders = z.looseObject({
  'if-match': z.string().max(64).optional().describe('A contact version ("3" or W/"3"): the write happens only if it is still current, else 412. `*` (RFC 9110: any current version) writes whatever the version.'),
});

/** What a user's GET gives and no PATCH sets (`active`: deactivate / reactivate do). */
export const USER_READ_ONLY_FIELDS = ['id', 'active', 'createdAt', 'updatedAt'] as const;
const ACTIVE_READ_ONLY = 'is read-only here: POST /api/v1/users/{id}/deactivate or …/reactivate changes it; send it as GET gave it, or leave it out';

export const userCreateBody = z.strictObject({ name, email }, objectBody);
export const userPatchBody = z.strictObject(
  {
    name: name.optional(),
    email: email.optional(),
    // As a contact's: a user read with GET can be sent back as read (QA: refused as unknown properties).
    id: readOnly(z.string({ error: READ_ONLY }), 'as GET gives it', 'user'),
    active: readOnly(z.boolean({ error: ACTIVE_READ_ONLY }), 'deactivate / reactivate change it', 'user', ACTIVE_READ_ONLY),
    createdAt: readOnly(z.string({ error: READ_ONLY }), 'ISO 8601', 'user'),
    updatedAt: readOnly(z.string({ error: READ_ONLY }), 'ISO 8601', 'user'),
  } satisfies Record<(typeof USER_READ_ONLY_FIELDS)[number] | 'name' | 'email', z.ZodType>,
  objectBody,
);
export const userListQuery = query({
  email: filterText(254).optional().describe('Exact email, case-insensitive.'),
  includeInactive: z.enum(['true', 'false']).optional(),
});

// ---- documented responses -----------------------------------------------------------------------

/**
 * Bodies above this are refused with 413. A contact is a few KiB as a rule, but one as GET gives it
 * must go back in a PATCH, and a custom field's long text (HighLevel's LARGE_TEXT) passes 64 KiB
 * (QA: a round trip answered 413). 1 MiB, parsed in a few ms.
 */
export const API_BODY_LIMIT = 1024 * 1024;

/**
 * A response as the OpenAPI document shows it: what it means, and its JSON body (the schema also
 * serialises it). Without a description @fastify/swagger writes "Default Response".
 */
export function described<T extends z.ZodType>(description: string, schema: T) {
  return { description, content: { 'application/json': { schema } } };
}

/** The error statuses whose meaning is the same on every route; a 409 says what conflicts (errorReply). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 412 | 413 | 415 | 429;

/** What every route behind an API key may answer, whatever else it does: the key's location uninstalled, a rate limit. */
const ANY_KEYED_ROUTE = [403, 429] as const;

const ERROR_MEANINGS: Record<ErrorStatus, string> = {
  400: 'Invalid request (`invalid_request`, or a more specific code such as `invalid_cursor`, `unknown_owner` or `unknown_custom_field`); the message names what is wrong.',
  401: 'No valid API key: missing, malformed, unknown or revoked (`unauthorized`).',
  403: 'The key’s location no longer has Tandem installed in HighLevel (`not_installed`); its keys work again once Tandem is reinstalled there.',
  429: 'Too many requests (`rate_limited`): the location’s keys sent more than its allowance, or this address sent too many unknown or revoked keys. Retry-After says when to try again.',
  404: 'No record with this id in the API key’s location (`not_found`).',
  412: 'The contact changed since the version the request names (`version_mismatch`): If-Match names another version, or a PATCH body sends back a contact as an earlier GET gave it (its version, updatedAt, highlevelId or outbound differ). `error.currentVersion` is the current version: read the contact again and retry.',
  413: `Body larger than ${API_BODY_LIMIT / (1024 * 1024)} MiB (\`payload_too_large\`).`,
  415: 'Body not sent as JSON with `Content-Type: application/json` (`unsupported_media_type`).',
};

/** An error response with its own description: a 409, which means something else on each route. */
export function errorReply(description: string) {
  return described(description, errorResponse);
}

/**
 * The documented error responses for these statuses (errors are also serialised through them),
 * with the 403 and 429 every route behind a key may answer.
 */
export function errors<const C extends readonly ErrorStatus[]>(...codes: C): { [K in C[number] | (typeof ANY_KEYED_ROUTE)[number]]: ReturnType<typeof errorReply> } {
  return Object.fromEntries([...codes, ...ANY_KEYED_ROUTE].map((c) => [c, errorReply(ERROR_MEANINGS[c])])) as {
    [K in C[number] | (typeof ANY_KEYED_ROUTE)[number]]: ReturnType<typeof errorReply>;
  };
}
