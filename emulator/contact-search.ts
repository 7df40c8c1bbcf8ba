// The search engine behind POST /contacts/search and the legacy GET /contacts/: a per-location
// snapshot of search-visible documents with cached sorted (and filtered) orders, so paging a
// large location costs a binary search and a slice instead of a sort per page.
import type { Emulator } from './emulator.ts';
import type { ContactDoc } from './state.ts';
import type { Predicate } from './contact-filters.ts';

export type Direction = 'asc' | 'desc';
export interface SortEntry {
  field: string;
  direction: Direction;
}
type SortValue = number | string | null;

interface Entry {
  doc: ContactDoc;
  keys: SortValue[];
}

interface Snapshot {
  docs: ContactDoc[];
  /**
   * emu.contactWriteSeq and searchLagMs when the snapshot was last checked (the current lag is a
   * floor under every version's visibility time: Emulator.searchVisibleAt).
   */
  seq: number;
  lag: number;
  /** What search sees stays the same while the clock is in [validFrom, validUntil). */
  validFrom: number;
  validUntil: number;
  /** sort key -> every visible document in that order. */
  sorted: Map<string, Entry[]>;
  /** sort key + filter key -> the matching documents in that order. */
  filtered: Map<string, Entry[]>;
}

/** Sort fields HighLevel documents; how each becomes a comparable value. Missing sorts last. */
const SORT_VALUES: Record<string, (d: ContactDoc) => SortValue> = {
  dateAdded: (d) => Date.parse(d.dateAdded),
  dateUpdated: (d) => Date.parse(d.dateUpdated),
  firstNameLowerCase: (d) => (d.firstNameLowerCase as string | undefined) ?? null,
  lastNameLowerCase: (d) => (d.lastNameLowerCase as string | undefined) ?? null,
  businessName: (d) => (typeof d.companyName === 'string' ? d.companyName.toLowerCase() : null),
  email: (d) => (d.emailLowerCase as string | undefined) ?? null,
  // A contact without `dnd` sorts as dnd: false, as the filters treat it.
  dnd: (d) => (d.dnd === true ? 1 : 0),
  source: (d) => (typeof d.source === 'string' ? d.source.toLowerCase() : null),
};
export const SORTABLE = Object.keys(SORT_VALUES);
const DATE_SORTS = new Set(['dateAdded', 'dateUpdated']);

const snapshots = new WeakMap<Emulator, Map<string, Snapshot>>();
const MAX_FILTERED = 32;

/**
 * The location's search-visible documents. Without a write since the last look (and while no
 * newer version has become visible) this is O(1). Otherwise the list is rebuilt in O(n); as
 * documents are immutable, equal references mean nothing changed here and the sorted orders
 * survive (a write in another location does not cost a re-sort).
 */
function snapshot(emu: Emulator, locationId: string): Snapshot {
  let perLocation = snapshots.get(emu);
  if (!perLocation) snapshots.set(emu, (perLocation = new Map()));
  const prev = perLocation.get(locationId);
  const lag = emu.config.searchLagMs;
  const now = emu.now();
  if (prev && prev.seq === emu.contactWriteSeq && prev.lag === lag && now >= prev.validFrom && now < prev.validUntil) return prev;

  // The same choice as Emulator.contactForSearch (searchChoice), whose bounds say when it would
  // change for each contact: the snapshot holds while none does.
  const docs: ContactDoc[] = [];
  let validFrom = -Infinity;
  let validUntil = Infinity;
  let same = prev !== undefined;
  for (const id of emu.contactIds(locationId)) {
    const versions = emu.world.contacts[id];
    if (!versions) continue;
    const choice = emu.searchChoice(versions, now);
    validUntil = Math.min(validUntil, choice.until);
    if (choice.index < 0) continue;
    validFrom = Math.max(validFrom, choice.from);
    const doc = versions[choice.index]!.doc;
    if (!doc) continue;
    if (same && prev!.docs[docs.length] !== doc) same = false;
    docs.push(doc);
  }
  const state = { seq: emu.contactWriteSeq, lag, validFrom, validUntil };
  if (same && prev!.docs.length === docs.length) return Object.assign(prev!, state);
  const next: Snapshot = { docs, ...state, sorted: new Map(), filtered: new Map() };
  perLocation.set(locationId, next);
  return next;
}

function compare(a: SortValue[], aId: string, b: SortValue[], bId: string, sort: SortEntry[]): number {
  for (let i = 0; i < sort.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === null) return 1;
    if (y === null) return -1;
    const c = x < y ? -1 : 1;
    return sort[i]!.direction === 'desc' ? -c : c;
  }
  // Tiebreak: id ascending, whatever the sort, so every order is total and cursors are exact.
  return aId < bId ? -1 : aId > bId ? 1 : 0;
}

function sortedEntries(snap: Snapshot, sort: SortEntry[]): Entry[] {
  const key = JSON.stringify(sort);
  let entries = snap.sorted.get(key);
  if (!entries) {
    const getters = sort.map((s) => SORT_VALUES[s.field]!);
    entries = snap.docs.map((doc) => ({ doc, keys: getters.map((g) => g(doc)) }));
    entries.sort((a, b) => compare(a.keys, a.doc.id, b.keys, b.doc.id, sort));
    snap.sorted.set(key, entries);
  }
  return entries;
}

export interface PageQuery {
  locationId: string;
  sort: SortEntry[];
  /** Identifies the predicate for caching (same key = same predicate). */
  filterKey: string;
  predicate: Predicate;
  /** Either an offset or a cursor ([...sort values, id]) to resume strictly after. */
  offset?: number;
  after?: unknown[];
  limit: number;
}

export interface PageResult {
  contacts: { doc: ContactDoc; searchAfter: SortValue[] }[];
  total: number;
  /** Index of the first returned contact among all matches. */
  start: number;
}

export function searchPage(emu: Emulator, q: PageQuery): PageResult {
  const snap = snapshot(emu, q.locationId);
  const sortKey = JSON.stringify(q.sort);
  const cacheKey = `${sortKey}|${q.filterKey}`;
  let matches = snap.filtered.get(cacheKey);
  if (!matches) {
    const all = sortedEntries(snap, q.sort);
    matches = q.filterKey === '' ? all : all.filter((e) => q.predicate(e.doc));
    if (snap.filtered.size >= MAX_FILTERED) snap.filtered.clear();
    snap.filtered.set(cacheKey, matches);
  }
  let start = q.offset ?? 0;
  if (q.after) {
    const cursorKeys = normaliseCursor(q.after, q.sort);
    const cursorId = String(q.after[q.after.length - 1]);
    let lo = 0;
    let hi = matches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = matches[mid]!;
      if (compare(e.keys, e.doc.id, cursorKeys, cursorId, q.sort) <= 0) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const page = matches.slice(start, start + q.limit);
  return {
    contacts: page.map((e) => ({ doc: e.doc, searchAfter: [...e.keys, e.doc.id] })),
    total: matches.length,
    start,
  };
}

/** Cursor values as the sort compares them (dates as epoch ms, strings lowercased, dnd 0/1). */
function normaliseCursor(after: unknown[], sort: SortEntry[]): SortValue[] {
  return sort.map((s, i) => {
    const v = after[i];
    if (v === null || v === undefined) return null;
    if (DATE_SORTS.has(s.field)) return typeof v === 'number' ? v : /^\d+$/.test(String(v)) ? Number(v) : Date.parse(String(v));
    if (s.field === 'dnd') return v === true || v === 1 || v === '1' || v === 'true' ? 1 : 0;
    return String(v).toLowerCase();
  });
}
