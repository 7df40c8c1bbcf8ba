// The panel's sign-in with Tandem: exchanges HighLevel's encrypted user data for a short-lived
// session token, holds the token in memory only (no storage, no cookie), sends it as a Bearer
// header on every API call, and renews it before it expires with fresh data from HighLevel. Tandem
// uninstalled from the sub-account, or the user no longer active in it, ends the session on the
// next answer that says so, whichever call gets it.
import type { PanelView, SessionResponse } from '../../server/routes/panel-api.ts';

export type { PanelView };
/** not-installed: Tandem is not (or no longer) installed on this sub-account; the panel says so. */
export type SessionState = 'idle' | 'signing-in' | 'signed-in' | 'failed' | 'not-installed';

/**
 * Error codes (server/auth/session.ts, server/routes/panel-api.ts) after which no call can work:
 * the session ends on them. Never installed comes from the sign-in only, uninstalled from any call.
 */
export const NOT_INSTALLED = 'not_installed';
export const NEVER_INSTALLED = 'never_installed';
const USER_INACTIVE = 'user_inactive';
/** The sign-in's answer to user data from HighLevel's agency view, which names no sub-account. */
export const NO_SUB_ACCOUNT = 'no_sub_account';

export interface SessionOptions {
  /** Asks HighLevel's parent frame for fresh encrypted user data. */
  requestUserData: () => Promise<string>;
  fetch?: typeof fetch;
  /** Renew this long before the token expires (default 2 minutes). */
  renewEarlyMs?: number;
}

const UNREACHABLE = 'Tandem could not be reached. Check your connection, then retry.';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const notInstalled = (err: unknown) => err instanceof HttpError && (err.code === NOT_INSTALLED || err.code === NEVER_INSTALLED);
const endsSession = (err: unknown) => notInstalled(err) || (err instanceof HttpError && err.code === USER_INACTIVE);

export class PanelSession {
  state = $state<SessionState>('idle');
  view = $state<PanelView | undefined>();
  /** Why signing in failed (or why Tandem is not installed), in words for the person looking at the panel. */
  failure = $state<string | undefined>();
  /**
   * Tandem's error code for the failure, when it gave one: the screens word themselves by it
   * (NO_SUB_ACCOUNT: open Tandem inside a sub-account; NEVER_INSTALLED or NOT_INSTALLED: install
   * it, or install it again).
   */
  failureCode = $state<string | undefined>();
  #token: string | undefined;
  #payload: string | undefined;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #renewing: Promise<void> | undefined;
  #retrying: Promise<void> | undefined;
  readonly #options: SessionOptions;
  readonly #fetch: typeof fetch;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Exchanges a payload for a session; on failure the panel shows the reason and a Retry. */
  async signIn(payload: string): Promise<void> {
    if (this.state !== 'signed-in') this.state = 'signing-in';
    await this.#signIn(payload);
  }

  async #signIn(payload: string): Promise<void> {
    this.#payload = payload;
    try {
      this.#accept(await this.#exchange(payload));
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * Retry after a failure: fresh user data from HighLevel when it answers, else the kept one. The
   * state (and so the failed or not-installed screen, its button busy and focused) stays until the
   * answer: a loading screen meanwhile would take the button, and keyboard focus with it. One at a
   * time: a retry asked while one runs waits for it.
   */
  retry(): Promise<void> {
    this.#retrying ??= this.#retryOnce().finally(() => (this.#retrying = undefined));
    return this.#retrying;
  }

  async #retryOnce(): Promise<void> {
    if (this.state !== 'failed' && this.state !== 'not-installed') this.state = 'signing-in';
    let payload: string;
    try {
      payload = await this.#freshPayload();
    } catch (err) {
      return this.#fail(err);
    }
    await this.#signIn(payload);
  }

  /** A JSON API call with the session; renews the session once if the server refuses it. */
  async api<T>(path: string, init: RequestInit = {}): Promise<T> {
    try {
      return await this.#call<T>(path, init);
    } catch (err) {
      if (endsSession(err)) this.#fail(err);
      if (!(err instanceof HttpError) || err.status !== 401) throw err;
      await this.#renew();
      if (this.state !== 'signed-in') throw err;
      return this.#call<T>(path, init);
    }
  }

