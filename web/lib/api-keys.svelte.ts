// The API keys tab's data: the location's keys, creating one (its key is held here only until the
// dialog showing it closes) and revoking, through the panel session.
import type { ApiKeyCreated, ApiKeyView } from '../../server/routes/panel-api-keys.ts';

export type { ApiKeyCreated, ApiKeyView };

/**
 * The longest key name Tandem accepts (server/routes/panel-api-keys.ts checks the same), counted
 * as the server counts it: without the spaces around it.
 */
export const KEY_NAME_MAX = 80;

/** Why a key needs a name, said once a create was tried without one. */
export const KEY_NAME_MISSING = 'Give the key a name, e.g. the system that will use it.';
/** Said as soon as the name is longer than Tandem accepts; the same words however long, so it is announced once. */
export const KEY_NAME_TOO_LONG = `Too long: a key name can have up to ${KEY_NAME_MAX} characters. Shorten it to create the key.`;

/** The name's length as Tandem counts it. */
export const keyNameLength = (name: string): number => name.trim().length;

/**
 * What is wrong with a key name before it is sent, or undefined: none (`missing`), or longer than
 * Tandem accepts (`long`). A long name is never cut: the admin decides what to keep.
 */
export function keyNameProblem(name: string): 'missing' | 'long' | undefined {
  const length = keyNameLength(name);
  if (length === 0) return 'missing';
  return length > KEY_NAME_MAX ? 'long' : undefined;
}

/**
 * The name field's help: what to call the key and its limit; near the limit (or past it), how many
 * characters it has.
 */
export function keyNameHelp(name: string): string {
  const length = keyNameLength(name);
  const base = `Name it after the system that will use it; up to ${KEY_NAME_MAX} characters.`;
  return length > KEY_NAME_MAX - 20 ? `${base} This one has ${length}.` : base;
}

export interface KeysApi {
  api<T>(path: string, init?: RequestInit): Promise<T>;
}

export class ApiKeysModel {
  state = $state<'loading' | 'ready' | 'failed'>('loading');
  keys = $state<ApiKeyView[]>([]);
  failure = $state<string | undefined>();
  busy = $state<'creating' | 'revoking' | undefined>();
  /** The key just created, until the person closes the dialog: never stored anywhere else. */
  created = $state<ApiKeyCreated | undefined>();
  readAt = $state(Date.now());
  #api: KeysApi;

  constructor(api: KeysApi) {
    this.#api = api;
  }

  get active(): ApiKeyView[] {
    return this.keys.filter((k) => k.revokedAt === null);
  }

  get revoked(): ApiKeyView[] {
    return this.keys.filter((k) => k.revokedAt !== null);
  }

  async load(): Promise<void> {
    try {
      this.keys = (await this.#api.api<{ keys: ApiKeyView[] }>('/api/panel/api-keys')).keys;
      this.readAt = Date.now();
      this.state = 'ready';
      this.failure = undefined;
    } catch (err) {
      if (this.state !== 'ready') {
        this.state = 'failed';
        this.failure = message(err);
      }
    }
  }

  /** Creates a key and keeps it in `created`; throws with a message to show in the dialog. */
  async create(name: string): Promise<ApiKeyCreated> {
    this.busy = 'creating';
    try {
      const created = await this.#api.api<ApiKeyCreated>('/api/panel/api-keys', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      this.created = created;
      this.keys = [created.apiKey, ...this.keys.filter((k) => k.id !== created.apiKey.id)];
      return created;
    } catch (err) {
      throw new Error(message(err));
    } finally {
      this.busy = undefined;
    }
  }

  /** Forgets the created key (the dialog closed). */
  dismissCreated(): void {
    this.created = undefined;
  }

  async revoke(id: string): Promise<void> {
    this.busy = 'revoking';
    try {
      const { apiKey } = await this.#api.api<{ apiKey: ApiKeyView }>(`/api/panel/api-keys/${encodeURIComponent(id)}`, { method: 'DELETE' });
      this.keys = this.keys.map((k) => (k.id === id ? apiKey : k));
    } catch (err) {
      throw new Error(message(err));
    } finally {
      this.busy = undefined;
    }
  }
}

function message(err: unknown): string {
  return err instanceof Error && err.message ? err.message : 'Tandem could not be reached. Check your connection, then retry.';
}
