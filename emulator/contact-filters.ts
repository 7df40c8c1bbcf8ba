// Compiles POST /contacts/search `filters` and `query` (CONTRACT §3.4) into a predicate over
// search-visible contact documents, collecting class-validator-style messages for bad input.
import type { ContactDoc } from './state.ts';
import { phoneKey as phoneDigits } from './contact-index.ts';

export type Predicate = (doc: ContactDoc) => boolean;

type FieldType = 'id' | 'text' | 'email' | 'phone' | 'date' | 'bool' | 'list' | 'idList' | 'custom';
type Getter = (d: ContactDoc) => unknown;

const str = (k: string): Getter => (d) => (typeof d[k] === 'string' ? (d[k] as string).toLowerCase() : undefined);
const none: Getter = () => undefined;
const empty: Getter = () => [];

/** Filterable fields. Fields the emulator does not model (workflows, email events…) never have a value. */
const FIELDS: Record<string, { type: FieldType; get: Getter }> = {
  id: { type: 'id', get: (d) => d.id },
  contactName: { type: 'text', get: (d) => d.fullNameLowerCase },
  address: { type: 'text', get: str('address1') },
  assignedTo: { type: 'id', get: (d) => d.assignedTo },
  businessName: { type: 'text', get: str('companyName') },
  companyName: { type: 'text', get: str('companyName') },
  city: { type: 'text', get: str('city') },
  country: { type: 'text', get: str('country') },
  postalCode: { type: 'text', get: str('postalCode') },
  source: { type: 'text', get: str('source') },
  state: { type: 'text', get: str('state') },
  timezone: { type: 'text', get: str('timezone') },
  type: { type: 'text', get: str('type') },
  website: { type: 'text', get: str('website') },
  firstNameLowerCase: { type: 'text', get: (d) => d.firstNameLowerCase },
  lastNameLowerCase: { type: 'text', get: (d) => d.lastNameLowerCase },
  email: { type: 'email', get: (d) => d.emailLowerCase },
  phone: { type: 'phone', get: (d) => d.phone },
  dateAdded: { type: 'date', get: (d) => Date.parse(d.dateAdded) },
  dateUpdated: { type: 'date', get: (d) => Date.parse(d.dateUpdated) },
  dateOfBirth: { type: 'date', get: (d) => (typeof d.dateOfBirth === 'string' ? Date.parse(d.dateOfBirth) : undefined) },
  // A contact without `dnd` counts as dnd: false (guess: HighLevel indexes the default).
  dnd: { type: 'bool', get: (d) => d.dnd === true },
  tags: { type: 'list', get: (d) => d.tags ?? [] },
  followers: { type: 'idList', get: empty },
  activeWorkflows: { type: 'idList', get: empty },
  finishedWorkflows: { type: 'idList', get: empty },
  validEmail: { type: 'bool', get: none },
  isValidWhatsapp: { type: 'bool', get: none },
  lastEmailClickedDate: { type: 'date', get: none },
  lastEmailOpenedDate: { type: 'date', get: none },
  lastAppointment: { type: 'date', get: none },
};

const OPERATORS: Record<string, FieldType[]> = {
  eq: ['id', 'text', 'email', 'phone', 'date', 'bool', 'list', 'idList', 'custom'],
  not_eq: ['id', 'text', 'email', 'phone', 'date', 'bool', 'list', 'idList', 'custom'],
  contains: ['text', 'phone', 'list', 'custom'],
  not_contains: ['text', 'phone', 'list', 'custom'],
  exists: ['id', 'text', 'email', 'phone', 'date', 'bool', 'list', 'idList', 'custom'],
  not_exists: ['id', 'text', 'email', 'phone', 'date', 'bool', 'list', 'idList', 'custom'],
  range: ['text', 'date', 'custom'],
};

const MAX_VALUE = 75;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(name: string): { type: FieldType; get: Getter } | undefined {
  if (Object.hasOwn(FIELDS, name)) return FIELDS[name];
  const custom = /^customFields\.([A-Za-z0-9]+)(?:\.[A-Za-z0-9-]+)?$/.exec(name);
  if (!custom) return undefined;
  const id = custom[1];
  return {
    type: 'custom',
    get: (d) => (Array.isArray(d.customFields) ? (d.customFields as { id: string; value: unknown }[]).find((f) => f.id === id)?.value : undefined),
  };
}

