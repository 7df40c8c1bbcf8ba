// The contact document (CONTRACT §3.3): how a validated write becomes a stored document, the
// shapes HighLevel returns it in (GET, create, search, webhook), duplicate matching and which
// webhook events a change sends. Stored documents are immutable: every write stores a new object.
import type { Emulator } from './emulator.ts';
import type { AccessToken, ContactDoc } from './state.ts';
import { isoAt } from './state.ts';
import { recordId } from './ids.ts';
import type { ContactInput, DndChannel } from './contact-validate.ts';
import { emailKey, lookup, noteWrite, phoneKey } from './contact-index.ts';

export { seedContacts } from './contact-seed.ts';

/** Keys in the order HighLevel's documents show them; others follow in insertion order. */
const KEY_ORDER = [
  'id', 'locationId', 'firstName', 'lastName', 'firstNameLowerCase', 'lastNameLowerCase', 'fullNameLowerCase',
  'email', 'emailLowerCase', 'phone', 'companyName', 'address1', 'city', 'state', 'postalCode', 'country',
  'website', 'timezone', 'dnd', 'dndSettings', 'inboundDndSettings', 'type', 'source', 'assignedTo', 'tags',
  'customFields', 'dateOfBirth', 'gender', 'keyword', 'ssn', 'createdBy', 'dateAdded', 'dateUpdated',
];

/** Keys a write never sets directly. */
const DERIVED = new Set(['firstNameLowerCase', 'lastNameLowerCase', 'fullNameLowerCase', 'emailLowerCase']);

export function fullName(doc: Record<string, unknown>): string {
  return [doc.firstName, doc.lastName].filter((s) => typeof s === 'string' && s).join(' ');
}

/**
 * Who created the contact. OAuth tokens: INTEGRATION/OAUTH with the app's client id (the JWT's
 * sourceId). Private integration tokens: WEB_USER/APP with the token's user (guess).
 */
export function createdByFor(emu: Emulator, token: AccessToken): Record<string, unknown> {
  const timestamp = isoAt(emu.now());
  if (token.kind === 'oauth') {
    const app = token.appId ? emu.world.apps[token.appId] : undefined;
    return { source: 'INTEGRATION', channel: 'OAUTH', sourceId: app?.clientId ?? token.appId, timestamp };
  }
  return { source: 'WEB_USER', channel: 'APP', sourceId: token.userId, timestamp };
}

/** A brand-new document for a validated create/upsert input. */
export function newContact(emu: Emulator, locationId: string, input: ContactInput, createdBy: Record<string, unknown>): ContactDoc {
  const now = isoAt(emu.now());
  const base: ContactDoc = { id: recordId(), locationId, type: 'lead', tags: [], customFields: [], createdBy, dateAdded: now, dateUpdated: now };
  return applyInput(base, input, now);
}

/**
 * The document after applying a validated write. Returns `doc` itself when nothing changed
 * (then nothing is stored, dateUpdated stays and no webhook is sent).
 */
export function applyInput(doc: ContactDoc, input: ContactInput, nowIso: string): ContactDoc {
  const next: Record<string, unknown> = { ...doc };
  const { name, tags, customFields, dndSettings, inboundDndSettings, locationId: _l, createNewIfDuplicateAllowed: _c, ...plain } = input;
  void _l;
  void _c;
  for (const [key, value] of Object.entries(plain)) {
    if (DERIVED.has(key) || value === undefined) continue;
    if (value === null) delete next[key];
    else next[key] = value;
  }
  // `name` alone is split into first and last name (guess); with either of those given it is ignored.
  if (typeof name === 'string' && input.firstName === undefined && input.lastName === undefined) {
    const [first, ...rest] = name.trim().split(/\s+/);
    if (first) next.firstName = first;
    if (rest.length) next.lastName = rest.join(' ');
    else delete next.lastName;
  }
  if (tags !== undefined) next.tags = tags ?? [];
  if (customFields !== undefined) next.customFields = mergeCustomFields(doc.customFields, customFields);
  if (dndSettings !== undefined) mergeDnd(next, 'dndSettings', dndSettings as Record<string, DndChannel> | null);
  if (inboundDndSettings !== undefined) mergeDnd(next, 'inboundDndSettings', inboundDndSettings as Record<string, DndChannel> | null);
  derive(next);
  if (changedKeys(doc, next as ContactDoc).length === 0) return doc;
  next.dateUpdated = nowIso;
  return ordered(next) as ContactDoc;
}

