// The Sync tab's data: loads the settings, status and history, refreshes them every few seconds
// while the page is visible, and saves, pauses and resumes through the panel session.
import type { Direction } from '../../db/schema.ts';
import type { SyncSettingsView, SyncView } from '../../server/routes/panel-sync.ts';
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
    } catch (err) {
      if (this.view) {
        this.stale = true;
        return;
      }
      this.failure = err instanceof Error ? err.message : 'Tandem could not be reached. Check your connection, then retry.';
      this.state = 'failed';
    }
  }
}
