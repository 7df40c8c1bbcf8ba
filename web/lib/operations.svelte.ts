// The One-time operations card's data: the last runs and history (refreshed every few seconds while
// visible), the operation in the confirmation dialog, the location's open preview wherever it was
// opened (so a reload or another admin's panel finds it, and can go back to it or cancel it), and
// the live view of a preview or a run read from its server-sent event stream (fetch + reader, since
// only fetch sends the Bearer header).
import type { OperationItemsPage, OperationItemView, OperationView, OperationsView } from '../../server/routes/panel-operations.ts';
import { Loadable } from './loadable.svelte.ts';
import { isOpenPreview, type RunKind } from './operations-copy.ts';

export type { OperationItemView, OperationView, OperationsView, RunKind };

export interface OperationsApi {
  api<T>(path: string, init?: RequestInit): Promise<T>;
  stream(path: string, signal?: AbortSignal): Promise<Response>;
  /** Who is signed in, when known: before the operations load, an admin's buttons already hold their place. */
  readonly view?: { user: { role: string } } | undefined;
}

/** Statuses after which nothing changes an operation (a shown preview can still be replaced or expire). */
const FINISHED = new Set(['completed', 'cancelled', 'failed', 'discarded']);
/** Real ms before a dropped event stream is opened again. */
const RECONNECT_MS = 1_000;

export class OperationsModel extends Loadable {
  view = $state<OperationsView | undefined>();
  readAt = $state(Date.now());
  /** The operation in the confirmation dialog (a preview being read or shown); undefined when closed. */
  dialog = $state<OperationView | undefined>();
  /** The running operation followed live (for the card's progress). */
  running = $state<OperationView | undefined>();
  /**
   * The location's preview opened and not confirmed (being read, or ready), wherever it was opened:
   * this panel's dialog, this panel before a reload, another tab, another admin. Undefined when none.
   */
  pending = $state<OperationView | undefined>();
  /** The last run this panel watched finish, for the card's result line. */
  finished = $state<OperationView | undefined>();
  /** A refusal or failure to show next to the buttons or in the dialog. */
  problem = $state<string | undefined>();
  busy = $state<'starting' | 'confirming' | 'cancelling' | undefined>();
  /** Failed items by operation id, loaded when a history entry's failed records are expanded. */
  failures = $state<Record<string, OperationItemView[] | 'loading' | string>>({});
  /** Skipped items by operation id, loaded when a history entry's skipped records are expanded. */
  skips = $state<Record<string, OperationItemView[] | 'loading' | string>>({});
  #api: OperationsApi;
  /** Streams open now, by operation id. */
  #streams = new Map<string, AbortController>();
  /**
   * Previews this panel closed, cancelled or confirmed: a list read before the server heard of it
   * still has them open, and the card must not show them again.
   */
  #closed = new Set<string>();
  #disposed = false;

  constructor(api: OperationsApi) {
    super();
    this.#api = api;
  }

  /**
   * Opens the dialog with a new preview of `kind` (an undo names the run it takes back); from a
   * dialog whose preview was replaced, expired or failed, the new preview takes its place.
   */
  async start(kind: RunKind | 'undo', undoOf?: string): Promise<void> {
    if (this.busy) return;
    this.busy = 'starting';
    this.problem = undefined;
    try {
      const body = kind === 'undo' ? { kind, undoOf } : { kind };
      const op = await this.#api.api<OperationView>('/api/panel/operations', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const shown = this.dialog;
      if (shown && shown.id !== op.id) this.#stop(shown.id);
      this.dialog = op;
      // It replaced the location's open preview, if there was one (the server keeps one at a time).
      if (this.pending && this.pending.id !== op.id) this.#closed.add(this.pending.id);
      this.pending = op;
      this.#follow(op.id);
    } catch (err) {
      this.problem = message(err);
    } finally {
      this.busy = undefined;
    }
  }