/** A complete document from already-normalised fields: derived lowercase copies added, keys ordered. */
export function finishDoc(fields: ContactDoc): ContactDoc {
  const doc: Record<string, unknown> = { ...fields };
  derive(doc);
  return ordered(doc) as ContactDoc;
}

/** Custom fields given replace their value by id; null, "" or [] removes the field (guess). */
function mergeCustomFields(current: unknown, updates: { id: string; value: unknown }[] | null): { id: string; value: unknown }[] {
  if (updates === null) return [];
  const out = Array.isArray(current) ? (current as { id: string; value: unknown }[]).map((f) => ({ ...f })) : [];
  for (const { id, value } of updates) {
    const empty = value === null || value === '' || (Array.isArray(value) && value.length === 0);
    const at = out.findIndex((f) => f.id === id);
    if (empty) {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) out[at] = { id, value };
    else out.push({ id, value });
  }
  return out;
}

/** Channels given replace that channel's setting; others are kept; null clears all (guess). */
function mergeDnd(doc: Record<string, unknown>, key: string, update: Record<string, DndChannel> | null): void {
  if (update === null) {
    delete doc[key];
    return;
  }
  const merged = { ...((doc[key] as Record<string, DndChannel> | undefined) ?? {}), ...update };
  if (Object.keys(merged).length) doc[key] = merged;
  else delete doc[key];
}

function derive(doc: Record<string, unknown>): void {
  const setOrDrop = (key: string, value: string | undefined) => {
    if (value) doc[key] = value;
    else delete doc[key];
  };
  setOrDrop('firstNameLowerCase', typeof doc.firstName === 'string' ? doc.firstName.toLowerCase() : undefined);
  setOrDrop('lastNameLowerCase', typeof doc.lastName === 'string' ? doc.lastName.toLowerCase() : undefined);
  setOrDrop('fullNameLowerCase', fullName(doc).toLowerCase() || undefined);
  setOrDrop('emailLowerCase', typeof doc.email === 'string' ? doc.email.toLowerCase() : undefined);
}

function ordered(doc: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of KEY_ORDER) if (doc[k] !== undefined) out[k] = doc[k];
  for (const [k, v] of Object.entries(doc)) if (!(k in out) && v !== undefined) out[k] = v;
  return out;
}

/** Keys whose value differs (dateUpdated and the derived lowercase copies excluded). */
export function changedKeys(a: ContactDoc, b: ContactDoc): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) {
    if (k === 'dateUpdated' || DERIVED.has(k)) continue;
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out.push(k);
  }
  return out;
}

// ---- response shapes ---------------------------------------------------------------------------

/** GET / PUT / upsert shape: the stored document (no `name`: captures of real GETs show none). */
export function getView(doc: ContactDoc): Record<string, unknown> {
  return { ...doc };
}

/** Create (201) shape: adds `deleted: false`, and birthMonth (0-based, as in the spec example) / birthDay. */
export function createView(doc: ContactDoc): Record<string, unknown> {
  const out: Record<string, unknown> = { ...doc, deleted: false };
  if (typeof doc.dateOfBirth === 'string') {
    const d = new Date(doc.dateOfBirth);
    out.birthMonth = d.getUTCMonth();
    out.birthDay = d.getUTCDate();
  }
  return out;
}

/**
 * Search shape (highlevel-api-docs issue #314, live probe): `address` instead of `address1`,
 * `dateOfBirth` as epoch ms, `contactName`, list fields always present, plus `searchAfter`.
 */
export function searchView(doc: ContactDoc, searchAfter?: unknown[]): Record<string, unknown> {
  const d = doc as Record<string, unknown>;
  const name = fullName(d);
  const out: Record<string, unknown> = {
    id: d.id,
    locationId: d.locationId,
    ...(name ? { contactName: name } : {}),
  };
  const copy = [
    'firstName', 'lastName', 'firstNameLowerCase', 'lastNameLowerCase', 'email', 'phone', 'companyName',
  ];
  for (const k of copy) if (d[k] !== undefined) out[k] = d[k];
  if (d.address1 !== undefined) out.address = d.address1;
  for (const k of ['city', 'state', 'postalCode', 'country', 'website', 'timezone', 'source', 'type', 'dnd', 'dndSettings', 'inboundDndSettings', 'assignedTo']) {
    if (d[k] !== undefined) out[k] = d[k];
  }
  out.tags = d.tags ?? [];
  out.customFields = d.customFields ?? [];
  out.additionalEmails = [];
  out.additionalPhones = [];
  out.followers = [];
  if (typeof d.dateOfBirth === 'string') out.dateOfBirth = Date.parse(d.dateOfBirth);
  out.dateAdded = d.dateAdded;
  out.dateUpdated = d.dateUpdated;
  if (searchAfter) out.searchAfter = searchAfter;
  return out;
}

