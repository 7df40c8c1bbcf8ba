// The Sync tab's data: loads the settings, status and history, refreshes them every few seconds
// while the page is visible, holds the admin's unsaved settings draft, asks the server what saving
// it would send to HighLevel at once, and saves, pauses and resumes through the panel session.
import type { Direction } from '../../db/schema.ts';
import type { FormSetting, ReleasePreviewView, SettingsChangeView, SyncSettingsView, SyncView } from '../../server/routes/panel-sync.ts';
import { Loadable } from './loadable.svelte.ts';

export type { FormSetting, ReleasePreviewView, SyncView };

export interface SyncApi {
  api<T>(path: string, init?: RequestInit): Promise<T>;
}

export type { LoadState } from './loadable.svelte.ts';

export const FORM_SETTINGS: readonly FormSetting[] = ['creationDirection', 'updateDirection'];

export type SettingsValues = Record<FormSetting, Direction>;

/**
 * The admin's unsaved choices. Only the settings chosen are held: the others follow the server, so
 * a change another admin saves meanwhile shows, and is never sent back over. `revision` is the
 * settings' revision when the draft began, for the server to refuse a save that would overwrite a
 * change made after it.
 */
export interface SettingsDraft {
  revision: number;
  values: Partial<SettingsValues>;
}

/** A setting the draft changes that someone changed after the draft began (from the history). */
export interface SettingsConflict {
  setting: FormSetting;
  mine: Direction;
  theirs: Direction;
  /** The latest such change, when the history on screen still lists it. */
  change: SettingsChangeView | undefined;
}

/**
 * How a save ended: all saved; saved, with a newer choice kept as the draft; refused as overtaken;
 * refused because what it sends changed since the preview it confirmed ('release-changed').
 */
export type SaveOutcome = 'saved' | 'newer' | 'conflict' | 'release-changed';

export class SyncTabModel extends Loadable {
  view = $state<SyncView | undefined>();
  /** The latest refresh failed while data was on screen (shown quietly; the data may be stale). */
  stale = $state(false);
  /** When the view was last read (epoch ms), for relative times. */
  readAt = $state(Date.now());
  busy = $state<'saving' | 'pausing' | 'resuming' | undefined>();
  /**
   * Held here, by the panel's model rather than by the settings card, so that looking at another
   * tab and coming back finds the draft as it was. Keeping it beats asking "leave without saving?":
   * the tabs are views of one panel, an admin often checks the Contacts tab before deciding, and a
   * prompt would interrupt exactly that; the Sync tab's label marks the unsaved draft meanwhile.
   * It is lost with the page (a reload, or HighLevel leaving the panel), as any unsaved form.
   */
  draft = $state<SettingsDraft | null>(null);
  /** The server's words when it refused a save as overtaken and the history does not say by whom. */
  overtaken = $state<string | undefined>();
  #api: SyncApi;
  /** Bumped by every change made here, so a read that started before it cannot undo it on screen. */
  #generation = 0;

  constructor(api: SyncApi) {
    super();
    this.#api = api;
  }

  /** The value on screen: the draft's choice, else the saved one. */
  value(setting: FormSetting): Direction {
    return this.draft?.values[setting] ?? this.view!.settings[setting];
  }

  /** What Save sends: the draft's choices that differ from the saved settings. */
  get changes(): Partial<SettingsValues> {
    const settings = this.view?.settings;
    const changes: Partial<SettingsValues> = {};
    if (!settings || !this.draft) return changes;
    for (const k of FORM_SETTINGS) {
      const v = this.draft.values[k];
      if (v !== undefined && v !== settings[k]) changes[k] = v;
    }
    return changes;
  }

  get dirty(): boolean {
    return Object.keys(this.changes).length > 0;
  }

  /**
   * Whether saving the draft turns a setting from Inbound to Bi-directional, which sends at once
   * what that setting held back: the panel previews it first (previewRelease).
   */
  get releases(): boolean {
    const changes = this.changes;
    return changes.creationDirection === 'bidirectional' || changes.updateDirection === 'bidirectional';
  }

