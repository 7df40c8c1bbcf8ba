// Tandem's contact as data: the fields that sync, their one normalised form, and how two values of
// a field compare. Both sides' values pass through here before they are stored or merged, so that
// "changed" means changed and not merely formatted differently.
import { z } from 'zod';
import { getCountries, getCountryCallingCode, isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js';

/** A custom field value Tandem can hold (HighLevel's FILE_UPLOAD objects are not synced). */
export const customFieldValueSchema = z.union([z.string().min(1), z.number(), z.array(z.string()).min(1)]);
export type CustomFieldValue = z.infer<typeof customFieldValueSchema>;

const text = z.string().min(1).nullable();

/** The normalised contact: null is "empty"; there is no empty string, empty custom value or unnormalised tag. */
export const contactFieldsSchema = z.object({
  firstName: text,
  lastName: text,
  email: text,
  /** E.164 when libphonenumber-js could read it; otherwise the trimmed text as entered (see normalizePhone). */
  phone: text,
  companyName: text,
  address1: text,
  city: text,
  state: text,
  postalCode: text,
  country: z.string().regex(/^[A-Z]{2}$/, 'country must be a 2-letter code').nullable(),
  website: text,
  timezone: text,
  dateOfBirth: z.string().refine(isCalendarDate, 'dateOfBirth must be a date as YYYY-MM-DD').nullable(),
  source: text,
  tags: z.array(z.string()).refine(isNormalizedTags, 'tags must be lowercase, trimmed and unique'),
  /** HighLevel omits `dnd` when it is off, so there is no "unknown" state: false is "not DND". */
  dnd: z.boolean(),
  /** A Tandem user id. */
  ownerUserId: text,
  /** HighLevel custom field id → value; a field without a value has no key. */
  customFields: z.record(z.string().min(1), customFieldValueSchema),
});
export type ContactFields = z.infer<typeof contactFieldsSchema>;
export type FieldName = keyof ContactFields;

export const SYNC_FIELDS = [
  'firstName', 'lastName', 'email', 'phone', 'companyName', 'address1', 'city', 'state', 'postalCode',
  'country', 'website', 'timezone', 'dateOfBirth', 'source', 'tags', 'dnd', 'ownerUserId', 'customFields',
] as const satisfies readonly FieldName[];

/** Fields holding one value (everything but the two collections). */
export type ScalarField = Exclude<FieldName, 'tags' | 'customFields'>;
export const SCALAR_FIELDS = SYNC_FIELDS.filter((f): f is ScalarField => f !== 'tags' && f !== 'customFields');

/** A field as merge and conflict reports name it: custom fields one by one. */
export type FieldKey = ScalarField | 'tags' | `customFields.${string}`;

/**
 * A change to apply to one side. Tags are not part of it (they move as adds and removes); a custom
 * field mapped to null loses its value, an absent key is untouched.
 */
export type ContactPatch = { [K in ScalarField]?: ContactFields[K] } & {
  customFields?: Record<string, CustomFieldValue | null>;
};

export function emptyContact(): ContactFields {
  return {
    firstName: null, lastName: null, email: null, phone: null, companyName: null, address1: null, city: null,
    state: null, postalCode: null, country: null, website: null, timezone: null, dateOfBirth: null, source: null,
    tags: [], dnd: false, ownerUserId: null, customFields: {},
  };
}

// ---- normalisation ------------------------------------------------------------------------------

/** Trimmed text, or null for nothing but whitespace. */
export function normalizeText(value: string | null | undefined): string | null {
  const t = value?.trim();
  return t ? t : null;
}

/** Trimmed, lowercased, deduplicated (first occurrence kept), empties dropped. */
export function normalizeTags(tags: readonly string[]): string[] {
  const out: string[] = [];
  for (const tag of tags) {
    const t = tag.trim().toLowerCase();
    if (t && !out.includes(t)) out.push(t);
  }
  return out;
}

export function isNormalizedTags(tags: readonly string[]): boolean {
  const n = normalizeTags(tags);
  return n.length === tags.length && n.every((t, i) => t === tags[i]);
}

const E164 = /^\+[1-9]\d{6,14}$/;
/**
 * A +1 number as the North American Numbering Plan builds every one: a 3-digit area code and a
 * 3-digit exchange, each starting with 2–9. A structural rule that numbering-plan updates do not
 * change; a placeholder such as (000) 000-0000, or a French 06… read as American, breaks it.
 */
const NANP = /^\+1[2-9]\d{2}[2-9]\d{6}$/;

/** A name, else an email or phone, the admin recognises a contact by; `fallback` when it has none. */
export function contactLabel(fields: Partial<Pick<ContactFields, 'firstName' | 'lastName' | 'email' | 'phone'>>, fallback: string): string {
  const name = [fields.firstName, fields.lastName].filter(Boolean).join(' ');
  return name || fields.email || fields.phone || fallback;
}

/**
 * True when a stored phone is in E.164, i.e. usable for matching and dialling. A +1 number must
 * also be built as the NANP builds them (a phone stored before that rule may not be).
 */
export function isE164(phone: string | null): boolean {
  return phone !== null && E164.test(phone) && (!phone.startsWith('+1') || NANP.test(phone));
}

/**
 * What a contact is matched by when it has no link: its email as contacts are matched by it
 * (trimmed, lowercased) and its phone when that is E.164.
 */
export function matchKeys(fields: Partial<ContactFields>): { email?: string; phone?: string } {
  const email = fields.email?.trim().toLowerCase();
  return { ...(email ? { email } : {}), ...(fields.phone && isE164(fields.phone) ? { phone: fields.phone } : {}) };
}

/**
 * For contacts with no email and no usable phone: the same first name, last name and company
 * (case-insensitive; both empty counts as the same), and at least one of them set.
 */
export function sameNames(a: Partial<ContactFields>, b: Partial<ContactFields>): boolean {
  const same = (x: string | null | undefined, y: string | null | undefined) => (x ?? '').toLowerCase() === (y ?? '').toLowerCase();
  return Boolean(a.firstName || a.lastName || a.companyName) && same(a.firstName, b.firstName) && same(a.lastName, b.lastName) && same(a.companyName, b.companyName);
}

const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
/**
 * An upper-case ISO 3166-1 alpha-2 code of a country, or XK (Kosovo, user-assigned, which HighLevel
 * and libphonenumber use). The runtime's region names (CLDR) know more than countries, and each is
 * refused: retired or informal codes it maps to their successor ("UK" → "GB", "YU" → "RS"), ISO's
 * user-assigned range (AA, QM–QZ, XA–XZ, ZZ: CLDR names QO, XA, XB, ZZ) and the codes ISO reserves
 * for other uses (EU, EZ, UN, AC, CP, CQ, DG, EA, IC, TA). Of AA–ZZ, 250 remain (pinned by a test).
 */
export function isCountryCode(code: string): boolean {
  // Asking the runtime costs about 10 µs, and a pull asks once per contact: the answers are kept.
  countryCodes ??= allCountryCodes();
  return countryCodes.has(code);
}

let countryCodes: ReadonlySet<string> | undefined;

function allCountryCodes(): ReadonlySet<string> {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const out = new Set<string>();
  for (const a of letters) for (const b of letters) if (askRuntime(a + b)) out.add(a + b);
  return out;
}

function askRuntime(code: string): boolean {
  return (
    /^[A-Z]{2}$/.test(code) &&
    regionNames.of(code) !== undefined &&
    new Intl.Locale('und', { region: code }).region === code &&
    (code === 'XK' || !/^(?:AA|Q[M-Z]|X[A-Z]|ZZ|EU|EZ|UN|AC|CP|CQ|DG|EA|IC|TA)$/.test(code))
  );
}

let countriesByName: Map<string, string> | undefined;

/**
 * A country as HighLevel may hold it: its code ("gb"), or its English name ("United Kingdom",
 * as a CSV import leaves it) or a common alias ("USA"), as its code; undefined when it is neither.
 */
export function countryFromText(text: string): string | undefined {
  const t = text.trim();
  if (/^[A-Za-z]{2}$/.test(t) && isCountryCode(t.toUpperCase())) return t.toUpperCase();
  countriesByName ??= countryNames();
  return countriesByName.get(nameKey(t));
}

/** A country name as looked up: lower case, accents, apostrophes' shapes, "the" and spacing aside. */
function nameKey(name: string): string {
  return name
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[’‘`]/g, "'")
    .replace(/\s+/g, ' ')
    .replace(/^the /, '')
    .trim();
}

function countryNames(): Map<string, string> {
  const out = new Map<string, string>();
  countryCodes ??= allCountryCodes();
  for (const code of countryCodes) out.set(nameKey(regionNames.of(code)!), code);
  // Other names in common use (ISO's long forms, former and everyday names), as a CSV may hold them.
  const aliases: [string, string][] = [
    ['usa', 'US'], ['u.s.a.', 'US'], ['u.s.', 'US'], ['united states of america', 'US'], ['america', 'US'],
    ['uk', 'GB'], ['u.k.', 'GB'], ['great britain', 'GB'], ['england', 'GB'], ['scotland', 'GB'], ['wales', 'GB'],
    ['northern ireland', 'GB'], ['united kingdom of great britain and northern ireland', 'GB'],
    ['czech republic', 'CZ'], ['turkey', 'TR'], ['holland', 'NL'], ['viet nam', 'VN'], ['korea, republic of', 'KR'],
    ['republic of korea', 'KR'], ['korea', 'KR'], ["korea, democratic people's republic of", 'KP'], ["cote d'ivoire", 'CI'],
    ['ivory coast', 'CI'], ['russian federation', 'RU'], ['iran, islamic republic of', 'IR'], ['syrian arab republic', 'SY'],
    ["lao people's democratic republic", 'LA'], ['bolivia, plurinational state of', 'BO'], ['venezuela, bolivarian republic of', 'VE'],
    ['tanzania, united republic of', 'TZ'], ['moldova, republic of', 'MD'], ['macedonia', 'MK'], ['swaziland', 'SZ'],
    ['burma', 'MM'], ['cape verde', 'CV'], ['east timor', 'TL'], ['vatican city', 'VA'], ['holy see', 'VA'],
    ['uae', 'AE'], ['taiwan, province of china', 'TW'], ['palestine, state of', 'PS'], ['congo, the democratic republic of the', 'CD'],
  ];
  for (const [alias, code] of aliases) out.set(nameKey(alias), code);
  return out;
}

export function toCountryCode(country: string | null | undefined): string | undefined {
  const c = country?.trim().toUpperCase();
  return c && /^[A-Z]{2}$/.test(c) && isSupportedCountry(c) ? c : undefined;
}

/**
 * E.164 when the number is *possible* for its country (right length; for +1, built as the NANP
 * builds numbers), read with `defaultCountry` when it has no +prefix. "Possible" and not "valid" on purpose: validity follows numbering plans
 * that change, and test data (+1 555…) is possible but not valid; rejecting it would keep two
 * spellings of one number apart. A phone that cannot be read is kept as trimmed text, never dropped
 * (the user typed something), and `e164: false` flags it: such a phone is shown as "unrecognised"
 * and is not used to match contacts; `isE164` recomputes the flag from the stored value.
 * `extension`: the extension of a number read with one ("+1 415 555 0100 ext 12"). E.164 has no
 * place for it, so `phone` is the number alone; a caller that must not lose it refuses the text
 * (Tandem's own writes) or reports it (a read of HighLevel: contact-mapping.ts).
 */
export function normalizePhone(value: string | null | undefined, defaultCountry = 'US'): ReadPhone {
  const t = normalizeText(value);
  if (t === null) return { phone: null, e164: false };
  // HighLevel hands phones out in E.164, most of them +1: libphonenumber-js then tries each of the
  // 25 countries sharing the code (about 9 µs), to answer what is already known. Every +1 number of
  // ten national digits is possible (NANP numbers all have ten) and is its own E.164 form, whatever
  // the default country (test/unit/contact-model.test.ts compares the two on every area code).
  if (NANP_E164.test(t)) return NANP.test(t) ? { phone: t, e164: true } : { phone: t, e164: false };
  const country = toCountryCode(defaultCountry) ?? 'US';
  const key = `${country}|${t}`;
  const known = phoneMemo.get(key);
  if (known) return known;
  const parsed = parsePhoneNumberFromString(t, country as Parameters<typeof parsePhoneNumberFromString>[1]);
  const readable = parsed?.isPossible() && (parsed.countryCallingCode !== '1' || NANP.test(parsed.number));
  const result: ReadPhone = readable
    ? { phone: parsed!.number as string, e164: true, ...(parsed!.ext ? { extension: parsed!.ext as string } : {}) }
    : { phone: t, e164: false };
  // Bounded: the oldest entry goes first (a Map iterates in insertion order).
  if (phoneMemo.size >= PHONE_MEMO_SIZE) phoneMemo.delete(phoneMemo.keys().next().value!);
  phoneMemo.set(key, result);
  return result;
}

/**
 * Parsing a phone is the largest single cost of reading a HighLevel contact, and every pull and
 * sweep reads the same numbers again: results are remembered (pure function of text and country).
 */
const PHONE_MEMO_SIZE = 50_000;
const NANP_E164 = /^\+1\d{10}$/;
const phoneMemo = new Map<string, Readonly<ReadPhone>>();

/** A phone as normalizePhone reads it. */
export interface ReadPhone {
  phone: string | null;
  e164: boolean;
  /** The extension the number was written with (E.164 has none: `phone` is the number alone). */
  extension?: string;
}

/**
 * Whether `text`, a phone written without +prefix, is `number` (E.164) when read in that number's
 * own country: the number it meant when it was last read, whatever country its contact has been
 * given since ("(415) 555-0123" is +14155550123 read in the US, +494155550123 in Germany). A number
 * placed in no one country (+1 555… test numbers are in none) is read in each country of its
 * calling code, which write their national numbers alike.
 */
export function readsAs(text: string, number: string): boolean {
  if (!isE164(number)) return false;
  const parsed = parsePhoneNumberFromString(number);
  if (!parsed) return false;
  const countries = parsed.country ? [parsed.country] : getCountries().filter((c) => getCountryCallingCode(c) === parsed.countryCallingCode);
  return countries.some((c) => normalizePhone(text, c).phone === number);
}

/** YYYY-MM-DD of a real calendar day. */
export function isCalendarDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === s;
}

/** A custom value without surrounding emptiness, or null when there is nothing in it. */
export function normalizeCustomValue(value: CustomFieldValue | null | undefined): CustomFieldValue | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string') return value.trim() === '' ? null : value;
  const items = value.filter((v) => v.trim() !== '');
  return items.length ? items : null;
}

/** What a caller may hand in: any field, loosely formatted. */
export type ContactDraft = { [K in ScalarField]?: ContactFields[K] | string | null } & {
  tags?: readonly string[] | null;
  dnd?: boolean | null;
  customFields?: Record<string, CustomFieldValue | null> | null;
};

/**
 * `phone_unrecognised`: kept as typed. `phone_extension`: read with an extension, which the
 * normalised phone (E.164) does not hold: a write of Tandem's refuses it rather than drop it.
 */
export type NormalizationIssue =
  | { field: 'phone'; code: 'phone_unrecognised'; value: string }
  | { field: 'phone'; code: 'phone_extension'; value: string; extension: string };

/**
 * The normalised contact for a draft (missing fields empty). It does not validate: a country that
 * is not two letters or a malformed date stays as given for `contactFieldsSchema` to reject.
 */
export function normalizeContact(draft: ContactDraft, opts: { defaultCountry?: string } = {}): { contact: ContactFields; issues: NormalizationIssue[] } {
  const contact = emptyContact();
  const issues: NormalizationIssue[] = [];
  for (const field of SCALAR_FIELDS) {
    if (field === 'dnd') continue;
    const raw = draft[field];
    contact[field] = normalizeText(typeof raw === 'string' ? raw : null);
  }
  contact.dnd = draft.dnd === true;
  // One spelling of the same letters ("å" as one character or as "a" and a ring): matched as the same email.
  if (contact.email !== null) contact.email = contact.email.normalize('NFC');
  const typed = contact.phone;
  const phone = normalizePhone(typed, opts.defaultCountry);
  contact.phone = phone.phone;
  if (phone.phone !== null && !phone.e164) issues.push({ field: 'phone', code: 'phone_unrecognised', value: phone.phone });
  if (typed !== null && phone.extension !== undefined) issues.push({ field: 'phone', code: 'phone_extension', value: typed, extension: phone.extension });
  if (contact.country && /^[a-z]{2}$/i.test(contact.country)) contact.country = contact.country.toUpperCase();
  // A full ISO timestamp (as HighLevel returns birthdays) means its calendar day.
  if (contact.dateOfBirth && /^\d{4}-\d{2}-\d{2}T/.test(contact.dateOfBirth)) contact.dateOfBirth = contact.dateOfBirth.slice(0, 10);
  contact.tags = normalizeTags(draft.tags ?? []);
  for (const [id, value] of Object.entries(draft.customFields ?? {})) {
    const v = normalizeCustomValue(value);
    if (v !== null) contact.customFields[id] = v;
  }
  return { contact, issues };
}

// ---- comparison ---------------------------------------------------------------------------------

export function sameEmail(a: string | null | undefined, b: string | null | undefined): boolean {
  return (a?.toLowerCase() ?? null) === (b?.toLowerCase() ?? null);
}

/** Options of a multi-select are a set; a number and its decimal text are the same value. */
export function customValueEquals(a: CustomFieldValue | null | undefined, b: CustomFieldValue | null | undefined): boolean {
  const x = normalizeCustomValue(a);
  const y = normalizeCustomValue(b);
  if (x === null || y === null) return x === y;
  if (Array.isArray(x) || Array.isArray(y)) {
    if (!Array.isArray(x) || !Array.isArray(y)) return false;
    return sameSet(x, y);
  }
  return String(x) === String(y);
}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((v) => sb.has(v));
}

export function customFieldsEqual(a: Record<string, CustomFieldValue>, b: Record<string, CustomFieldValue>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => customValueEquals(a[k], b[k]));
}

/**
 * Whether two values of `field` are the same for sync purposes (tags as sets). An email is a value
 * like any other here: a correction of its case only (ANA@… → Ana@…) is a change that travels, as
 * HighLevel keeps the case it is given. Matching contacts by email (`sameEmail`) ignores case.
 */
export function fieldEquals<F extends FieldName>(field: F, a: ContactFields[F] | undefined, b: ContactFields[F] | undefined): boolean {
  if (field === 'tags') return sameSet((a ?? []) as string[], (b ?? []) as string[]);
  if (field === 'customFields') return customFieldsEqual((a ?? {}) as ContactFields['customFields'], (b ?? {}) as ContactFields['customFields']);
  if (field === 'dnd') return (a ?? false) === (b ?? false);
  return (a ?? null) === (b ?? null);
}

/** The field keys (`city`, `tags`, `customFields.<id>`, ids sorted) whose values differ between `a` and `b`. */
export function differingFields(a: ContactFields, b: ContactFields): FieldKey[] {
  const out: FieldKey[] = SCALAR_FIELDS.filter((f) => !fieldEquals(f, a[f], b[f]));
  if (!fieldEquals('tags', a.tags, b.tags)) out.push('tags');
  const ids = new Set([...Object.keys(a.customFields), ...Object.keys(b.customFields)]);
  for (const id of [...ids].sort()) if (!customValueEquals(a.customFields[id], b.customFields[id])) out.push(`customFields.${id}`);
  return out;
}

/** Nothing in it: null, undefined, '', [] or {} (false is a value). */
export function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

// ---- applying changes ---------------------------------------------------------------------------

export function applyPatch(contact: ContactFields, patch: ContactPatch): ContactFields {
  const { customFields, ...scalars } = patch;
  const next: ContactFields = { ...contact, ...scalars, tags: [...contact.tags], customFields: { ...contact.customFields } };
  for (const [id, value] of Object.entries(customFields ?? {})) {
    const v = normalizeCustomValue(value);
    if (v === null) delete next.customFields[id];
    else next.customFields[id] = v;
  }
  return next;
}

/** `tags` with `remove` taken out and `add` appended (order of the rest kept). */
export function applyTags(tags: readonly string[], add: readonly string[], remove: readonly string[]): string[] {
  const gone = new Set(normalizeTags(remove));
  const out = tags.filter((t) => !gone.has(t));
  for (const t of normalizeTags(add)) if (!out.includes(t)) out.push(t);
  return out;
}

export function isEmptyPatch(patch: ContactPatch): boolean {
  const { customFields, ...scalars } = patch;
  return Object.keys(scalars).length === 0 && Object.keys(customFields ?? {}).length === 0;
}