/** Compiles the top-level `filters` array (AND-ed). Pushes messages for anything invalid. */
export function compileFilters(filters: unknown, messages: string[]): Predicate {
  if (filters === undefined) return () => true;
  if (!Array.isArray(filters)) {
    messages.push('filters must be an array');
    return () => true;
  }
  return compileGroup('AND', filters, 'filters', messages);
}

function compileGroup(op: 'AND' | 'OR', items: unknown[], path: string, messages: string[]): Predicate {
  const preds = items.map((item, i) => compileItem(item, `${path}.${i}`, messages));
  if (op === 'AND') return (d) => preds.every((p) => p(d));
  return (d) => preds.some((p) => p(d));
}

function compileItem(item: unknown, path: string, messages: string[]): Predicate {
  const never: Predicate = () => false;
  if (!isObject(item)) {
    messages.push(`${path} must be an object`);
    return never;
  }
  if ('group' in item) {
    for (const k of Object.keys(item)) if (k !== 'group' && k !== 'filters') messages.push(`property ${path}.${k} should not exist`);
    if (item.group !== 'AND' && item.group !== 'OR') messages.push(`${path}.group must be one of the following values: AND, OR`);
    if (!Array.isArray(item.filters)) {
      messages.push(`${path}.filters must be an array`);
      return never;
    }
    return compileGroup(item.group === 'OR' ? 'OR' : 'AND', item.filters, `${path}.filters`, messages);
  }
  for (const k of Object.keys(item)) if (k !== 'field' && k !== 'operator' && k !== 'value') messages.push(`property ${path}.${k} should not exist`);
  const name = item.field;
  const f = typeof name === 'string' ? field(name) : undefined;
  if (!f) {
    messages.push(`${path}.field ${JSON.stringify(name)} is not a supported filter field`);
    return never;
  }
  const operator = typeof item.operator === 'string' ? item.operator : '';
  const allowed = Object.hasOwn(OPERATORS, operator) ? OPERATORS[operator] : undefined;
  if (!allowed) {
    messages.push(`${path}.operator must be one of the following values: ${Object.keys(OPERATORS).join(', ')}`);
    return never;
  }
  if (!allowed.includes(f.type)) {
    messages.push(`${path}.operator ${operator} is not supported for field ${name as string}`);
    return never;
  }
  const value = item.value;
  const negate = operator.startsWith('not_');
  const positive = compileOperator(operator.replace(/^not_/, ''), f, value, path, messages);
  return negate ? (d) => !positive(d) : positive;
}

function compileOperator(op: string, f: { type: FieldType; get: Getter }, value: unknown, path: string, messages: string[]): Predicate {
  const never: Predicate = () => false;
  if (op === 'exists') {
    if (value !== undefined) messages.push(`${path}.value should not exist for operator exists/not_exists`);
    return (d) => present(f.get(d));
  }
  if (op === 'range') {
    if (!isObject(value) || Object.keys(value).length === 0) {
      messages.push(`${path}.value must be an object with gte, lte, gt or lt`);
      return never;
    }
    const bounds: [string, unknown][] = [];
    for (const [k, v] of Object.entries(value)) {
      if (!['gte', 'lte', 'gt', 'lt'].includes(k)) messages.push(`property ${path}.value.${k} should not exist`);
      else bounds.push([k, f.type === 'date' ? toMs(v, `${path}.value.${k}`, messages) : scalar(v, `${path}.value.${k}`, messages)]);
    }
    return (d) => {
      const fv = f.get(d);
      if (fv === undefined || fv === null || Array.isArray(fv) || typeof fv === 'object') return false;
      return bounds.every(([k, b]) => inBound(fv as string | number, k, b as string | number));
    };
  }
  // eq and contains take a scalar, or (eq) an array meaning "any of".
  const values = Array.isArray(value) && op === 'eq' ? value : [value];
  if (values.length === 0 || values.some((v) => v === undefined)) {
    messages.push(`${path}.value should not be empty`);
    return never;
  }
  if (op === 'contains' && typeof value !== 'string') {
    messages.push(`${path}.value must be a string`);
    return never;
  }
  const norm = values.map((v) => (f.type === 'date' ? toMs(v, `${path}.value`, messages) : scalar(v, `${path}.value`, messages)));
  return op === 'eq' ? (d) => norm.some((v) => equals(f.type, f.get(d), v)) : (d) => contains(f.type, f.get(d), norm[0] as string);
}