  /**
   * A streaming response (server-sent events) with the session, for the caller to read; renews the
   * session once if the server refuses it. EventSource cannot send the Bearer header, fetch can.
   */
  async stream(path: string, signal?: AbortSignal): Promise<Response> {
    const open = async () => {
      if (!this.#token) throw new HttpError(401, 'not signed in');
      const headers = { authorization: `Bearer ${this.#token}`, accept: 'text/event-stream' };
      let res: Response;
      try {
        res = await this.#fetch(path, { headers, credentials: 'omit', cache: 'no-store', ...(signal ? { signal } : {}) });
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new Error(UNREACHABLE);
      }
      if (!res.ok) throw await httpError(res);
      return res;
    };
    try {
      return await open();
    } catch (err) {
      if (endsSession(err)) this.#fail(err);
      if (!(err instanceof HttpError) || err.status !== 401) throw err;
      await this.#renew();
      if (this.state !== 'signed-in') throw err;
      return open();
    }
  }

  /** Re-reads the location, user and connection (its status may have changed meanwhile). */
  async reload(): Promise<void> {
    if (this.state !== 'signed-in') return;
    try {
      this.view = await this.api<PanelView>('/api/panel/context');
    } catch {
      // The view on screen stays; a failed session has already switched the panel to its error.
    }
  }

  dispose(): void {
    clearTimeout(this.#renewTimer);
    this.#token = undefined;
  }

  async #call<T>(path: string, init: RequestInit): Promise<T> {
    if (!this.#token) throw new HttpError(401, 'not signed in');
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.#token}`);
    headers.set('accept', 'application/json');
    let res: Response;
    try {
      res = await this.#fetch(path, { ...init, headers, credentials: 'omit' });
    } catch {
      throw new Error(UNREACHABLE);
    }
    if (!res.ok) throw await httpError(res);
    return (await res.json()) as T;
  }

  async #exchange(payload: string): Promise<SessionResponse> {
    let res: Response;
    try {
      res = await this.#fetch('/api/panel/session', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ payload }),
        credentials: 'omit',
      });
    } catch {
      throw new Error(UNREACHABLE);
    }
    if (!res.ok) throw await httpError(res);
    return (await res.json()) as SessionResponse;
  }

  #accept(response: SessionResponse): void {
    const { token, expiresIn, expiresAt: _at, ...view } = response;
    this.#token = token;
    this.view = view;
    this.failure = undefined;
    this.failureCode = undefined;
    this.state = 'signed-in';
    clearTimeout(this.#renewTimer);
    // Scheduled from the server's `expiresIn`, so a wrong clock on this computer does not matter.
    const early = this.#options.renewEarlyMs ?? 120_000;
    this.#renewTimer = setTimeout(() => void this.#renew(), Math.max(5_000, expiresIn * 1000 - early));
  }

  #fail(err: unknown): void {
    clearTimeout(this.#renewTimer);
    this.#token = undefined;
    this.failure = err instanceof Error ? err.message : UNREACHABLE;
    this.failureCode = err instanceof HttpError ? err.code : undefined;
    this.state = notInstalled(err) ? 'not-installed' : 'failed';
  }

  /** One renewal at a time, however many calls found the session refused at once. */
  #renew(): Promise<void> {
    this.#renewing ??= this.#renewOnce().finally(() => (this.#renewing = undefined));
    return this.#renewing;
  }

  /** A new session from fresh user data; a refusal ends the session, a passing problem retries. */
  async #renewOnce(): Promise<void> {
    try {
      this.#accept(await this.#exchange(await this.#freshPayload()));
    } catch (err) {
      const passing = err instanceof HttpError ? err.status === 429 || err.status >= 500 : err instanceof Error && err.message === UNREACHABLE;
      if (!passing) return this.#fail(err);
      // The current token may still be good until it expires; try again shortly.
      clearTimeout(this.#renewTimer);
      this.#renewTimer = setTimeout(() => void this.#renew(), 30_000);
    }
  }

  async #freshPayload(): Promise<string> {
    try {
      return await this.#options.requestUserData();
    } catch {
      // HighLevel did not answer this time; the data it gave at load is still the user's.
      if (this.#payload) return this.#payload;
      throw new Error('HighLevel did not send your sign-in. Reload the page.');
    }
  }
}

async function httpError(res: Response): Promise<HttpError> {
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    const code = typeof body.error?.code === 'string' ? body.error.code : undefined;
    if (typeof body.error?.message === 'string') return new HttpError(res.status, body.error.message, code);
  } catch {
    // Not JSON: a proxy or server error page.
  }
  return new HttpError(res.status, res.status >= 500 ? 'Tandem had a problem on its side. Please retry in a moment.' : UNREACHABLE);
}
