// What the panel's models that read one view from Tandem share: the load state and the failure the
// screen shows, one request at a time however many ask, and Retry. A model says how it reads.
export type LoadState = 'loading' | 'ready' | 'failed';

export abstract class Loadable {
  state = $state<LoadState>('loading');
  /** Why loading failed, for the error screen. */
  failure = $state<string | undefined>();
  #loading: Promise<void> | undefined;

  /** Loads or refreshes; concurrent calls share one request. */
  load(): Promise<void> {
    this.#loading ??= this.read().finally(() => (this.#loading = undefined));
    return this.#loading;
  }

  async retry(): Promise<void> {
    this.state = 'loading';
    this.failure = undefined;
    await this.load();
  }

  /** Reads the view and sets the state (and failure); settles without throwing. */
  protected abstract read(): Promise<void>;
}