const WEBHOOK_KEYS = [
  'locationId', 'id', 'address1', 'city', 'state', 'companyName', 'country', 'source', 'dateAdded', 'dateOfBirth',
  'dnd', 'email', 'name', 'firstName', 'lastName', 'phone', 'postalCode', 'tags', 'website', 'attachments',
  'assignedTo', 'customFields',
];

/** Flat webhook payload (webhook-events/Contact*.json); the dispatcher adds timestamp and webhookId. */
export function webhookPayload(type: string, doc: ContactDoc): Record<string, unknown> {
  const d: Record<string, unknown> = { ...doc, name: fullName(doc) || undefined, attachments: [] };
  const out: Record<string, unknown> = { type };
  for (const k of WEBHOOK_KEYS) if (d[k] !== undefined) out[k] = d[k];
  if (type === 'ContactDndUpdate') out.dndSettings = doc.dndSettings ?? {};
  return out;
}

/**
 * Sends the events a change produces (guess, CONTRACT §10): create → ContactCreate; delete →
 * ContactDelete with the last-known contact; update → ContactUpdate when a field other than tags
 * and DND changed, ContactTagUpdate when tags changed, ContactDndUpdate when dnd/dndSettings/
 * inboundDndSettings changed (one write may send several). No change → no event.
 */
export function emitContactChange(emu: Emulator, before: ContactDoc | null, after: ContactDoc | null): void {
  const doc = after ?? before;
  if (!doc) return;
  const types: string[] = [];
  if (!before) types.push('ContactCreate');
  else if (!after) types.push('ContactDelete');
  else {
    const changed = changedKeys(before, after);
    const dndKeys = new Set(['dnd', 'dndSettings', 'inboundDndSettings']);
    if (changed.some((k) => k !== 'tags' && !dndKeys.has(k))) types.push('ContactUpdate');
    if (changed.includes('tags')) types.push('ContactTagUpdate');
    if (changed.some((k) => dndKeys.has(k))) types.push('ContactDndUpdate');
  }
  for (const type of types) emu.emitLocationEvent(doc.locationId, webhookPayload(type, doc));
}

/** Stores a new version (or a deletion) and sends the webhooks for it. */
export function commitContact(emu: Emulator, before: ContactDoc | null, after: ContactDoc | null): void {
  if (before === after) return;
  const doc = (after ?? before)!;
  emu.writeContact(doc.id, doc.locationId, after);
  noteWrite(emu, before, after);
  emitContactChange(emu, before, after);
}

// ---- duplicates --------------------------------------------------------------------------------

export interface DuplicateMatches {
  email?: ContactDoc;
  phone?: ContactDoc;
}

/**
 * Current (GET-consistent) contacts of a location with the same email (case-insensitive) or the
 * same phone (digits compared). With several matches the oldest (dateAdded, then id) wins.
 */
export function findMatches(emu: Emulator, locationId: string, email?: unknown, phone?: unknown, excludeId?: string): DuplicateMatches {
  const ids = lookup(emu, locationId, emailKey(email), phoneKey(phone));
  const oldest = (candidates: string[]): ContactDoc | undefined => {
    let best: ContactDoc | undefined;
    for (const id of candidates) {
      const doc = id === excludeId ? null : emu.contact(id);
      if (doc && (!best || doc.dateAdded < best.dateAdded || (doc.dateAdded === best.dateAdded && doc.id < best.id))) best = doc;
    }
    return best;
  };
  const out: DuplicateMatches = {};
  const byEmail = oldest(ids.email);
  const byPhone = oldest(ids.phone);
  if (byEmail) out.email = byEmail;
  if (byPhone) out.phone = byPhone;
  return out;
}

/**
 * Order in which email and phone identify a contact. HighLevel makes it a location setting; the
 * emulator uses the default, email then phone.
 */
export const MATCH_ORDER = ['email', 'phone'] as const;

/** The first match in MATCH_ORDER, with the field that matched. */
export function firstMatch(m: DuplicateMatches): { doc: ContactDoc; field: 'email' | 'phone' } | undefined {
  for (const field of MATCH_ORDER) {
    const doc = m[field];
    if (doc) return { doc, field };
  }
  return undefined;
}
