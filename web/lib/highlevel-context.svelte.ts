// The HighLevel user-data handshake: inside HighLevel's iframe the panel asks its parent for the
// user's encrypted session (`REQUEST_USER_DATA`) and keeps the answer in memory only; the server
// decrypts it with the app's shared secret. No answer in time means we are probably not inside
// HighLevel, but HighLevel may only be slow: the panel keeps listening, so a late answer still
// signs the user in, and Try again asks once more.

export type HighLevelContextState = 'waiting' | 'received' | 'outside';

export const REQUEST_MESSAGE = { message: 'REQUEST_USER_DATA' } as const;
export const RESPONSE_MESSAGE = 'REQUEST_USER_DATA_RESPONSE';

export interface AskOptions {
  /** Stop asking after this long (default 5 s). */
  timeoutMs?: number;
  /** Ask again this often until answered (default 1 s). */
  retryMs?: number;
}

export class HighLevelContext {
  state = $state<HighLevelContextState>('waiting');
  /** The encrypted payload; never stored (no localStorage, no cookie) and never logged. */
  #payload: string | undefined;
  #win: Window | undefined;
  #options: AskOptions = {};
  /** Stops the current round of asking (the listener of `start` stays until an answer or the end). */
  #stopAsking: (() => void) | undefined;

  get payload(): string | undefined {
    return this.#payload;
  }

  /** Whether asking again can help: the panel is framed (by HighLevel, as far as we know) and not answered yet. */
  get canAskAgain(): boolean {
    return this.#win !== undefined && this.state !== 'received';
  }

  /**
   * Starts the handshake and returns a cleanup function. The request is repeated every second
   * because HighLevel's page may attach its listener after our frame has loaded. After the timeout
   * the panel says it is not in HighLevel, but goes on listening until the cleanup: an answer that
   * comes late replaces that screen.
   */
  start(win: Window = window, options: AskOptions = {}): () => void {
    if (win.parent === win) {
      this.state = 'outside';
      return () => {};
    }
    this.#win = win;
    this.#options = options;
    const stopListening = listen(win, (payload) => {
      stopListening();
      this.#stopAsking?.();
      this.#payload = payload;
      this.state = 'received';
    });
    this.askAgain();
    return () => {
      stopListening();
      this.#stopAsking?.();
    };
  }

  /** Try again: a new round of requests to HighLevel, with the "waiting" screen meanwhile. */
  askAgain(): void {
    const win = this.#win;
    if (!win || this.state === 'received') return;
    this.#stopAsking?.();
    this.state = 'waiting';
    this.#stopAsking = repeat(win, this.#options, () => {
      if (this.state === 'waiting') this.state = 'outside';
    });
  }

  /**
   * Asks the parent again, for a fresh payload before the panel session expires. Rejects when
   * HighLevel does not answer in time; the payload kept from before stays available.
   */
  requestUserData(options: AskOptions = {}): Promise<string> {
    const win = this.#win;
    if (!win) return Promise.reject(new Error('not inside HighLevel'));
    return new Promise((resolve, reject) => {
      const stop = () => {
        stopListening();
        stopAsking();
      };
      const stopListening = listen(win, (payload) => {
        stop();
        this.#payload = payload;
        resolve(payload);
      });
      const stopAsking = repeat(win, options, () => {
        stop();
        reject(new Error('HighLevel did not answer'));
      });
    });
  }
}

/** Calls `onAnswer` with each user-data answer from the frames that host us; returns a stop function. */
function listen(win: Window, onAnswer: (payload: string) => void): () => void {
  const onMessage = (event: MessageEvent) => {
    // Any frame could post to us; the payload proves itself when the server decrypts it, but we
    // only listen to the frames that host us.
    if (event.source !== win.parent && event.source !== win.top) return;
    const data: unknown = event.data;
    if (isResponse(data)) onAnswer(data.payload);
  };
  win.addEventListener('message', onMessage);
  return () => win.removeEventListener('message', onMessage);
}

/** Posts REQUEST_USER_DATA now and every `retryMs` until stopped or time runs out; returns a stop function. */
function repeat(win: Window, options: AskOptions, onTimeout: () => void): () => void {
  const post = () => win.parent.postMessage(REQUEST_MESSAGE, '*');
  const retry = setInterval(post, options.retryMs ?? 1000);
  const timeout = setTimeout(() => {
    stop();
    onTimeout();
  }, options.timeoutMs ?? 5000);
  const stop = () => {
    clearInterval(retry);
    clearTimeout(timeout);
  };
  post();
  return stop;
}

function isResponse(data: unknown): data is { message: string; payload: string } {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  return d.message === RESPONSE_MESSAGE && typeof d.payload === 'string' && d.payload.length > 0;
}
