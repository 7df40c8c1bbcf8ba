// Webhook delivery (CONTRACT §5): flat compact JSON with timestamp and webhookId, signed with the
// emulator's Ed25519 key in x-ghl-signature, redelivered only on 429, with injectable faults.
//
// Ordering: each app has one FIFO whose events are sent in emission order with up to
// `webhookConcurrency` requests in flight (a guess, see README: CONTRACT §5.1 documents no
// delivery concurrency and promises no order), so with more than one in flight events may arrive
// out of order; with 1, events reach a receiver in emission order unless a fault or a 429 redelivery
// says otherwise. Different apps deliver independently. A 429 does not block the queue: the
// redelivery is re-queued later, behind whatever was emitted meanwhile (as a real 10-minute retry
// would be).
import { randomUUID, sign } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Emulator } from './emulator.ts';
import { isoAt, type MarketplaceApp } from './state.ts';

export interface DeliveryAttempt {
  webhookId: string;
  type: string;
  appId: string;
  url: string;
  /** 1 for the first delivery, 2.. for redeliveries after 429. */
  attempt: number;
  at: string;
  status?: number;
  error?: string;
  /** What happened: delivered (2xx), retry-scheduled (429), failed (final), dropped (fault). */
  outcome: 'delivered' | 'retry-scheduled' | 'failed' | 'dropped';
  /** The fault that shaped this delivery, if any ('duplicate' marks the second copy). */
  fault?: WebhookFaultMode;
  body: string;
}

export type WebhookFaultMode = 'duplicate' | 'drop' | 'delay' | 'reorder';

export interface WebhookFault {
  id: number;
  mode: WebhookFaultMode;
  /** Events this fault still applies to. */
  remaining: number;
  delayMs?: number;
  /** Only events of this type (e.g. 'ContactUpdate'); any event when absent. */
  type?: string;
}

interface Job {
  appId: string;
  url: string;
  webhookId: string;
  type: string;
  body: string;
  /** Computed at first delivery: Ed25519 signing costs ~0.2 ms, kept off the API request path. */
  signature?: string;
  attempt: number;
  fault?: WebhookFaultMode | undefined;
}

/** Last attempts kept for GET /__emulator/webhooks; benchmarks emit hundreds of thousands. */
const LOG_LIMIT = 100_000;

/** Guess: HighLevel's jitter is undocumented; we add up to 10 % of the interval. */
const JITTER = 0.1;

/**
 * Events gated by scopes (CONTRACT §5.1: "events are gated by scopes"). An app gets the event when
 * it holds the read or write scope of the resource. Unlisted types (INSTALL, UNINSTALL,
 * PLAN_CHANGE, ...) always go out.
 */
const EVENT_SCOPES: [prefix: string, scopes: string[]][] = [
  ['Contact', ['contacts.readonly', 'contacts.write']],
  ['Note', ['contacts.readonly', 'contacts.write']],
  ['Task', ['contacts.readonly', 'contacts.write']],
  ['User', ['users.readonly', 'users.write']],
  ['Location', ['locations.readonly', 'locations.write']],
];

export function appReceives(app: MarketplaceApp, type: string): boolean {
  const gate = EVENT_SCOPES.find(([prefix]) => type.startsWith(prefix));
  return !gate || gate[1].some((s) => app.scopes.includes(s));
}

export class WebhookDispatcher {
  log: DeliveryAttempt[] = [];
  faults: WebhookFault[] = [];
  private nextFaultId = 1;
  private queues = new Map<string, Job[]>();
  /** Requests in flight per app (at most webhookConcurrency each). */
  private inFlight = new Map<string, number>();
  /** Reorder faults: jobs waiting for the next event of their app. */
  private held = new Map<string, Job[]>();
  private timers = new Set<NodeJS.Timeout>();
  private controllers = new Set<AbortController>();
  /** Bumped by reset/close so work started before it never touches the new state. */
  private generation = 0;
  private idleWaiters: (() => void)[] = [];
  // node:http with keep-alive rather than fetch: about three times the throughput, which matters
  // for benchmarks that emit tens of thousands of events.
  private readonly agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

