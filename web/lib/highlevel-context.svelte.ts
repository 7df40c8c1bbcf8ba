// The HighLevel user-data handshake: inside HighLevel's iframe the panel asks its parent for the
// user's encrypted session (`REQUEST_USER_DATA`) and keeps the answer in memory only; the server
// decrypts it with the app's shared secret. No answer in time means we are not inside HighLevel.

export type HighLevelContextState = 'waiting' | 'received' | 'outside';

export const REQUEST_MESSAGE = { message: 'REQUEST_USER_DATA' } as const;
export const RESPONSE_MESSAGE = 'REQUEST_USER_DATA_RESPONSE';

export interface AskOptions {
  /** Give up after this long (default 5 s). */
  timeoutMs?: number;
  /** Ask again this often until answered (default 1 s). */
  retryMs?: number;
}

export class HighLevelContext {
  state = $state<HighLevelContextState>('waiting');
  /** The encrypted payload; never stored (no localStorage, no cookie) and never logged. */
  #payload: string | undefined;
  #win: Window | undefined;

  get payload(): string | undefined {
    return this.#payload;
  }

  /**
   * Starts the handshake and returns a cleanup function. The request is repeated every second
   * because HighLevel's page may attach its listener after our frame has loaded.
   */
  start(win: Window = window, options: AskOptions = {}): () => void {
    if (win.parent === win) {
      this.state = 'outside';
      return () => {};
    }
    this.#win = win;
    return ask(
      win,
      options,
      (payload) => {
        this.#payload = payload;
        this.state = 'received';
      },
      () => {
        if (this.state === 'waiting') this.state = 'outside';
      },
    );
  }

  /**
   * Asks the parent again, for a fresh payload before the panel session expires. Rejects when
   * HighLevel does not answer in time; the payload kept from before stays available.
   */
  requestUserData(options: AskOptions = {}): Promise<string> {
    const win = this.#win;
    if (!win) return Promise.reject(new Error('not inside HighLevel'));
    return new Promise((resolve, reject) => {
      ask(
        win,
        options,
        (payload) => {
          this.#payload = payload;
          resolve(payload);
        },
        () => reject(new Error('HighLevel did not answer')),
      );
    });
  }
}

/** Posts REQUEST_USER_DATA until the parent answers or time runs out; returns a stop function. */
function ask(win: Window, options: AskOptions, onAnswer: (payload: string) => void, onTimeout: () => void): () => void {
  const post = () => win.parent.postMessage(REQUEST_MESSAGE, '*');
  const onMessage = (event: MessageEvent) => {
    // Any frame could post to us; the payload proves itself when the server decrypts it, but we
    // only listen to the frames that host us.
    if (event.source !== win.parent && event.source !== win.top) return;
    const data: unknown = event.data;
    if (!isResponse(data)) return;
    stop();
    onAnswer(data.payload);
  };
  const retry = setInterval(post, options.retryMs ?? 1000);
  const timeout = setTimeout(() => {
    stop();
    onTimeout();
  }, options.timeoutMs ?? 5000);
  const stop = () => {
    clearInterval(retry);
    clearTimeout(timeout);
    win.removeEventListener('message', onMessage);
  };
  win.addEventListener('message', onMessage);
  post();
  return stop;
}

function isResponse(data: unknown): data is { message: string; payload: string } {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  return d.message === RESPONSE_MESSAGE && typeof d.payload === 'string' && d.payload.length > 0;
}
