// Request schemas of the /__emulator control API: strict (unknown keys are errors) so a typo in a
// test's setup fails loudly instead of being ignored.
import { z } from 'zod';
import { CUSTOM_FIELD_DATA_TYPES, CUSTOM_FIELD_MODELS } from '../custom-fields.ts';

/** A control-API error, rendered as `{ error }`. */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Parses or throws a 400 naming every offending field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const text = result.error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
  throw new ControlError(400, text);
}

const id = z.string().min(1);
const count = z.number().int().positive();
const ms = z.number().int().nonnegative();

export const ConfigPatch = z
  .strictObject({
    rateLimit: z.strictObject({ burstMax: count, burstWindowMs: count, dailyMax: count }).partial(),
    accessTokenTtlSec: count,
    refreshTokenTtlSec: count,
    authCodeTtlSec: count,
    searchLagMs: ms,
    searchLagJitterMs: ms,
    webhookRetryIntervalMs: ms,
    webhookMaxRetries: z.number().int().nonnegative(),
    webhookTimeoutMs: count,
    webhookConcurrency: count,
  })
  .partial();

export const CompanyCreate = z.strictObject({ name: id, whitelabelDomain: id.optional() });

const locationDetails = {
  timezone: id.optional(),
  email: z.string().optional(),
  phone: z.string().optional(),
  address: z.string().optional(),
  city: z.string().optional(),
  state: z.string().optional(),
  country: z.string().optional(),
  postalCode: z.string().optional(),
  website: z.string().optional(),
  allowDuplicateContact: z.boolean().optional(),
};

export const ContactSeed = z.strictObject({
  count: z.number().int().min(1).max(100_000),
  /** Also answer each seeded contact's ContactUpdate payload, as HighLevel would send it on an edit (load generators). */
  payloads: z.boolean().optional(),
});

export const LocationCreate = z.strictObject({
  name: id,
  companyId: id.optional(),
  companyName: id.optional(),
  ...locationDetails,
});

export const LocationPatch = z.strictObject({
  name: id.optional(),
  active: z.boolean().optional(),
  ...locationDetails,
  allowDuplicateOpportunity: z.boolean().optional(),
  allowFacebookNameMerge: z.boolean().optional(),
  disableContactTimezone: z.boolean().optional(),
});

/**
 * One custom field definition, in CustomFieldSchema's terms (id, locationId and, unless given,
 * fieldKey `<model>.<snake_case name>` are the emulator's to set).
 */
const CustomFieldDefinition = z.strictObject({
  name: id,
  dataType: z.enum(CUSTOM_FIELD_DATA_TYPES),
  model: z.enum(CUSTOM_FIELD_MODELS).optional(),
  placeholder: z.string().optional(),
  position: z.number().optional(),
  picklistOptions: z.array(z.string()).optional(),
  isMultiFileAllowed: z.boolean().optional(),
  maxFileLimit: count.optional(),
  fieldKey: id.optional(),
});

/** One definition, a list of them, or `{ customFields: [...] }` as the answer has it; read as a list. */
export const CustomFieldsCreate = z.preprocess(
  (value) => {
    if (Array.isArray(value)) return value;
    const wrapped = typeof value === 'object' && value !== null && Object.keys(value).length === 1 && 'customFields' in value;
    return wrapped ? (value as { customFields: unknown }).customFields : [value];
  },
  z.array(CustomFieldDefinition).min(1),
);

const userFields = {
  firstName: z.string(),
  lastName: z.string(),
  email: z.email(),
  phone: z.string().optional(),
  type: z.enum(['agency', 'account']),
  role: z.enum(['admin', 'user']),
  locationIds: z.array(id),
};

export const UserCreate = z.strictObject({ companyId: id, ...userFields, locationIds: userFields.locationIds.default([]) });

export const UserPatch = z.strictObject({ ...userFields, deactivated: z.boolean() }).partial();

const appFields = {
  name: id,
  redirectUris: z.array(z.url()),
  webhookUrl: z.url().optional(),
  customPageUrl: z.url().optional(),
  scopes: z.array(id),
  sharedSecret: id.optional(),
  distribution: z.enum(['agency', 'location', 'both']).optional(),
};

export const AppCreate = z.strictObject(appFields);

export const AppPatch = z
  .strictObject({ ...appFields, webhookUrl: z.url().nullable(), customPageUrl: z.url().nullable() })
  .partial();

/** `{ appId, locationId }` (sub-account) or `{ appId, companyId, ... }` (agency). */
export const InstallTarget = z
  .strictObject({
    appId: id,
    locationId: id.optional(),
    companyId: id.optional(),
    locationIds: z.array(id).optional(),
    installToFutureLocations: z.boolean().optional(),
    userId: id.optional(),
  })
  .refine((t) => Boolean(t.locationId) !== Boolean(t.companyId), {
    message: 'give exactly one of locationId (sub-account install) or companyId (agency install)',
  })
  .refine((t) => !t.locationId || (t.locationIds === undefined && t.installToFutureLocations === undefined), {
    message: 'locationIds and installToFutureLocations apply to agency installs (companyId) only',
  });

export const FaultCreate = z
  .strictObject({
    method: z.string().optional(),
    path: z.string().optional(),
    locationId: id.optional(),
    status: z.number().int().min(100).max(599).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.unknown().optional(),
    delayMs: ms.optional(),
    drop: z.boolean().optional(),
    dropAfterHandling: z.boolean().optional(),
    times: count.optional(),
  })
  .refine((f) => f.status !== undefined || f.drop || f.dropAfterHandling || f.delayMs !== undefined, {
    message: 'a fault needs at least one of status, drop, dropAfterHandling or delayMs',
  })
  .refine((f) => !f.path?.startsWith('^') || validRegExp(f.path), { message: 'path is not a valid regular expression' });

export const FaultId = z.strictObject({ id: z.coerce.number().int().positive() });

export const WebhookFaultCreate = z
  .strictObject({
    mode: z.enum(['duplicate', 'drop', 'delay', 'reorder']),
    count: count.optional(),
    delayMs: ms.optional(),
    type: id.optional(),
  })
  .refine((f) => f.mode !== 'delay' || f.delayMs !== undefined, { message: "mode 'delay' needs delayMs" });

export const RequestsQuery = z.object({
  locationId: id.optional(),
  path: z.string().optional(),
  method: z.string().optional(),
  since: z.coerce.number().int().nonnegative().optional(),
});

export const WebhooksQuery = z.object({ appId: id.optional(), type: id.optional(), webhookId: id.optional() });

export const SsoQuery = z.object({ appId: id, userId: id, locationId: id });

function validRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}