  constructor(private readonly emu: Emulator) {}

  /** Sends an event to the app's webhook URL; returns at once (delivery is asynchronous). */
  send(app: MarketplaceApp, payload: Record<string, unknown>): void {
    if (!app.webhookUrl) return;
    const type = typeof payload.type === 'string' ? payload.type : 'unknown';
    if (!appReceives(app, type)) return;
    const webhookId = randomUUID();
    const body = JSON.stringify({ ...payload, timestamp: isoAt(this.emu.now()), webhookId });
    const job: Job = { appId: app.appId, url: app.webhookUrl, webhookId, type, body, attempt: 1 };

    const fault = this.takeFault(type);
    if (fault) job.fault = fault.mode;
    switch (fault?.mode) {
      case 'drop':
        this.record(job, { outcome: 'dropped' });
        this.releaseHeld(app.appId);
        return;
      case 'duplicate':
        // Same bytes and webhookId twice; only the second copy is marked as the fault.
        this.enqueue({ ...job, fault: undefined });
        this.enqueue(job);
        break;
      case 'delay':
        // The delayed event leaves the FIFO, so later events overtake it.
        this.later(fault.delayMs ?? 0, () => this.enqueue(job));
        break;
      case 'reorder': {
        const held = this.held.get(app.appId) ?? [];
        held.push(job);
        this.held.set(app.appId, held);
        return;
      }
      default:
        this.enqueue(job);
    }
    this.releaseHeld(app.appId);
  }

  addFault(input: { mode: WebhookFaultMode; count?: number; delayMs?: number; type?: string }): WebhookFault {
    const fault: WebhookFault = {
      id: this.nextFaultId++,
      mode: input.mode,
      remaining: input.count ?? 1,
      ...(input.delayMs !== undefined ? { delayMs: input.delayMs } : {}),
      ...(input.type !== undefined ? { type: input.type } : {}),
    };
    this.faults.push(fault);
    return fault;
  }

  clearFaults(): void {
    this.faults = [];
  }

  clearLog(): void {
    this.log = [];
  }

  /**
   * Deliveries not yet settled: queued, in flight, delayed or waiting for a 429 redelivery.
   * Events held by a reorder fault are not counted: they wait for another event.
   */
  pending(): number {
    let queued = 0;
    for (const q of this.queues.values()) queued += q.length;
    for (const n of this.inFlight.values()) queued += n;
    return queued + this.timers.size;
  }

