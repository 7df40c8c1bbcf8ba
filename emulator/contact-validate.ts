// Validates contact write bodies the way HighLevel's NestJS class-validator pipe does (whitelist +
// forbidNonWhitelisted, 422 with an array of messages) and turns them into a normalised input.
import { createHash } from 'node:crypto';
import { unprocessable } from './http.ts';

/** A validated write: a key mapped to null means "clear the field". Absent keys are untouched. */
export type ContactInput = Record<string, unknown> & {
  tags?: string[] | null;
  /**
   * Items named by key keep it until the write's location is known: resolveCustomFieldKeys
   * (custom-fields.ts) then swaps the id derived from the key for the definition's id.
   */
  customFields?: { id: string; value: unknown; key?: string }[] | null;
  dndSettings?: Record<string, DndChannel> | null;
};

export interface DndChannel {
  status: 'active' | 'inactive' | 'permanent';
  message?: string;
  code?: string;
}

type Kind = 'string' | 'email' | 'phone' | 'boolean' | 'tags' | 'dndSettings' | 'inboundDnd' | 'customFields' | 'dateOfBirth' | 'type';

// The fields every write accepts. Beyond UpdateContactDto, a live probe (highlevel-api-docs
// issue #314) saw PUT accept companyName, keyword, ssn and type; we accept them on every write.
const COMMON: Record<string, Kind> = {
  firstName: 'string',
  lastName: 'string',
  name: 'string',
  email: 'email',
  phone: 'phone',
  address1: 'string',
  city: 'string',
  state: 'string',
  postalCode: 'string',
  website: 'string',
  timezone: 'string',
  dnd: 'boolean',
  dndSettings: 'dndSettings',
  inboundDndSettings: 'inboundDnd',
  tags: 'tags',
  customFields: 'customFields',
  source: 'string',
  dateOfBirth: 'dateOfBirth',
  country: 'string',
  companyName: 'string',
  assignedTo: 'string',
  keyword: 'string',
  ssn: 'string',
  type: 'type',
};

export const DND_CHANNELS = ['Call', 'Email', 'SMS', 'WhatsApp', 'GMB', 'FB'] as const;
const DND_STATUSES = ['active', 'inactive', 'permanent'];

export type WriteKind = 'create' | 'update' | 'upsert';

/**
 * Validates a create/update/upsert body. Throws 422 with every problem found; returns the
 * normalised input (plus `locationId` and `createNewIfDuplicateAllowed` where the DTO has them).
 */
export function parseContactWrite(raw: unknown, kind: WriteKind): ContactInput & { locationId?: string; createNewIfDuplicateAllowed?: boolean } {
  const body = isObject(raw) ? raw : {};
  const messages: string[] = [];
  const out: ContactInput & { locationId?: string; createNewIfDuplicateAllowed?: boolean } = {};
  for (const key of Object.keys(body)) {
    const allowed =
      key in COMMON ||
      (kind !== 'update' && (key === 'locationId' || key === 'gender')) ||
      (kind === 'upsert' && key === 'createNewIfDuplicateAllowed');
    if (!allowed) messages.push(`property ${key} should not exist`);
  }
  if (kind !== 'update') {
    const loc = body.locationId;
    if (loc === undefined || loc === null || loc === '') messages.push('locationId should not be empty');
    if (typeof loc !== 'string') messages.push('locationId must be a string');
    else if (loc) out.locationId = loc;
    checkField('gender', body.gender, 'string', messages, out);
  }
  if (kind === 'upsert' && body.createNewIfDuplicateAllowed !== undefined) {
    if (typeof body.createNewIfDuplicateAllowed !== 'boolean') messages.push('createNewIfDuplicateAllowed must be a boolean value');
    else out.createNewIfDuplicateAllowed = body.createNewIfDuplicateAllowed;
  }
  for (const [key, fieldKind] of Object.entries(COMMON)) checkField(key, body[key], fieldKind, messages, out);
  if (messages.length) unprocessable(messages);
  return out;
}

