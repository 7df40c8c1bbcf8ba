// REST API: the location's contact custom fields, and the check of the custom field values a
// contact write sends. HighLevel defines the fields (the sync loop lists them, db/custom-fields.ts);
// a value for a field the location does not have, or of the wrong kind, would never reach HighLevel,
// or would be refused there and hold the contact's other changes back with it. So such a write is
// refused here, with the reason, while the client is still there to hear it.
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { getSyncSettings } from '../../db/sync-settings.ts';
import { customFieldList, type CustomFieldDefinition, type CustomFieldList } from '../../db/custom-fields.ts';
import type { CustomFieldValue } from '../sync/contact-model.ts';
import { AppError } from '../errors.ts';
import { apiSchemas, described, errors, query } from './api-v1-schemas.ts';
import { apiTenant, type ApiInstance, type ApiV1Deps } from './api-v1.ts';
import { tenant } from './tenant.ts';

/** The loop lists a location's fields again at most this often on account of refused writes. */
const RELIST_AFTER_MS = 60_000;

export const customFieldResponse = z
  .object({
    id: z.string().describe('HighLevel’s id of the field: the key of `customFields` in a contact.'),
    name: z.string(),
    key: z.string().nullable().describe('HighLevel’s field key, e.g. "contact.lead_score"; writes may name the field by it (with or without "contact.").'),
    dataType: z.string().nullable().describe('HighLevel’s type: TEXT, LARGE_TEXT, NUMERICAL, MONETORY, SINGLE_OPTIONS, MULTIPLE_OPTIONS, CHECKBOX, RADIO, DATE, PHONE, EMAIL, FILE_UPLOAD, …'),
    options: z.array(z.string()).describe('The choices of an option field (SINGLE_OPTIONS, RADIO, MULTIPLE_OPTIONS, CHECKBOX); empty for others.'),
    writable: z.boolean().describe('False for FILE_UPLOAD, SIGNATURE and TEXTBOX_LIST fields: their values are not synced, and a write of one is refused.'),
  })
  .register(apiSchemas, { id: 'CustomField' });

const customFieldListResponse = z.object({
  customFields: z.array(customFieldResponse),
  listedAt: z.string().nullable().describe('When Tandem last listed them in HighLevel; null: never (writes are then not checked).'),
  problem: z.string().nullable().describe('Why the latest listing failed, in plain words; null when it succeeded.'),
});

const NUMBER_TYPES = new Set(['NUMERICAL', 'MONETORY', 'MONETARY']);
const ONE_OF_TYPES = new Set(['SINGLE_OPTIONS', 'RADIO', 'DROPDOWN']);
const MANY_OF_TYPES = new Set(['MULTIPLE_OPTIONS', 'CHECKBOX']);
const TEXT_TYPES = new Set(['TEXT', 'LARGE_TEXT', 'PHONE', 'EMAIL', 'DATE']);
/** Types whose values are objects (files, signatures, lists of labelled texts): Tandem does not hold them. */
const UNSYNCED_TYPES = new Set(['FILE_UPLOAD', 'SIGNATURE', 'TEXTBOX_LIST']);

/** A value as a write may send it: a list may hold numbers, taken as their text (an option "2"). */
export type CustomFieldInput = CustomFieldValue | number[];
type Input = Record<string, CustomFieldInput | null>;
type Output = Record<string, CustomFieldValue | null>;
type Held = Readonly<Record<string, CustomFieldValue>>;

export type CustomFieldCheck =
  | { ok: true; values: Output }
  | { ok: false; unknown: string[]; problems: string[] };

const isBlank = (v: string | number) => typeof v === 'string' && v.trim() === '';
const isEmpty = (v: CustomFieldInput | null) => v === null || (Array.isArray(v) ? v.every(isBlank) : isBlank(v));

/** A value as Tandem holds it: a list's numbers as their text. */
const asHeld = (v: CustomFieldInput): CustomFieldValue => (Array.isArray(v) ? v.map(String) : v);

/** The field `name` names: its id, else its key (with or without "contact.", any case). */
function definitionNamed(definitions: readonly CustomFieldDefinition[], name: string): CustomFieldDefinition | undefined {
  const byId = definitions.find((d) => d.id === name);
  if (byId) return byId;
  const key = name.trim().toLowerCase();
  return definitions.find((d) => d.fieldKey !== null && (d.fieldKey.toLowerCase() === key || d.fieldKey.toLowerCase() === `contact.${key}`));
}

const quoted = (values: readonly (string | number)[]) => values.map((v) => JSON.stringify(v)).join(', ');

/** The option as the field spells it (exactly, else in another case); undefined when it is none. */
function choice(d: CustomFieldDefinition, given: string): string | undefined {
  const g = given.trim();
  return d.options.find((o) => o === g) ?? d.options.find((o) => o.toLowerCase() === g.toLowerCase());
}

/** Digits a number keeps exactly (a double's 15 significant decimal digits). */
const EXACT_DIGITS = 15;