  /** Resolves once every delivery has settled (see pending()). */
  idle(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  reset(): void {
    this.stop();
    this.log = [];
    this.faults = [];
  }

  /** Cancels pending timers and in-flight requests. */
  close(): void {
    this.stop();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private stop(): void {
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    for (const c of this.controllers) c.abort(new Error('emulator stopped'));
    this.timers.clear();
    this.controllers.clear();
    this.queues.clear();
    this.inFlight.clear();
    this.held.clear();
    this.settle();
  }

  private takeFault(type: string): WebhookFault | undefined {
    const fault = this.faults.find((f) => f.remaining > 0 && (!f.type || f.type === type));
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining <= 0) this.faults = this.faults.filter((f) => f !== fault);
    return fault;
  }

  /** Sends events held by a reorder fault after the event just emitted. */
  private releaseHeld(appId: string): void {
    const held = this.held.get(appId);
    if (!held) return;
    this.held.delete(appId);
    for (const job of held) this.enqueue(job);
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
      this.settle();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private enqueue(job: Job): void {
    const queue = this.queues.get(job.appId);
    if (queue) queue.push(job);
    else this.queues.set(job.appId, [job]);
    this.pump(job.appId);
  }

  /** Starts the app's queued deliveries, oldest first, while fewer than webhookConcurrency are in flight. */
  private pump(appId: string): void {
    const generation = this.generation;
    const queue = this.queues.get(appId);
    let running = this.inFlight.get(appId) ?? 0;
    while (queue?.length && running < this.emu.config.webhookConcurrency) {
      const job = queue.shift()!;
      running++;
      const done = () => {
        if (generation !== this.generation) return;
        const left = (this.inFlight.get(appId) ?? 1) - 1;
        if (left > 0) this.inFlight.set(appId, left);
        else this.inFlight.delete(appId);
        this.pump(appId);
        this.settle();
      };
      void this.deliver(job, generation).then(done, done);
    }
    if (running > 0) this.inFlight.set(appId, running);
    if (queue?.length === 0) this.queues.delete(appId);
  }

  private async deliver(job: Job, generation: number): Promise<void> {
    job.signature ??= sign(null, Buffer.from(job.body), this.emu.webhookKey.privateKey).toString('base64');
    const controller = new AbortController();
    this.controllers.add(controller);
    const timeoutMs = this.emu.config.webhookTimeoutMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timeout'));
    }, timeoutMs);
    let status: number | undefined;
    let error: string | undefined;
    try {
      status = await this.post(job, controller.signal);
    } catch (err) {
      error = timedOut ? `timeout after ${timeoutMs} ms` : describe(err);
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
    }
    if (generation !== this.generation) return;

    // CONTRACT §5.1: only a 429 is retried; 5xx, other 4xx, timeouts and network errors are final.
    if (status === 429 && job.attempt <= this.emu.config.webhookMaxRetries) {
      this.record(job, { outcome: 'retry-scheduled', status });
      const interval = this.emu.config.webhookRetryIntervalMs;
      this.later(interval + Math.random() * interval * JITTER, () =>
        this.enqueue({ ...job, attempt: job.attempt + 1 }),
      );
      return;
    }
    const delivered = status !== undefined && status >= 200 && status < 300;
    this.record(job, {
      outcome: delivered ? 'delivered' : 'failed',
      ...(status !== undefined ? { status } : {}),
      ...(error ? { error } : {}),
    });
  }

  /** POSTs the job's body; resolves with the status once the whole answer is read. */
  private post(job: Job, signal: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => {
      const url = new URL(job.url);
      const https = url.protocol === 'https:';
      if (!https && url.protocol !== 'http:') return reject(new Error(`unsupported URL scheme ${url.protocol}`));
      const headers = {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(job.body)),
        'x-ghl-signature': job.signature!,
      };
      // Guess: HighLevel does not follow redirects; a 3xx counts as a final non-2xx answer.
      const req = (https ? httpsRequest : httpRequest)(
        url,
        { method: 'POST', headers, agent: https ? this.agents.https : this.agents.http, signal },
        (res) => {
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('close', () => {
            if (!res.complete) reject(new Error('connection closed before the answer was complete'));
          });
          res.on('error', reject);
          res.resume();
        },
      );
      req.on('error', reject);
      req.end(job.body);
    });
  }

  private record(job: Job, result: Pick<DeliveryAttempt, 'outcome' | 'status' | 'error'>): void {
    this.log.push({
      webhookId: job.webhookId,
      type: job.type,
      appId: job.appId,
      url: job.url,
      attempt: job.attempt,
      at: isoAt(this.emu.now()),
      ...result,
      ...(job.fault ? { fault: job.fault } : {}),
      body: job.body,
    });
    // Trimmed in chunks: shifting a 100,000-entry array on every push would cost O(n) each time.
    if (this.log.length > LOG_LIMIT + LOG_LIMIT / 10) this.log.splice(0, this.log.length - LOG_LIMIT);
  }

  private settle(): void {
    if (this.pending() > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code && e.message && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : (e.message ?? String(err));
}
