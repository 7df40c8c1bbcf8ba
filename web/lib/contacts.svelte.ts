// The Contacts tab's data: Tandem's contacts of the location (newest change first, a search query,
// a filter by where each contact's change to HighLevel stands, more pages on request), refreshed
// every few seconds while shown so changes synced from HighLevel appear on their own, and an
// admin's edit saved through the panel session. A refresh reads down to the last row Show more
// loaded, so it never takes away rows the user is reading. A save that finds the contact changed
// since the dialog read it (EditConflict) can load the latest version into the form, keeping the
// admin's changes to fields nobody else changed (mergeLatest).
import type { ContactFilter, PanelContactRead, PanelContactSaved, PanelContactsPage, PanelContactsSync, PanelContactView } from '../../server/routes/panel-contacts.ts';

export type { PanelContactRead, PanelContactSaved, PanelContactsSync, PanelContactView };

/** Which contacts the tab lists: every one, or only those whose change stands so (the server filters). */
export type ContactsFilter = 'all' | ContactFilter;

export interface ContactsApi {
  api<T>(path: string, init?: RequestInit): Promise<T>;
}

/** What the edit form sends: every editable field (empty clears it) and the version it was read at. */
export interface ContactEdit {
  firstName: string;
  lastName: string;
  email: string;
  phone: string;
  companyName: string;
  tags: string;
}

export const REFRESH_MS = 2000;

/** A save refused because the contact changed after the form was filled (the server's 412). */
export class EditConflict extends Error {}

export class ContactsModel {
  state = $state<'loading' | 'ready' | 'failed'>('loading');
  contacts = $state<PanelContactView[]>([]);
  nextCursor = $state<string | null>(null);
  /** How many contacts the listed search and filter match in all (undefined before the first read). */
  total = $state<number | undefined>();
  canEdit = $state(false);
  /** The settings that decide where an edit goes, as of the latest read (undefined before the first). */
  sync = $state<PanelContactsSync | undefined>();
  failure = $state<string | undefined>();
  query = $state('');
  filter = $state<ContactsFilter>('all');
  /** The search and filter the rows shown were read with (the query and filter may be newer). */
  listed = $state<{ query: string; filter: ContactsFilter }>({ query: '', filter: 'all' });
  readAt = $state(Date.now());
  saving = $state(false);
  /** A Show more is on its way (its button waits, and the refresh holds off until it lands). */
  loadingMore = $state(false);
  #api: ContactsApi;
  /** Answers to an older query or refresh are dropped: only the latest request may set the list. */
  #seq = 0;
  /**
   * Where the rows loaded with Show more end (the last one's list position), for the refresh to
   * read down to; undefined while only the first page is shown.
   */
  #until: string | undefined;

  constructor(api: ContactsApi) {
    this.#api = api;
  }

  /** The first page for the current query and filter: the first read, a new search or filter, Retry. */
  load(): Promise<void> {
    this.#until = undefined;
    return this.#read();
  }

  /**
   * The periodic refresh: the same rows as shown, down to where Show more left off, with what
   * changed since (changed contacts move to the top, new ones come in above).
   */
  refresh(): Promise<void> {
    // A refresh sent now would not know the page on its way, and would overtake it.
    if (this.loadingMore) return Promise.resolve();
    return this.#read(this.#until);
  }