/** A number written as text: digits, an optional sign and decimals. */
const NUMBER_TEXT = /^\s*-?\d+(\.\d+)?\s*$/;

/**
 * Whether `given` has at most EXACT_DIGITS significant digits, so that no digit is lost on the
 * way (a double keeps 15). A number is counted as the shortest text that reads back as it: the
 * JSON parser has already rounded a longer one, so it is refused for what it would have become.
 */
function keptExactly(given: number | string): boolean {
  const text = typeof given === 'number' ? given.toExponential().split('e')[0]! : given.trim();
  const significant = text.replace(/[-.]/g, '').replace(/^0+/, '').replace(/0+$/, '');
  return significant.length <= EXACT_DIGITS;
}

export const isWritable = (d: Pick<CustomFieldDefinition, 'dataType'>) => !UNSYNCED_TYPES.has(d.dataType ?? '');
const hasOptions = (d: Pick<CustomFieldDefinition, 'dataType'>) => ONE_OF_TYPES.has(d.dataType ?? '') || MANY_OF_TYPES.has(d.dataType ?? '');

/** `value` as the field takes it, or a problem (a sentence about the value) when it cannot. */
function valueFor(d: CustomFieldDefinition, value: CustomFieldInput): { value: CustomFieldValue } | { problem: string } {
  const type = d.dataType ?? '';
  if (UNSYNCED_TYPES.has(type)) return { problem: `is a ${type} field, which Tandem does not sync` };
  if (NUMBER_TYPES.has(type)) {
    const given = typeof value === 'number' || (typeof value === 'string' && NUMBER_TEXT.test(value)) ? value : undefined;
    if (given === undefined) return { problem: `is a ${type} field: send a number` };
    const n = Number(given);
    if (!Number.isFinite(n)) return { problem: `is a ${type} field: send a number` };
    return keptExactly(given) ? { value: n } : { problem: `is a ${type} field: ${JSON.stringify(given)} has more than ${EXACT_DIGITS} significant digits, more than a number keeps exactly` };
  }
  if (ONE_OF_TYPES.has(type) || MANY_OF_TYPES.has(type)) {
    const many = MANY_OF_TYPES.has(type);
    const kind = `is a ${type} field: send ${many ? 'a list of its options' : 'one of its options'}${d.options.length ? ` (${quoted(d.options)})` : ''}`;
    if (!many && Array.isArray(value)) return { problem: kind };
    const given = (Array.isArray(value) ? value : [value]).filter((v) => !isBlank(v));
    // A number is taken as its text where that is an option ("2" of "1", "2", "10"), alone or in a list.
    if (d.options.length === 0) {
      if (given.some((v) => typeof v === 'number')) return { problem: kind };
      return { value: many ? (given as string[]) : (given[0] as string) };
    }
    const spelled = given.map((g) => choice(d, String(g)));
    const strangers = given.filter((_, i) => spelled[i] === undefined);
    if (strangers.length) return { problem: `has no option ${quoted(strangers)}; its options are ${quoted(d.options)}` };
    return { value: many ? [...new Set(spelled as string[])] : spelled[0]! };
  }
  if (TEXT_TYPES.has(type)) return typeof value === 'string' ? { value: value.trim() } : { problem: `is a ${type} field: send text` };
  return { value: asHeld(value) };
}

/**
 * The custom field values of a write, checked against the location's fields and keyed by their ids
 * (a field may be named by its key). Not checked while the fields have never been listed (an
 * install whose token lacks the scope): the values are then taken as sent, as before Tandem knew
 * of definitions. An empty value (null, "", []) clears the field, of whatever type, and of no
 * field HighLevel defines too: a value held for a field since deleted in HighLevel can be cleared.
 * `held`: the contact's values (an update); a field sent with the value it holds is not checked,
 * whatever it is named by (a value HighLevel gave may not be one the field takes now). `at`: where
 * the values are in the request, as problems name them ("body.customFields" in the REST API).
 */
