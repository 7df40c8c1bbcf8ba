// The Sync tab's data: loads the settings, status and history, refreshes them every few seconds
// while the page is visible, and saves, pauses and resumes through the panel session.
import type { Direction } from '../../db/schema.ts';
import type { PanelContactsPage, PanelContactView } from '../../server/routes/panel-contacts.ts';
import type { SyncSettingsView, SyncView } from '../../server/routes/panel-sync.ts';
import { displayName } from './contacts.svelte.ts';
import type { FailureNames } from './sync-copy.ts';
import { Loadable } from './loadable.svelte.ts';

export type { SyncView };

export interface SyncApi {
  api<T>(path: string, init?: RequestInit): Promise<T>;
}

export type { LoadState } from './loadable.svelte.ts';

export interface SettingsDraft {
  creationDirection: Direction;
  updateDirection: Direction;
}

export class SyncTabModel extends Loadable {
  view = $state<SyncView | undefined>();
  /** The latest refresh failed while data was on screen (shown quietly; the data may be stale). */
  stale = $state(false);
  /** When the view was last read (epoch ms), for relative times. */
  readAt = $state(Date.now());
  busy = $state<'saving' | 'pausing' | 'resuming' | undefined>();
  /** Who the latest refused change concerns, once looked up (see #name). */
  failureNames = $state<FailureNames | undefined>();
  /** The refused change `failureNames` was looked up for ("at|message"), so each is looked up once. */
  #namedFailure: string | undefined;
  #api: SyncApi;
  /** Bumped by every change made here, so a read that started before it cannot undo it on screen. */
  #generation = 0;

  constructor(api: SyncApi) {
    super();
    this.#api = api;
  }

  /** Saves both settings; the caller shows the confirmation. Throws with a message on failure. */
  async save(draft: SettingsDraft): Promise<SyncSettingsView> {
    this.busy = 'saving';
    this.#generation++;
    try {
      const settings = await this.#api.api<SyncSettingsView>('/api/panel/sync/settings', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(draft),
      });
      if (this.view) this.view = { ...this.view, settings };
      // The history and status follow from the server, read after the save.
      this.#generation++;
      void this.read();
      return settings;
    } finally {
      this.busy = undefined;
    }
  }

  async setPaused(paused: boolean): Promise<void> {
    this.busy = paused ? 'pausing' : 'resuming';
    this.#generation++;
    try {
      this.view = await this.#api.api<SyncView>(`/api/panel/sync/${paused ? 'pause' : 'resume'}`, { method: 'POST' });
      this.readAt = Date.now();
      void this.#name(this.view);
    } finally {
      this.busy = undefined;
    }
  }

  /**
   * Refreshes every `intervalMs` while the document is visible, and at once when it becomes
   * visible again. Returns the cleanup.
   */
  poll(doc: Document, intervalMs = 5000): () => void {
    const timer = setInterval(() => {
      if (doc.visibilityState === 'visible' && this.state !== 'loading') void this.load();
    }, intervalMs);
    const onVisible = () => {
      if (doc.visibilityState === 'visible' && this.state === 'ready') void this.load();
    };
    doc.addEventListener('visibilitychange', onVisible);
    return () => {
      clearInterval(timer);
      doc.removeEventListener('visibilitychange', onVisible);
    };
  }

  protected async read(): Promise<void> {
    const generation = this.#generation;
    try {
      const view = await this.#api.api<SyncView>('/api/panel/sync');
      if (generation !== this.#generation) return;
      this.view = view;
      this.readAt = Date.now();
      this.state = 'ready';
      this.stale = false;
      void this.#name(view);
    } catch (err) {
      if (this.view) {
        this.stale = true;
        return;
      }
      this.failure = err instanceof Error ? err.message : 'Tandem could not be reached. Check your connection, then retry.';
      this.state = 'failed';
    }
  }

  /**
   * Names the contact of the latest refused change, and the contacts its reason points at by id.
   * The status carries only HighLevel's reason, so the names come from the Contacts list: its
   * first page (the most recently changed contacts, where a refused one usually is), found by the
   * same reason; then, for a contact the reason names that is not on it, a search by the refused
   * contact's email or phone, which that other contact shares. Unnamed when not found: the problem
   * then says where the contact is marked. Looked up once per refused change (the status is read
   * every few seconds).
   */
  async #name(view: SyncView): Promise<void> {
    const failure = view.status.lastFailure;
    const key = failure ? `${failure.at}|${failure.message}` : undefined;
    if (key === this.#namedFailure) return;
    this.#namedFailure = key;
    this.failureNames = undefined;
    if (!failure) return;
    try {
      const page = (query?: string) =>
        this.#api.api<PanelContactsPage>(`/api/panel/contacts?${new URLSearchParams(query ? { query } : {})}`).then((p) => p.contacts);
      const seen = new Map<string, PanelContactView>((await page()).map((c) => [c.id, c]));
      const refused = [...seen.values()].filter((c) => c.outbound?.status === 'failed' && c.outbound.reason === failure.message);
      // Two contacts refused for the same words cannot be told apart by them.
      const contact = refused.length === 1 ? refused[0] : undefined;
      const ids = failure.message.match(/\bc_[A-Za-z0-9]{20}\b/g) ?? [];
      const shared = contact?.email ?? contact?.phone;
      if (shared && ids.some((id) => !seen.has(id))) for (const c of await page(shared)) seen.set(c.id, c);
      if (this.#namedFailure !== key) return;
      const names: Record<string, string> = {};
      for (const id of ids) {
        const c = seen.get(id);
        if (c) names[id] = displayName(c);
      }
      this.failureNames = { contact: contact ? displayName(contact) : undefined, others: names };
    } catch {
      // The names are a courtesy: the problem shows without them meanwhile, and the next refresh
      // tries again.
      if (this.#namedFailure === key) this.#namedFailure = undefined;
    }
  }
}
