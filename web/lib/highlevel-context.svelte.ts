// The HighLevel user-data handshake: inside HighLevel's iframe the panel asks its parent for the
// user's encrypted session (`REQUEST_USER_DATA`) and keeps the answer in memory only; the server
// decrypts it with the app's shared secret. No answer in time means we are not inside HighLevel.

export type HighLevelContextState = 'waiting' | 'received' | 'outside';

export const REQUEST_MESSAGE = { message: 'REQUEST_USER_DATA' } as const;
export const RESPONSE_MESSAGE = 'REQUEST_USER_DATA_RESPONSE';

export class HighLevelContext {
  state = $state<HighLevelContextState>('waiting');
  /** The encrypted payload; never stored (no localStorage, no cookie) and never logged. */
  #payload: string | undefined;

  get payload(): string | undefined {
    return this.#payload;
  }

  /**
   * Starts the handshake and returns a cleanup function. The request is repeated every second
   * because HighLevel's page may attach its listener after our frame has loaded.
   */
  start(win: Window = window, options: { timeoutMs?: number; retryMs?: number } = {}): () => void {
    if (win.parent === win) {
      this.state = 'outside';
      return () => {};
    }
    const ask = () => win.parent.postMessage(REQUEST_MESSAGE, '*');
    const onMessage = (event: MessageEvent) => {
      // Any frame could post to us; the payload proves itself when the server decrypts it, but we
      // only listen to the frames that host us.
      if (event.source !== win.parent && event.source !== win.top) return;
      const data: unknown = event.data;
      if (!isResponse(data)) return;
      this.#payload = data.payload;
      this.state = 'received';
      stop();
    };
    const retry = setInterval(ask, options.retryMs ?? 1000);
    const timeout = setTimeout(() => {
      if (this.state === 'waiting') this.state = 'outside';
      stop();
    }, options.timeoutMs ?? 5000);
    const stop = () => {
      clearInterval(retry);
      clearTimeout(timeout);
      win.removeEventListener('message', onMessage);
    };
    win.addEventListener('message', onMessage);
    ask();
    return stop;
  }
}

function isResponse(data: unknown): data is { message: string; payload: string } {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  return d.message === RESPONSE_MESSAGE && typeof d.payload === 'string' && d.payload.length > 0;
}