export function checkCustomFields(list: CustomFieldList, input: Input, held: Held = {}, at = 'customFields'): CustomFieldCheck {
  if (list.listedAt === null) return { ok: true, values: Object.fromEntries(Object.entries(input).map(([name, v]) => [name, v === null ? null : asHeld(v)])) };
  const values: Output = {};
  const unknown: string[] = [];
  const problems: string[] = [];
  const namedBy = new Map<string, string>();
  for (const [name, value] of Object.entries(input)) {
    const d = definitionNamed(list.definitions, name);
    if (!d) {
      // A value the contact holds under this id, of a field HighLevel has since deleted: cleared.
      if (isEmpty(value) && held[name] !== undefined) values[name] = null;
      else unknown.push(name);
      continue;
    }
    const before = namedBy.get(d.id);
    if (before !== undefined) {
      problems.push(`${at}.${name}: names the same field as ${at}.${before} (${JSON.stringify(d.name)}); send it once`);
      continue;
    }
    namedBy.set(d.id, name);
    if (isEmpty(value)) {
      values[d.id] = null;
      continue;
    }
    const holds = held[d.id];
    if (holds !== undefined && isDeepStrictEqual(holds, value)) {
      values[d.id] = holds;
      continue;
    }
    const checked = valueFor(d, value!);
    if ('problem' in checked) problems.push(`${at}.${name}: ${JSON.stringify(d.name)} ${checked.problem}`);
    else values[d.id] = checked.value;
  }
  return unknown.length || problems.length ? { ok: false, unknown, problems } : { ok: true, values };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Where a contact write's custom field values are in its request. */
const IN_BODY = 'body.customFields';

/**
 * What contact writes call: the values keyed by field id, or a 400 that says what is wrong. A field
 * the location does not have may have been made in HighLevel since the last listing: the loop is
 * asked to list them again, a minute after the last listing at the soonest (RELIST_AFTER_MS: a
 * client retrying a bad write cannot spend the location's HighLevel budget), and the answer says
 * when a retry can succeed. `held`: the contact's values, on an update (checkCustomFields).
 */
export function customFieldChecker(deps: Pick<ApiV1Deps, 'db' | 'clock' | 'customFieldsChanged'>): (locationId: string, input: Input, held?: Held) => Output {
  /** Per location, when the listing a refused write asked for is due (or was). */
  const relistAt = new Map<string, number>();
  return (locationId, input, held) => {
    if (Object.keys(input).length === 0) return {};
    const list = customFieldList(deps.db, locationId);
    // Named from the body's root, as the API's other messages name a field (QA: "customFields.x"
    // here, "body.customFields.x" from the schema).
    const checked = checkCustomFields(list, input, held, IN_BODY);
    if (checked.ok) return checked.values;
    const parts = [...checked.problems];
    let code = 'invalid_request';
    if (checked.unknown.length) {
      code = 'unknown_custom_field';
      const names = checked.unknown.map((n) => `${IN_BODY}.${n}`).join(', ');
      parts.unshift(
        `${names}: ${checked.unknown.length === 1 ? 'not a custom field' : 'not custom fields'} of this location as HighLevel listed them at ${iso(list.listedAt!)} (GET /api/v1/custom-fields lists them; a field is named by its id or its key)` +
          relisting(locationId, list),
      );
    }
    throw new AppError(400, code, `Invalid request: ${parts.join('; ')}.`);
  };

  /** Asks for a listing (unless one is due already) and says, as the end of a sentence, when it comes. */
  function relisting(locationId: string, list: CustomFieldList): string {
    if (!deps.customFieldsChanged) return '';
    // Refused for the token's scope: listing again is pointless until the location has a new
    // token, and the loop lists them once it has (server/sync/supervisor.ts).
    if (list.problemRefused) return `; Tandem cannot list them again until the sub-account is installed again: ${list.problem!.replace(/\.$/, '')}`;
    const now = deps.clock.now();
    // The latest attempt, whether it listed them or failed.
    const attempted = Math.max(list.listedAt ?? 0, list.problemAt ?? 0);
    let at = relistAt.get(locationId);
    // A listing asked for earlier and attempted since does not count.
    if (at === undefined || attempted >= at) {
      at = Math.max(now, attempted + RELIST_AFTER_MS);
      relistAt.set(locationId, at);
      deps.customFieldsChanged(locationId, at);
    }
    const failed = list.problem ? ` The latest listing failed: ${list.problem}` : '';
    if (getSyncSettings(deps.db, locationId).paused) {
      return `; sync is paused for this location, so Tandem lists them again when it is resumed.${failed}`.replace(/\.$/, '');
    }
    const when = at <= now ? 'now: a field just made in HighLevel can be written in a few seconds' : `at ${iso(at)} (a minute after the last listing at the soonest): a field made in HighLevel since can be written then`;
    return `; Tandem lists them again ${when}.${failed}`.replace(/\.$/, '');
  }
}

export function registerApiCustomFieldRoutes(api: ApiInstance, deps: ApiV1Deps): void {
  api.get(
    '/api/v1/custom-fields',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['custom fields'],
        operationId: 'listCustomFields',
        summary: 'List the location’s contact custom fields',
        description:
          'As HighLevel defines them, listed by Tandem every hour (and again soon after a write names a field it does not know). Contact writes are checked against them: an unknown field is refused with 400 `unknown_custom_field`, a value of the wrong kind with 400 `invalid_request`.',
        querystring: query({}),
        response: { 200: described('The fields, by their position in HighLevel, then by name.', customFieldListResponse), ...errors(400, 401) },
      },
    },
    async (req) => {
      const list = customFieldList(deps.db, apiTenant(req).locationId);
      const ordered = [...list.definitions].sort((a, b) => (a.position ?? Infinity) - (b.position ?? Infinity) || a.name.localeCompare(b.name));
      return {
        customFields: ordered.map((d) => ({ id: d.id, name: d.name, key: d.fieldKey, dataType: d.dataType, options: hasOptions(d) ? d.options : [], writable: isWritable(d) })),
        listedAt: list.listedAt === null ? null : iso(list.listedAt),
        problem: list.problem,
      };
    },
  );
}