  /**
   * What saving the draft would send to HighLevel at once, read from the server now (the status
   * strip's counts may be seconds old). Throws with a message when it cannot be read.
   */
  async previewRelease(): Promise<ReleasePreviewView> {
    const query = new URLSearchParams({ creationDirection: this.value('creationDirection'), updateDirection: this.value('updateDirection') });
    return this.#api.api<ReleasePreviewView>(`/api/panel/sync/settings/preview?${query}`);
  }

  /**
   * The draft's changes someone changed again after the draft began (per the history on screen):
   * saving them would overwrite that decision, so the panel asks first.
   */
  get conflicts(): SettingsConflict[] {
    const view = this.view;
    const draft = this.draft;
    if (!view || !draft) return [];
    const changes = this.changes;
    return FORM_SETTINGS.flatMap((setting) => {
      const mine = changes[setting];
      if (mine === undefined) return [];
      const change = view.history.find((h) => h.setting === setting && h.id > draft.revision);
      if (!change) return [];
      return [{ setting, mine, theirs: view.settings[setting], change }];
    });
  }

  choose(setting: FormSetting, value: Direction): void {
    if (!this.view) return;
    // A draft with nothing left to save (all chosen back, or saved elsewhere) begins anew from now.
    const draft = this.draft && this.dirty ? this.draft : { revision: this.view.settings.revision, values: {} };
    this.draft = { revision: draft.revision, values: { ...draft.values, [setting]: value } };
    this.overtaken = undefined;
  }

  discard(): void {
    this.draft = null;
    this.overtaken = undefined;
  }

  /** Drops the draft's overtaken choices: the other admin's values stand, the rest of the draft stays. */
  keepTheirs(): void {
    if (!this.draft || !this.view) return;
    const values = { ...this.draft.values };
    for (const c of this.conflicts) delete values[c.setting];
    this.draft = { revision: this.view.settings.revision, values };
    this.overtaken = undefined;
  }

  /**
   * Saves the draft's changes, and only them. `overwrite`: the admin saw the newer change and
   * confirmed theirs should replace it, so the save says it began from the revision on screen (a
   * change made after that is refused again). `fingerprint`: the preview's (previewRelease) the
   * admin confirmed; the server saves only while saving sends exactly what it described. Throws
   * with a message on any other failure.
   */
  async save(overwrite = false, fingerprint?: string): Promise<SaveOutcome> {
    const draft = this.draft;
    const changes = this.changes;
    if (!draft || !this.view || Object.keys(changes).length === 0) return 'saved';
    const revision = overwrite ? this.view.settings.revision : draft.revision;
    this.busy = 'saving';
    this.#generation++;
    try {
      const settings = await this.#api.api<SyncSettingsView>('/api/panel/sync/settings', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...changes, revision, ...(fingerprint === undefined ? {} : { fingerprint }) }),
      });
      if (this.view) this.view = { ...this.view, settings };
      this.overtaken = undefined;
      // The radios stay live while saving: a choice made meanwhile is the admin's latest word, kept
      // as the draft (from the revision just saved) rather than replaced by what was just saved.
      const now: SettingsDraft | null = this.draft;
      const newer = now !== null && FORM_SETTINGS.some((k) => now.values[k] !== undefined && now.values[k] !== settings[k]);
      this.draft = newer ? { revision: settings.revision, values: now.values } : null;
      // The history and status follow from the server, read after the save.
      this.#generation++;
      void this.read();
      return newer ? 'newer' : 'saved';
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'release_changed') {
        // Nothing saved. Read the settings as they are now (another admin may have saved these very
        // choices); the card then reads the preview again. A draft with nothing left to save goes.
        this.#generation++;
        await this.read();
        if (!this.dirty) this.draft = null;
        return 'release-changed';
      }
      if (code !== 'settings_changed') throw err;
      // Overtaken: read what the other admin did first, so the card asks once, saying who and when.
      this.#generation++;
      await this.read();
      this.overtaken = err instanceof Error ? err.message : 'Someone changed a setting you are changing.';
      return 'conflict';
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