function checkField(key: string, value: unknown, kind: Kind, messages: string[], out: ContactInput): void {
  if (value === undefined) return;
  // class-validator's @IsOptional lets null through; we read null as "clear this field".
  if (value === null) {
    out[key] = null;
    return;
  }
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') messages.push(`${key} must be a string`);
      else out[key] = value === '' ? null : value;
      return;
    case 'phone':
      if (typeof value !== 'string') messages.push(`${key} must be a string`);
      else out[key] = value.trim() === '' ? null : value.trim();
      return;
    case 'email':
      if (typeof value !== 'string' || !EMAIL.test(value.trim())) messages.push(`${key} must be an email`);
      else out[key] = value.trim();
      return;
    case 'boolean':
      if (typeof value !== 'boolean') messages.push(`${key} must be a boolean value`);
      else out[key] = value;
      return;
    case 'type':
      if (value !== 'lead' && value !== 'customer') messages.push(`${key} must be one of the following values: lead, customer`);
      else out[key] = value;
      return;
    case 'tags':
      if (!Array.isArray(value)) messages.push(`${key} must be an array`);
      else if (value.some((t) => typeof t !== 'string')) messages.push(`each value in ${key} must be a string`);
      else out[key] = normaliseTags(value as string[]);
      return;
    case 'dateOfBirth': {
      const iso = typeof value === 'string' ? parseDateOfBirth(value) : undefined;
      if (!iso) messages.push(`${key} must be a valid date in one of the formats YYYY-MM-DD, MM-DD-YYYY (separators - / . _)`);
      else out[key] = iso;
      return;
    }
    case 'dndSettings':
      out[key] = checkDnd(key, value, DND_CHANNELS, DND_STATUSES, true, messages);
      return;
    case 'inboundDnd':
      out[key] = checkDnd(key, value, ['all'], ['active', 'inactive'], false, messages);
      return;
    case 'customFields':
      out[key] = checkCustomFields(value, messages);
      return;
  }
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkDnd(
  key: string,
  value: unknown,
  channels: readonly string[],
  statuses: string[],
  withCode: boolean,
  messages: string[],
): Record<string, DndChannel> | undefined {
  if (!isObject(value)) {
    messages.push(`${key} must be an object`);
    return undefined;
  }
  const out: Record<string, DndChannel> = {};
  for (const [channel, setting] of Object.entries(value)) {
    const path = `${key}.${channel}`;
    if (!channels.includes(channel)) {
      messages.push(`property ${path} should not exist`);
      continue;
    }
    if (!isObject(setting)) {
      messages.push(`${path} must be an object`);
      continue;
    }
    for (const k of Object.keys(setting)) {
      if (k !== 'status' && k !== 'message' && !(withCode && k === 'code')) messages.push(`property ${path}.${k} should not exist`);
    }
    if (typeof setting.status !== 'string' || !statuses.includes(setting.status)) {
      messages.push(`${path}.status must be one of the following values: ${statuses.join(', ')}`);
      continue;
    }
    const entry: DndChannel = { status: setting.status as DndChannel['status'] };
    if (setting.message !== undefined) {
      if (typeof setting.message !== 'string') messages.push(`${path}.message must be a string`);
      else entry.message = setting.message;
    }
    if (withCode && setting.code !== undefined) {
      if (typeof setting.code !== 'string') messages.push(`${path}.code must be a string`);
      else entry.code = setting.code;
    }
    out[channel] = entry;
  }
  return out;
}

function checkCustomFields(value: unknown, messages: string[]): { id: string; value: unknown; key?: string }[] | undefined {
  if (!Array.isArray(value)) {
    messages.push('customFields must be an array');
    return undefined;
  }
  const out: { id: string; value: unknown; key?: string }[] = [];
  value.forEach((item, i) => {
    const path = `customFields.${i}`;
    if (!isObject(item)) {
      messages.push(`nested property customFields must be either object or array`);
      return;
    }
    for (const k of Object.keys(item)) {
      if (k !== 'id' && k !== 'key' && k !== 'field_value') messages.push(`property ${path}.${k} should not exist`);
    }
    const id = typeof item.id === 'string' && item.id ? item.id : undefined;
    const key = typeof item.key === 'string' && item.key ? item.key : undefined;
    if (!id && !key) {
      messages.push(`${path}.id must be a string`);
      return;
    }
    const v = item.field_value;
    const okValue =
      v === undefined ||
      v === null ||
      typeof v === 'string' ||
      typeof v === 'number' ||
      (Array.isArray(v) && v.every((x) => typeof x === 'string')) ||
      isObject(v);
    if (!okValue) {
      messages.push(`${path}.field_value must be a string, number, string array or object`);
      return;
    }
    // An id wins over a key given with it.
    out.push(id ? { id, value: v ?? null } : { id: customFieldIdForKey(key!), key: key!, value: v ?? null });
  });
  return out;
}

/**
 * The id a field addressed by key gets when the location has no definition with that key: a
 * stable 20-char id derived from the key ("contact." prefix ignored), the same in every location.
 * (Guess: what HighLevel does with a key it has no field for is undocumented.)
 */
export function customFieldIdForKey(key: string): string {
  const bare = key.replace(/^contact\./, '').toLowerCase();
  const digest = createHash('sha256').update(`cf:${bare}`).digest('base64').replace(/[^A-Za-z0-9]/g, '');
  return digest.slice(0, 20);
}

/** Tags are stored trimmed, lowercased and without duplicates, first occurrence kept. */
export function normaliseTags(tags: string[]): string[] {
  const out: string[] = [];
  for (const t of tags) {
    const n = t.trim().toLowerCase();
    if (n && !out.includes(n)) out.push(n);
  }
  return out;
}

/**
 * Accepts the documented formats (YYYY?MM?DD and MM?DD?YYYY with ? one of - / . _) and, so a
 * client can send back what GET returned, a full ISO timestamp. Returns ISO midnight UTC.
 */
export function parseDateOfBirth(s: string): string | undefined {
  const t = s.trim();
  let y: number, m: number, d: number;
  let match = /^(\d{4})([-/._])(\d{1,2})\2(\d{1,2})$/.exec(t);
  if (match) [y, m, d] = [Number(match[1]), Number(match[3]), Number(match[4])];
  else if ((match = /^(\d{1,2})([-/._])(\d{1,2})\2(\d{4})$/.exec(t))) [m, d, y] = [Number(match[1]), Number(match[3]), Number(match[4])];
  else if ((match = /^(\d{4})-(\d{2})-(\d{2})T[\d:.]+(Z|[+-]\d{2}:?\d{2})?$/.exec(t))) [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  else return undefined;
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return undefined;
  return date.toISOString();
}

/** Validates `{ tags: string[] }` for the tag endpoints. */
export function parseTagsBody(raw: unknown): string[] {
  const body = isObject(raw) ? raw : {};
  const messages: string[] = [];
  for (const key of Object.keys(body)) if (key !== 'tags') messages.push(`property ${key} should not exist`);
  const tags = body.tags;
  if (!Array.isArray(tags)) messages.push('tags must be an array');
  else if (tags.some((t) => typeof t !== 'string')) messages.push('each value in tags must be a string');
  if (messages.length) unprocessable(messages);
  return normaliseTags(tags as string[]);
}
