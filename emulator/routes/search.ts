// POST /contacts/search (CONTRACT §3.4) and the deprecated GET /contacts/ list (§3.5). Both read
// what search sees (emu.contactForSearch: writes appear after the configured searchLagMs).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteContext } from '../server.ts';
import { fail, ok, requireLocation, unprocessable } from '../http.ts';
import { compileFilters, queryPredicate, type Predicate } from '../contact-filters.ts';
import { searchPage, SORTABLE, type SortEntry } from '../contact-search.ts';
import { searchView } from '../contact-model.ts';

const READ = { scopes: ['contacts.readonly'], access: 'location' as const };
const SEARCH_KEYS = new Set(['locationId', 'page', 'pageLimit', 'searchAfter', 'filters', 'sort', 'query']);
const MAX_PAGE_LIMIT = 500;
const MAX_WINDOW = 10_000;
/** Guess: no `sort` means newest first (dateAdded desc); ties broken by id ascending. */
const DEFAULT_SORT: SortEntry[] = [{ field: 'dateAdded', direction: 'desc' }];

interface SearchBody {
  locationId: string;
  pageLimit: number;
  page?: number;
  searchAfter?: unknown[];
  sort: SortEntry[];
  filterKey: string;
  predicate: Predicate;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function parseSearchBody(raw: unknown): SearchBody {
  const body = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const messages: string[] = [];
  for (const k of Object.keys(body)) if (!SEARCH_KEYS.has(k)) messages.push(`property ${k} should not exist`);
  if (typeof body.locationId !== 'string' || !body.locationId) messages.push('locationId should not be empty', 'locationId must be a string');
  const { pageLimit, page, searchAfter, query } = body;
  if (pageLimit === undefined || pageLimit === null) messages.push('pageLimit should not be empty');
  else if (!isInt(pageLimit)) messages.push('pageLimit must be an integer number');
  else if (pageLimit < 1) messages.push('pageLimit must not be less than 1');
  else if (pageLimit > MAX_PAGE_LIMIT) messages.push(`pageLimit must not be greater than ${MAX_PAGE_LIMIT}`);
  if (page !== undefined) {
    if (!isInt(page)) messages.push('page must be an integer number');
    else if (page < 1) messages.push('page must not be less than 1');
    else if (isInt(pageLimit) && page * pageLimit > MAX_WINDOW) {
      messages.push(`page * pageLimit must not be greater than ${MAX_WINDOW}; use searchAfter to read further`);
    }
    if (searchAfter !== undefined) messages.push('page and searchAfter cannot be used together');
  }
  if (query !== undefined) {
    if (typeof query !== 'string') messages.push('query must be a string');
    else if (query.length > 75) messages.push('query must be shorter than or equal to 75 characters');
  }
  const sort = parseSort(body.sort, messages);
  if (searchAfter !== undefined) {
    if (!Array.isArray(searchAfter)) messages.push('searchAfter must be an array');
    else if (searchAfter.length !== sort.length + 1 || typeof searchAfter[searchAfter.length - 1] !== 'string') {
      messages.push(`searchAfter must hold ${sort.length + 1} values: the sort value(s) then the contact id, as returned in a contact's searchAfter`);
    }
  }
  const filterPredicate = compileFilters(body.filters, messages);
  if (messages.length) unprocessable(messages);
  const hasFilters = Array.isArray(body.filters) && body.filters.length > 0;
  const q = typeof query === 'string' ? query.trim() : '';
  const matchQuery = queryPredicate(q);
  return {
    locationId: body.locationId as string,
    pageLimit: pageLimit as number,
    ...(page !== undefined ? { page: page as number } : {}),
    ...(searchAfter !== undefined ? { searchAfter: searchAfter as unknown[] } : {}),
    sort,
    filterKey: hasFilters || q ? JSON.stringify([body.filters ?? [], q.toLowerCase()]) : '',
    predicate: (d) => filterPredicate(d) && matchQuery(d),
  };
}

function parseSort(raw: unknown, messages: string[]): SortEntry[] {
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) return DEFAULT_SORT;
  if (!Array.isArray(raw)) {
    messages.push('sort must be an array');
    return DEFAULT_SORT;
  }
  if (raw.length > 2) messages.push('sort must contain no more than 2 elements');
  const out: SortEntry[] = [];
  raw.slice(0, 2).forEach((s, i) => {
    const item = (typeof s === 'object' && s !== null ? s : {}) as Record<string, unknown>;
    for (const k of Object.keys(item)) if (k !== 'field' && k !== 'direction') messages.push(`property sort.${i}.${k} should not exist`);
    const field = item.field;
    const direction = item.direction ?? 'asc';
    if (typeof field !== 'string' || !SORTABLE.includes(field)) messages.push(`sort.${i}.field must be one of the following values: ${SORTABLE.join(', ')}`);
    if (direction !== 'asc' && direction !== 'desc') messages.push(`sort.${i}.direction must be one of the following values: asc, desc`);
    out.push({ field: field as string, direction: direction as SortEntry['direction'] });
  });
  return out;
}