  /** Starts the previewed run; the dialog closes and the card shows the progress. */
  async confirm(): Promise<boolean> {
    const op = this.dialog;
    if (!op || op.status !== 'previewed' || this.busy) return false;
    this.busy = 'confirming';
    this.problem = undefined;
    try {
      const started = await this.#api.api<OperationView>(`/api/panel/operations/${op.id}/confirm`, { method: 'POST' });
      this.#forget(op.id);
      this.dialog = undefined;
      this.running = started;
      this.finished = undefined;
      // The preview's stream may not have wound down yet; the run gets a stream of its own.
      this.#stop(started.id);
      this.#follow(started.id);
      void this.load();
      return true;
    } catch (err) {
      // Refused because the preview is no longer waiting (replaced in another tab, expired): the
      // dialog then shows why, with Preview again, in place of a Confirm that can only fail again.
      const now = await this.#reread(op.id);
      if (now && FINISHED.has(now.status) && this.dialog?.id === op.id) this.dialog = now;
      else this.problem = message(err);
      return false;
    } finally {
      this.busy = undefined;
    }
  }

  /** The operation as the server holds it now, or undefined when it cannot be read. */
  async #reread(id: string): Promise<OperationView | undefined> {
    try {
      return await this.#api.api<OperationView>(`/api/panel/operations/${id}`);
    } catch {
      return undefined;
    }
  }

  /** Closes the dialog, discarding its preview on the server (nothing was written). */
  async closeDialog(): Promise<void> {
    const op = this.dialog;
    this.dialog = undefined;
    this.problem = undefined;
    if (!op) return;
    this.#stop(op.id);
    this.#forget(op.id);
    if (FINISHED.has(op.status)) return;
    try {
      await this.#api.api(`/api/panel/operations/${op.id}/cancel`, { method: 'POST' });
    } catch {
      // An unconfirmed preview expires on its own; the next start replaces it anyway.
    }
  }

  /**
   * Opens the dialog on the location's open preview (found after a reload, or another tab's or
   * admin's): it shows the preview being read, then the preview to confirm, as if opened here.
   */
  reopen(): void {
    const op = this.pending;
    if (!op || this.busy) return;
    this.problem = undefined;
    const shown = this.dialog;
    if (shown && shown.id !== op.id) this.#stop(shown.id);
    this.dialog = op;
    this.#follow(op.id);
  }

  /** Discards the location's open preview from the card (nothing was written). */
  async cancelPreview(): Promise<void> {
    const op = this.pending;
    if (!op || this.busy) return;
    this.busy = 'cancelling';
    this.problem = undefined;
    try {
      await this.#api.api<OperationView>(`/api/panel/operations/${op.id}/cancel`, { method: 'POST' });
      this.#forget(op.id);
    } catch (err) {
      // Refused because it changed meanwhile (confirmed, replaced, expired): the list says what it is now.
      this.problem = message(err);
      void this.load();
    } finally {
      this.busy = undefined;
    }
  }

  /** A preview this panel closed, cancelled or confirmed is no longer the card's open preview. */
  #forget(id: string): void {
    this.#closed.add(id);
    if (this.pending?.id === id) this.pending = undefined;
  }

  /** Asks the running operation to stop at its next record. */
  async cancelRun(): Promise<void> {
    const op = this.running;
    if (!op || this.busy) return;
    this.busy = 'cancelling';
    try {
      const view = await this.#api.api<OperationView>(`/api/panel/operations/${op.id}/cancel`, { method: 'POST' });
      if (this.running?.id === view.id) this.running = view;
    } catch (err) {
      this.problem = message(err);
    } finally {
      this.busy = undefined;
    }
  }

  /** Loads the failed records of a run (once) for its expanded history entry. */
  loadFailures(id: string): Promise<void> {
    return this.#loadItems(this.failures, id, 'failed');
  }

  /** Loads the skipped records of a run (once), each with why, for its expanded history entry. */
  loadSkips(id: string): Promise<void> {
    return this.#loadItems(this.skips, id, 'skipped');
  }

  /** Reads a run's records of one outcome into `into[id]`, page by page (up to 500), unless already read. */
  async #loadItems(into: Record<string, OperationItemView[] | 'loading' | string>, id: string, filter: 'failed' | 'skipped'): Promise<void> {
    const current = into[id];
    if (current !== undefined && typeof current !== 'string') return;
    into[id] = 'loading';
    try {
      const items: OperationItemView[] = [];
      let cursor: string | null = null;
      do {
        const q = new URLSearchParams({ filter, ...(cursor ? { cursor } : {}) });
        const page: OperationItemsPage = await this.#api.api<OperationItemsPage>(`/api/panel/operations/${id}/items?${q}`);
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor && items.length < 500);
      into[id] = items;
    } catch (err) {
      into[id] = message(err);
    }
  }

  /** Refreshes every `intervalMs` while visible; returns the cleanup (which also closes streams). */
  poll(doc: Document, intervalMs = 5000): () => void {
    const timer = setInterval(() => {
      if (doc.visibilityState === 'visible' && this.state !== 'loading') void this.load();
    }, intervalMs);
    const onVisible = () => {
      if (doc.visibilityState === 'visible' && this.state === 'ready') void this.load();
    };
    doc.addEventListener('visibilitychange', onVisible);
    return () => {
      this.#disposed = true;
      clearInterval(timer);
      doc.removeEventListener('visibilitychange', onVisible);
      for (const c of this.#streams.values()) c.abort();
      this.#streams.clear();
    };
  }

  protected async read(): Promise<void> {
    try {
      const view = await this.#api.api<OperationsView>('/api/panel/operations');
      this.view = view;
      this.readAt = Date.now();
      this.state = 'ready';
      // A run started elsewhere (another admin, or before a reload) is followed too.
      const active = view.active;
      if (active?.status === 'running' && this.running?.id !== active.id) {
        this.running = active;
        this.#follow(active.id);
      }
      this.pending = this.#openPreview(active);
      // The run on screen ended without its stream saying so (a dropped connection): its entry does.
      const shown = this.running;
      if (shown && active?.id !== shown.id) {
        const entry = view.history.find((h) => h.id === shown.id);
        if (entry && FINISHED.has(entry.status)) this.#apply(entry);
      }
    } catch (err) {
      if (this.view) return;
      this.failure = message(err);
      this.state = 'failed';
    }
  }

  /**
   * The list's active operation as the card's open preview: none when it is not one, or this panel
   * closed it already, or its time is up (the server drops it at its next sweep). The dialog's view
   * of it, streamed, is newer than the list's.
   */
  #openPreview(active: OperationView | null): OperationView | undefined {
    if (!active || !isOpenPreview(active) || this.#closed.has(active.id)) return undefined;
    if (active.expiresAt && Date.parse(active.expiresAt) <= this.readAt) return undefined;
    return this.dialog?.id === active.id ? this.dialog : active;
  }

  #apply(op: OperationView): void {
    if (this.pending?.id === op.id) this.pending = isOpenPreview(op) ? op : undefined;
    // Confirmed in another tab or by another admin while shown here: the card follows the run.
    if (this.dialog?.id === op.id && op.status === 'running') {
      this.#forget(op.id);
      this.dialog = undefined;
    }
    if (this.dialog?.id === op.id) this.dialog = op;
    if (this.running?.id === op.id || (op.status === 'running' && !this.dialog)) this.running = op;
    if (FINISHED.has(op.status) && this.running?.id === op.id) {
      this.running = undefined;
      this.finished = op;
      void this.load();
    }
  }

  /** Follows an operation's stream until it rests, opening it again if it drops before that. */
  #follow(id: string): void {
    if (this.#streams.has(id) || this.#disposed) return;
    const controller = new AbortController();
    this.#streams.set(id, controller);
    void (async () => {
      let last: OperationView | undefined;
      while (!controller.signal.aborted) {
        let res: Response;
        try {
          res = await this.#api.stream(`/api/panel/operations/${id}/events`, controller.signal);
        } catch (err) {
          if (controller.signal.aborted) break;
          // A refusal (404, or 401 after renewing) will not get better by asking again.
          if (!(err instanceof Error) || !/could not be reached|problem on its side/.test(err.message)) {
            this.problem = message(err);
            break;
          }
          await new Promise((r) => setTimeout(r, RECONNECT_MS));
          continue;
        }
        try {
          for await (const op of readEvents(res)) {
            last = op;
            this.#apply(op);
          }
        } catch {
          // The connection dropped mid-stream: open it again (below) unless the panel went away.
        }
        // A shown preview is followed on: a newer one (another tab, another admin) may replace it.
        if (controller.signal.aborted || (last && FINISHED.has(last.status))) break;
        await new Promise((r) => setTimeout(r, RECONNECT_MS));
      }
      if (this.#streams.get(id) === controller) this.#streams.delete(id);
    })();
  }

  #stop(id: string): void {
    this.#streams.get(id)?.abort();
    this.#streams.delete(id);
  }
}

/** The `data:` of each event of a server-sent event stream, parsed as an operation view. */
async function* readEvents(res: Response): AsyncGenerator<OperationView> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (data) yield JSON.parse(data) as OperationView;
    }
    if (done) return;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : 'Tandem could not be reached. Check your connection, then retry.';
}