function scalar(v: unknown, path: string, messages: string[]): string | number | boolean {
  if (typeof v === 'string') {
    if (v.length > MAX_VALUE) messages.push(`${path} must be shorter than or equal to ${MAX_VALUE} characters`);
    return v;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return v;
  messages.push(`${path} must be a string, number or boolean`);
  return '';
}

/** Dates are given as epoch ms (number or numeric string) or any string Date.parse reads. */
function toMs(v: unknown, path: string, messages: string[]): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(n)) messages.push(`${path} must be a date (epoch ms or ISO 8601)`);
  return n;
}

function present(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'number') return !Number.isNaN(v);
  return true;
}

function lower(v: unknown): string {
  return String(v).toLowerCase();
}

function equals(type: FieldType, fv: unknown, v: unknown): boolean {
  if (fv === undefined || fv === null) return false;
  switch (type) {
    case 'id':
      return fv === String(v);
    case 'phone': {
      const a = phoneDigits(fv);
      const b = phoneDigits(String(v));
      return a && b ? a === b : fv === v;
    }
    case 'date':
      return fv === v;
    case 'bool':
      return fv === (v === true || v === 'true');
    case 'list':
      return (fv as string[]).includes(lower(v).trim());
    case 'idList':
      return (fv as string[]).includes(String(v));
    case 'custom':
      if (Array.isArray(fv)) return fv.some((x) => lower(x) === lower(v));
      if (typeof fv === 'number') return fv === Number(v);
      return lower(fv) === lower(v);
    default:
      return fv === lower(v);
  }
}

function contains(type: FieldType, fv: unknown, v: string): boolean {
  if (fv === undefined || fv === null) return false;
  const needle = v.toLowerCase();
  if (Array.isArray(fv)) return fv.some((x) => lower(x).includes(needle));
  if (type === 'phone') {
    const digits = phoneDigits(v);
    return lower(fv).includes(needle) || (digits !== '' && phoneDigits(fv).includes(digits));
  }
  return lower(fv).includes(needle);
}

function inBound(fv: string | number, k: string, b: string | number): boolean {
  const a = typeof fv === 'string' && typeof b === 'string' ? fv.toLowerCase() : fv;
  const c = typeof fv === 'string' && typeof b === 'string' ? b.toLowerCase() : typeof fv === 'number' ? Number(b) : b;
  if (k === 'gte') return a >= c;
  if (k === 'gt') return a > c;
  if (k === 'lte') return a <= c;
  return a < c;
}

/**
 * `query`: a case-insensitive substring of the full name, email, company name or phone (digits
 * compared when the query is a phone-like string). HighLevel runs it against the location's
 * "searchable" fields; these four are the default set (guess).
 */
export function queryPredicate(query: string | undefined): Predicate {
  const q = (query ?? '').trim().toLowerCase();
  if (!q) return () => true;
  const digits = /^[\d\s()+.-]+$/.test(q) ? phoneDigits(q) : '';
  return (d) =>
    (typeof d.fullNameLowerCase === 'string' && d.fullNameLowerCase.includes(q)) ||
    (typeof d.emailLowerCase === 'string' && d.emailLowerCase.includes(q)) ||
    (typeof d.companyName === 'string' && d.companyName.toLowerCase().includes(q)) ||
    (typeof d.phone === 'string' && (d.phone.toLowerCase().includes(q) || (digits.length >= 3 && phoneDigits(d.phone).includes(digits))));
}