export function registerSearchRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;

  app.post('/contacts/search', async (req, reply) => {
    const auth = ctx.auth(req, reply, READ);
    const raw = req.body as Record<string, unknown> | undefined;
    if (typeof raw?.locationId === 'string') requireLocation(emu, auth, raw.locationId);
    const body = parseSearchBody(raw);
    const result = searchPage(emu, {
      locationId: body.locationId,
      sort: body.sort,
      filterKey: body.filterKey,
      predicate: body.predicate,
      limit: body.pageLimit,
      ...(body.searchAfter ? { after: body.searchAfter } : { offset: ((body.page ?? 1) - 1) * body.pageLimit }),
    });
    return ok(reply, 200, {
      contacts: result.contacts.map((c) => searchView(c.doc, c.searchAfter)),
      total: result.total,
    });
  });

  // Deprecated list: newest first (dateAdded desc, guess: v1's documented default), cursor =
  // (startAfter = dateAdded epoch ms, startAfterId) of the last contact of the previous page.
  const legacyList = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = ctx.auth(req, reply, READ);
    const q = req.query as Record<string, string | undefined>;
    if (q.locationId) requireLocation(emu, auth, q.locationId);
    const messages: string[] = [];
    if (!q.locationId) messages.push('locationId should not be empty', 'locationId must be a string');
    const limit = q.limit === undefined ? 20 : Number(q.limit);
    if (!Number.isInteger(limit)) messages.push('limit must be an integer number');
    else if (limit < 1) messages.push('limit must not be less than 1');
    else if (limit > 100) messages.push('limit must not be greater than 100');
    if (q.startAfter !== undefined && !/^\d+$/.test(q.startAfter)) messages.push('startAfter must be a number conforming to the specified constraints');
    if (messages.length) unprocessable(messages);
    const locationId = q.locationId!;
    let after: unknown[] | undefined;
    if (q.startAfterId || q.startAfter) {
      const cursorDoc = q.startAfterId ? (emu.contactForSearch(q.startAfterId) ?? emu.contact(q.startAfterId)) : null;
      const ms = q.startAfter ? Number(q.startAfter) : cursorDoc ? Date.parse(cursorDoc.dateAdded) : undefined;
      if (ms === undefined) fail(400, `Contact with id ${q.startAfterId} not found`);
      // Without an id, everything added at exactly `startAfter` was on the previous page.
      after = [ms, q.startAfterId ?? '\uffff'];
    }
    const query = (q.query ?? '').trim();
    const result = searchPage(emu, {
      locationId,
      sort: DEFAULT_SORT,
      filterKey: query ? JSON.stringify([[], query.toLowerCase()]) : '',
      predicate: queryPredicate(query),
      limit,
      ...(after ? { after } : { offset: 0 }),
    });
    const last = result.contacts[result.contacts.length - 1];
    const more = result.start + result.contacts.length < result.total;
    const currentPage = Math.floor(result.start / limit) + 1;
    const startAfter = last ? (last.searchAfter[0] as number) : null;
    const startAfterId = last ? last.doc.id : null;
    const next = new URLSearchParams({ locationId, limit: String(limit), ...(query ? { query } : {}) });
    if (last) {
      next.set('startAfter', String(startAfter));
      next.set('startAfterId', last.doc.id);
    }
    return ok(reply, 200, {
      contacts: result.contacts.map((c) => searchView(c.doc)),
      meta: {
        total: result.total,
        nextPageUrl: more ? `${emu.baseUrl}/contacts/?${next.toString()}` : null,
        startAfterId,
        startAfter,
        currentPage,
        nextPage: more ? currentPage + 1 : null,
        prevPage: currentPage > 1 ? currentPage - 1 : null,
      },
    });
  };
  app.get('/contacts/', legacyList);
  app.get('/contacts', legacyList);
}