  async #read(until?: string): Promise<void> {
    const seq = ++this.#seq;
    const asked = { query: this.query, filter: this.filter };
    const params = new URLSearchParams({ ...this.#queryParam(), ...(until ? { until } : {}) });
    try {
      const page = await this.#api.api<PanelContactsPage>(`/api/panel/contacts?${params}`);
      if (seq !== this.#seq) return;
      this.contacts = page.contacts;
      this.listed = asked;
      this.nextCursor = page.nextCursor;
      this.total = page.total;
      this.canEdit = page.canEdit;
      this.sync = page.sync;
      this.readAt = Date.now();
      this.state = 'ready';
      this.failure = undefined;
    } catch (err) {
      if (seq !== this.#seq) return;
      this.failure = message(err);
      if (this.state !== 'ready') this.state = 'failed';
    }
  }

  async more(): Promise<void> {
    if (!this.nextCursor || this.loadingMore) return;
    this.loadingMore = true;
    const seq = ++this.#seq;
    const params = new URLSearchParams({ cursor: this.nextCursor, ...this.#queryParam() });
    try {
      const page = await this.#api.api<PanelContactsPage>(`/api/panel/contacts?${params}`);
      if (seq !== this.#seq) return;
      const seen = new Set(this.contacts.map((c) => c.id));
      this.contacts = [...this.contacts, ...page.contacts.filter((c) => !seen.has(c.id))];
      this.nextCursor = page.nextCursor;
      this.total = page.total;
      this.#until = page.endCursor ?? this.#until;
    } catch (err) {
      if (seq === this.#seq) this.failure = message(err);
    } finally {
      this.loadingMore = false;
    }
  }

  #queryParam(): { query?: string; filter?: ContactFilter } {
    const query = this.query.trim();
    return { ...(query ? { query } : {}), ...(this.filter !== 'all' ? { filter: this.filter } : {}) };
  }

  /** Saves an edit made on `contact`; throws with a message to show in the form. */
  async save(contact: PanelContactView, edit: ContactEdit): Promise<PanelContactSaved> {
    this.saving = true;
    try {
      const body = {
        firstName: edit.firstName.trim() || null,
        lastName: edit.lastName.trim() || null,
        email: edit.email.trim() || null,
        phone: edit.phone.trim() || null,
        companyName: edit.companyName.trim() || null,
        tags: edit.tags.split(',').map((t) => t.trim()).filter(Boolean),
        version: contact.version,
      };
      const answer = await this.#api.api<PanelContactSaved>(`/api/panel/contacts/${encodeURIComponent(contact.id)}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      ++this.#seq;
      const saved = answer.contact;
      this.contacts = [saved, ...this.contacts.filter((c) => c.id !== saved.id)];
      this.sync = answer.sync;
      return answer;
    } catch (err) {
      if (code(err) === 'version_mismatch') throw new EditConflict(message(err));
      throw new Error(message(err));
    } finally {
      this.saving = false;
    }
  }

  /**
   * The contact as it is now, for the edit dialog's Load latest (the list's refresh waits while the
   * dialog is open); throws with a message to show in the form.
   */
  async latest(id: string): Promise<PanelContactView> {
    try {
      const answer = await this.#api.api<PanelContactRead>(`/api/panel/contacts/${encodeURIComponent(id)}`);
      this.sync = answer.sync;
      return answer.contact;
    } catch (err) {
      throw new Error(message(err));
    }
  }
}

type EditField = keyof ContactEdit;
const EDIT_FIELDS: EditField[] = ['firstName', 'lastName', 'email', 'phone', 'companyName', 'tags'];

/**
 * Load latest after a conflict, field by field (a three-way merge on what the form was filled
 * from): a field the admin left alone takes the latest value; one the admin changed keeps the
 * change when nobody else changed it meanwhile (`kept`); one both changed, differently, shows the
 * latest value, and the admin's is reported (`lost`) rather than silently written over it.
 */
export function mergeLatest(opened: ContactEdit, mine: ContactEdit, latest: ContactEdit): { form: ContactEdit; kept: EditField[]; lost: { field: EditField; mine: string }[] } {
  const form = { ...latest };
  const kept: EditField[] = [];
  const lost: { field: EditField; mine: string }[] = [];
  for (const field of EDIT_FIELDS) {
    const same = (a: string, b: string) => comparable(field, a) === comparable(field, b);
    if (same(mine[field], opened[field]) || same(mine[field], latest[field])) continue;
    if (same(latest[field], opened[field])) {
      form[field] = mine[field];
      kept.push(field);
    } else {
      lost.push({ field, mine: mine[field] });
    }
  }
  return { form, kept, lost };
}

/** A field's value as saving would store it, near enough: trimmed; tags also in lower case, as Tandem keeps them. */
function comparable(field: EditField, value: string): string {
  if (field !== 'tags') return value.trim();
  return value.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean).join(',');
}

export function editOf(c: PanelContactView): ContactEdit {
  return {
    firstName: c.firstName ?? '',
    lastName: c.lastName ?? '',
    email: c.email ?? '',
    phone: c.phone ?? '',
    companyName: c.companyName ?? '',
    tags: c.tags.join(', '),
  };
}

export function displayName(c: PanelContactView): string {
  return [c.firstName, c.lastName].filter(Boolean).join(' ') || c.email || c.phone || 'Unnamed contact';
}

/** The server's error code (the panel session's errors carry it), if any. */
function code(err: unknown): string | undefined {
  const value = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  return typeof value === 'string' ? value : undefined;
}

function message(err: unknown): string {
  return err instanceof Error && err.message ? err.message : 'Tandem could not be reached. Check your connection, then retry.';
}
