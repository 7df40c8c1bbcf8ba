// One location's HighLevel contacts and users API (CONTRACT §3, §4): every call passes the budget
// gate first (never sleeping: a refusal is a DeferredError saying when to come back), uses the
// location's token (refreshed once on "Invalid JWT"), reports its answer to the gate, and returns
// zod-checked shapes. HighLevel's quirks are absorbed here: the duplicate 400 is an answer, and the
// "Contact with id … not found" 400 is a null.
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import {
  contactResponseSchema,
  highLevelContactSchema,
  searchContactsResponseSchema,
  updateContactResponseSchema,
  type CreateContactBody,
  type HighLevelContact,
  type UpdateContactBody,
} from './contact-mapping.ts';
import { HighLevelError, request, type HighLevelResponse, type RequestOptions } from './http.ts';
import type { HighLevelEndpoints } from './oauth.ts';
import type { RateBudget } from './rate-budget.ts';
import { TransientTokenError } from './token-provider.ts';

export type DeferReason = 'rate_limited' | 'daily' | 'burst' | 'token';

/** Not now: the budget (or a 429, or a token refresh backing off) says come back at `retryAt` (clock ms). */
export class DeferredError extends Error {
  override readonly name = 'DeferredError';
  constructor(
    readonly retryAt: number,
    readonly reason: DeferReason,
    message = `HighLevel calls deferred (${reason}) until ${new Date(retryAt).toISOString()}`,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What the API needs of the token vault; `refreshLocationToken` forces a new token when the provider offers it. */
export interface LocationTokenSource {
  locationToken(locationId: string): Promise<string>;
  refreshLocationToken?(locationId: string, rejected: string): Promise<string>;
}

export interface LocationApiOptions {
  endpoints: HighLevelEndpoints;
  tokens: LocationTokenSource;
  budget: RateBudget;
  clock: Clock;
  locationId: string;
  /** Background work: the share of each burst window left to the continuous loop (RateBudget.reserve). */
  keepShare?: number;
}

export interface HighLevelUser {
  id: string;
  email: string;
  name: string;
  active: boolean;
  deleted: boolean;
  /** `roles.role` (admin, user); null when HighLevel gave none. */
  role: string | null;
}

/** One of the location's contact custom fields, as HighLevel defines it (CustomFieldSchema). */
export interface HighLevelCustomField {
  id: string;
  name: string;
  /** `contact.<key>`; what writes may address the field by instead of its id. */
  fieldKey: string | null;
  /** TEXT, LARGE_TEXT, NUMERICAL, MONETORY, SINGLE_OPTIONS, MULTIPLE_OPTIONS, CHECKBOX, … upper case; null when HighLevel gave none. */
  dataType: string | null;
  /** The choices of an option field (empty for others). */
  options: string[];
  position: number | null;
}

export type SearchFilter =
  | { field: string; operator: string; value?: unknown }
  | { group: 'AND' | 'OR'; filters: SearchFilter[] };
export interface SearchSort {
  field: string;
  direction: 'asc' | 'desc';
}
export interface SearchParams {
  filters?: SearchFilter[];
  sort?: SearchSort[];
  pageLimit: number;
  searchAfter?: Array<string | number>;
  query?: string;
}
export type SearchedContact = HighLevelContact & { searchAfter?: Array<string | number> };

export type CreateResult =
  | { contact: HighLevelContact }
  | { duplicate: { contactId: string; matchingField: string | undefined } };

export interface LocationApi {
  readonly locationId: string;
  getContact(id: string): Promise<HighLevelContact | null>;
  createContact(body: CreateContactBody): Promise<CreateResult>;
  updateContact(id: string, body: UpdateContactBody): Promise<HighLevelContact>;
  deleteContact(id: string): Promise<void>;
  addTags(id: string, tags: string[]): Promise<string[]>;
  removeTags(id: string, tags: string[]): Promise<string[]>;
  searchContacts(params: SearchParams): Promise<{ contacts: SearchedContact[]; total: number }>;
  findDuplicate(by: { email?: string | null; phone?: string | null }): Promise<HighLevelContact | null>;
  listUsers(): Promise<HighLevelUser[]>;
  /** The location's contact custom fields (scope locations/customFields.readonly). */
  listCustomFields(): Promise<HighLevelCustomField[]>;
  /**
   * Not a request: when the location's gate would let `count` requests go one after the other
   * (undefined: now). For work that needs a read and then writes (RateBudget.whenRoom).
   */
  whenRoom(count: number): number | undefined;
}

const tagsResponseSchema = z.looseObject({ tags: z.array(z.string()).optional() });
const duplicateResponseSchema = z.looseObject({ contact: highLevelContactSchema.nullish() });
const duplicateErrorSchema = z.looseObject({
  meta: z.looseObject({ contactId: z.string().min(1), matchingField: z.string().optional() }),
});
const usersResponseSchema = z.looseObject({
  users: z.array(
    z.looseObject({
      id: z.string().min(1),
      name: z.string().nullish(),
      firstName: z.string().nullish(),
      lastName: z.string().nullish(),
      email: z.string().nullish(),
      deleted: z.boolean().nullish(),
      deactivated: z.boolean().nullish(),
      roles: z.looseObject({ role: z.string().nullish() }).nullish(),
    }),
  ),
});
const customFieldsResponseSchema = z.looseObject({
  customFields: z.array(
    z.looseObject({
      id: z.string().min(1),
      name: z.string().nullish(),
      fieldKey: z.string().nullish(),
      dataType: z.string().nullish(),
      position: z.number().nullish(),
      picklistOptions: z.array(z.unknown()).nullish(),
      model: z.string().nullish(),
    }),
  ),
});

const NOT_FOUND = /contact with id .* not found/i;
const DUPLICATE = /does not allow duplicated contacts/i;
/** An access token HighLevel no longer accepts (expired early, revoked): worth one fresh token. */
const STALE_TOKEN = /invalid jwt|invalid token|access token is invalid/i;

/**
 * HighLevel's refusal of a write that would duplicate another contact (CONTRACT §3.6), with the
 * contact it names when its answer does; undefined for any other error.
 */
export function duplicateRefusal(err: unknown): { contactId?: string; contactName?: string; matchingField?: string } | undefined {
  if (!(err instanceof HighLevelError && err.kind === 'http' && err.status === 400 && DUPLICATE.test(err.message))) return undefined;
  const meta = duplicateMetaSchema.safeParse(err.body);
  return meta.success ? (meta.data.meta ?? {}) : {};
}

const duplicateMetaSchema = z.looseObject({
  meta: z.looseObject({ contactId: z.string().optional(), contactName: z.string().optional(), matchingField: z.string().optional() }).optional(),
});

export function isContactNotFound(err: unknown): boolean {
  return err instanceof HighLevelError && err.kind === 'http' && (err.status === 404 || (err.status === 400 && NOT_FOUND.test(err.message)));
}

export function createLocationApi(opts: LocationApiOptions): LocationApi {
  const { endpoints, tokens, budget, clock, locationId } = opts;

  async function token(rejected?: string): Promise<string> {
    try {
      if (rejected !== undefined && tokens.refreshLocationToken) return await tokens.refreshLocationToken(locationId, rejected);
      return await tokens.locationToken(locationId);
    } catch (err) {
      if (err instanceof TransientTokenError) throw new DeferredError(err.retryAt, 'token', err.message, { cause: err });
      throw err;
    }
  }

  /** One request through the gate; the token is fetched before reserving so a token failure costs no slot. */
  async function once(req: Omit<RequestOptions, 'token'>, accessToken: string): Promise<HighLevelResponse> {
    const slot = budget.reserve(clock.now(), opts.keepShare ? { keepShare: opts.keepShare } : {});
    if (!slot.ok) throw new DeferredError(slot.retryAt, slot.reason);
    let res: HighLevelResponse;
    try {
      res = await request(endpoints, { ...req, token: accessToken, timeoutMs: endpoints.timeoutMs, now: clock.now() });
    } catch (err) {
      if (!(err instanceof HighLevelError)) {
        budget.settle(clock.now());
        throw err;
      }
      if (err.kind === 'network' || err.kind === 'timeout') budget.settle(clock.now());
      else if (err.status === 429) {
        const retryAt = budget.onRateLimited(err, clock.now());
        // A 429 that spends the day (HighLevel says none is left): the daily limit, said as such at
        // once, not as a request to slow down first noticed a minute later (QA).
        const reason = budget.snapshot(clock.now()).dailyRemaining === 0 ? 'daily' : 'rate_limited';
        throw new DeferredError(retryAt, reason, `HighLevel answered 429 for ${err.request ?? req.path}`, { cause: err });
      } else budget.observe(err.rateLimit, clock.now());
      throw err;
    }
    budget.observe(res.headers, clock.now());
    return res;
  }

  async function send(req: Omit<RequestOptions, 'token'>): Promise<unknown> {
    const first = await token();
    try {
      return (await once(req, first)).body;
    } catch (err) {
      if (!(err instanceof HighLevelError && err.kind === 'http' && err.status === 401 && STALE_TOKEN.test(err.message))) throw err;
      // Once only: a second rejection of a fresh token is not a stale token, and must surface.
      return (await once(req, await token(first))).body;
    }
  }

  function parse<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
    const r = schema.safeParse(body);
    if (r.success) return r.data;
    throw new HighLevelError(200, `${what}: unexpected response shape: ${r.error.issues[0]?.message ?? 'invalid'}`, {
      kind: 'invalid_response',
      body,
      request: what,
    });
  }

  const enc = encodeURIComponent;

  async function getContact(id: string): Promise<HighLevelContact | null> {
    try {
      const body = await send({ method: 'GET', path: `/contacts/${enc(id)}` });
      return parse(contactResponseSchema, body, 'GET /contacts/{id}').contact;
    } catch (err) {
      if (isContactNotFound(err)) return null;
      throw err;
    }
  }

  async function createContact(body: CreateContactBody): Promise<CreateResult> {
    try {
      const res = await send({ method: 'POST', path: '/contacts/', json: body });
      return { contact: parse(contactResponseSchema, res, 'POST /contacts/').contact };
    } catch (err) {
      if (err instanceof HighLevelError && err.kind === 'http' && err.status === 400 && DUPLICATE.test(err.message)) {
        const dup = duplicateErrorSchema.safeParse(err.body);
        if (dup.success) return { duplicate: { contactId: dup.data.meta.contactId, matchingField: dup.data.meta.matchingField } };
      }
      throw err;
    }
  }

  async function updateContact(id: string, body: UpdateContactBody): Promise<HighLevelContact> {
    const res = parse(updateContactResponseSchema, await send({ method: 'PUT', path: `/contacts/${enc(id)}`, json: body }), 'PUT /contacts/{id}');
    if (res.contact) return res.contact;
    // The spec's response carries the contact; should it ever be missing, read it back.
    const read = await getContact(id);
    if (!read) throw new HighLevelError(400, `Contact with id ${id} not found`, { kind: 'http', request: 'GET /contacts/{id}' });
    return read;
  }

  async function deleteContact(id: string): Promise<void> {
    try {
      await send({ method: 'DELETE', path: `/contacts/${enc(id)}` });
    } catch (err) {
      // Already gone is what we wanted.
      if (!isContactNotFound(err)) throw err;
    }
  }

  async function tagCall(method: 'POST' | 'DELETE', id: string, tags: string[]): Promise<string[]> {
    const body = await send({ method, path: `/contacts/${enc(id)}/tags`, json: { tags } });
    return parse(tagsResponseSchema, body, `${method} /contacts/{id}/tags`).tags ?? [];
  }

  async function searchContacts(params: SearchParams): Promise<{ contacts: SearchedContact[]; total: number }> {
    const json: Record<string, unknown> = { locationId, pageLimit: params.pageLimit };
    if (params.filters?.length) json.filters = params.filters;
    if (params.sort?.length) json.sort = params.sort;
    if (params.searchAfter?.length) json.searchAfter = params.searchAfter;
    if (params.query) json.query = params.query;
    const res = parse(searchContactsResponseSchema, await send({ method: 'POST', path: '/contacts/search', json }), 'POST /contacts/search');
    return { contacts: res.contacts, total: res.total };
  }

  async function duplicateBy(query: { email?: string; number?: string }): Promise<HighLevelContact | null> {
    const body = await send({ method: 'GET', path: '/contacts/search/duplicate', query: { locationId, ...query } });
    return parse(duplicateResponseSchema, body, 'GET /contacts/search/duplicate').contact ?? null;
  }

  /**
   * Email first, then phone, whatever the location's matching order. One request asks with both:
   * nothing found, or a contact with this email, is the answer. A contact found by its phone alone
   * may hide an email match (a location that matches phone first), so the email is then asked on
   * its own. Should HighLevel check only one field when asked with both, a missed phone match
   * still surfaces: a create then answers with the duplicate it names.
   */
  async function findDuplicate(by: { email?: string | null; phone?: string | null }): Promise<HighLevelContact | null> {
    const email = by.email || undefined;
    const number = by.phone || undefined;
    if (!email && !number) return null;
    const found = await duplicateBy({ ...(email ? { email } : {}), ...(number ? { number } : {}) });
    if (!found || !email || !number || found.email?.trim().toLowerCase() === email.trim().toLowerCase()) return found;
    return (await duplicateBy({ email })) ?? found;
  }

  async function listUsers(): Promise<HighLevelUser[]> {
    const body = await send({ method: 'GET', path: '/users/', query: { locationId } });
    return parse(usersResponseSchema, body, 'GET /users/').users.map((u) => ({
      id: u.id,
      email: u.email ?? '',
      name: u.name?.trim() || [u.firstName, u.lastName].filter(Boolean).join(' ').trim(),
      active: u.deactivated !== true && u.deleted !== true,
      deleted: u.deleted === true,
      role: u.roles?.role?.trim() || null,
    }));
  }

  async function listCustomFields(): Promise<HighLevelCustomField[]> {
    const body = await send({ method: 'GET', path: `/locations/${enc(locationId)}/customFields`, query: { model: 'contact' } });
    return parse(customFieldsResponseSchema, body, 'GET /locations/{locationId}/customFields')
      .customFields.filter((f) => (f.model ?? 'contact') === 'contact')
      .map((f) => ({
        id: f.id,
        name: f.name?.trim() || f.id,
        fieldKey: f.fieldKey?.trim() || null,
        dataType: f.dataType?.trim().toUpperCase() || null,
        // Options are strings in the spec; anything else in the list is not a choice a write can name.
        options: (f.picklistOptions ?? []).filter((o): o is string => typeof o === 'string'),
        position: f.position ?? null,
      }));
  }

  return {
    locationId,
    getContact,
    createContact,
    updateContact,
    deleteContact,
    addTags: (id, tags) => tagCall('POST', id, tags),
    removeTags: (id, tags) => tagCall('DELETE', id, tags),
    searchContacts,
    findDuplicate,
    listUsers,
    listCustomFields,
    whenRoom: (count) => budget.whenRoom(count, clock.now(), opts.keepShare ? { keepShare: opts.keepShare } : {}),
  };
}
