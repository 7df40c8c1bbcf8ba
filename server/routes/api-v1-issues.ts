// The REST API's words for what zod refuses: one error map applied to every /api/v1 schema (and
// to the contact model's check of a write), so that every field is said to be wrong the same way,
// "must be a string", "must be at most 200 characters", rather than in zod's own phrases ("Invalid
// input: expected string, received number"). A message a schema gives itself still wins.
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { z } from 'zod';

const TYPES: Record<string, string> = {
  string: 'must be a string',
  number: 'must be a number',
  int: 'must be a whole number',
  bigint: 'must be a whole number',
  boolean: 'must be true or false',
  array: 'must be a list',
  object: 'must be a JSON object',
  record: 'must be a JSON object',
  null: 'must be null',
};

/** "2026-12-07" alone is a date: a time and a time zone must come with it. */
export const DATE_TIME = 'must be a date-time with a time and a time zone, e.g. 2026-12-07T09:30:00Z';

const FORMATS: Record<string, string> = {
  datetime: DATE_TIME,
  date: 'must be a date as YYYY-MM-DD',
  email: 'must be an email address',
  url: 'must be a URL',
  regex: 'is not in the expected format',
};

const quoted = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(', ');
const sizeOf = (origin: string, n: number | bigint) => (origin === 'string' ? `${n} character${n === 1 ? '' : 's'}` : `${n} item${n === 1 ? '' : 's'}`);
const counted = (origin: string) => origin === 'string' || origin === 'array' || origin === 'set';

/** The API's message for a zod issue; undefined leaves it to zod (never reached: every code is named). */
export function apiIssueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'is required' : (TYPES[issue.expected] ?? `must be ${issue.expected}`);
    case 'too_big':
      if (counted(issue.origin)) return `must ${issue.origin === 'string' ? 'be at most' : 'have at most'} ${sizeOf(issue.origin, issue.maximum)}`;
      return issue.inclusive === false ? `must be less than ${issue.maximum}` : `must be at most ${issue.maximum}`;
    case 'too_small':
      if (counted(issue.origin)) return Number(issue.minimum) === 1 ? 'must not be empty' : `must ${issue.origin === 'string' ? 'be at least' : 'have at least'} ${sizeOf(issue.origin, issue.minimum)}`;
      return issue.inclusive === false ? `must be more than ${issue.minimum}` : `must be at least ${issue.minimum}`;
    case 'invalid_value': {
      const values = issue.values;
      if (values.length === 2 && values.includes('true') && values.includes('false')) return 'must be true or false';
      return values.length === 1 ? `must be ${quoted(values)}` : `must be one of ${quoted(values)}`;
    }
    case 'invalid_format':
      return FORMATS[issue.format] ?? `must be a valid ${issue.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'unrecognized_keys':
      return `unknown ${issue.keys.length === 1 ? 'property' : 'properties'} ${quoted(issue.keys)}`;
    case 'invalid_key':
      // The key schema's own words (QA: an empty custom field name was "not a valid name here").
      return issue.issues[0]?.message ?? 'is not a valid name here';
    case 'invalid_element':
      return 'holds a value that is not valid';
    case 'invalid_union':
      return 'is none of the forms it may take';
    case 'custom':
      return 'is not valid';
    default:
      return undefined;
  }
}

/**
 * `["tags", 0]` → "tags[0]"; `["address", "city"]` → "address.city"; a name that would not read as
 * one (empty, or with control characters: a custom field's) in JSON, `customFields[""]`.
 */
export function issuePath(path: readonly PropertyKey[]): string {
  const unreadable = (p: string) => p === '' || /[\u0000-\u001F\u007F]/.test(p);
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : typeof p === 'string' && unreadable(p) ? `[${JSON.stringify(p)}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/**
 * Fastify's validator for the API's zod schemas: fastify-type-provider-zod's, with the API's
 * messages, and each issue's path kept as it is (validationMessage in api-v1.ts words it).
 */
export const apiValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema }) =>
  (data) => {
    const result = schema.safeParse(data, { error: apiIssueMessage });
    if (result.success) return { value: result.data };
    const issues: FastifySchemaValidationError[] = result.error.issues.map(({ code, path, message, ...rest }) => ({
      keyword: code,
      instancePath: `/${path.join('/')}`,
      schemaPath: `#/${path.join('/')}/${code}`,
      message,
      params: { ...rest, path },
    }));
    return { error: issues };
  };
