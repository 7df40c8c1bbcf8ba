// The app thread of a two-thread Tandem (server/front.ts): starts Tandem as startTandem always
// does, listening on a loopback port of its own behind the front, and moves the webhooks the front
// staged (db/staged-inbox.ts) into the webhook inbox, from where the sync loops and the inbox
// processor apply them as they would have in one thread.
import { readlinkSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { openStagedInbox } from '../db/staged-inbox.ts';
import type { AppMessage, AppThreadData } from './front.ts';
import { MOVED, STAGED } from './installs/staged-writer.ts';
import { loggerOptions } from './log.ts';
import type { Services } from './services.ts';
import { startTandem, type RunningTandem } from './start.ts';

/** The app thread's name as the OS shows it. */
export const APP_THREAD_NAME = 'tandem-app';
/**
 * The app thread's nice value (Linux): when the machine has less CPU than both threads want (a
 * full sweep, a pull or an import while webhooks stream in), the front's acknowledgements go first
 * and the app's work, which can wait, waits. During a full sweep of 20,000 contacts under 1,000
 * webhooks a second on 2 cores, the acknowledgement p99 was 9.8–28.7 ms with it against 25.4–56.6
 * ms without, the sweep as fast (three alternating pairs, bench/webhook-ack.ts with
 * BENCH_WEBHOOK_PULL). The threads the app thread starts (its checkpoint worker) inherit it.
 */
export const APP_THREAD_NICE = 10;
/** Staged events moved in one transaction of the inbox writer. */
const MOVE_BATCH = 500;
/** After a failed move (the database refused the write), the next attempt. */
const MOVE_RETRY_MS = 1000;
/** The mover also looks for staged events this often when no wake-up came (belt and braces). */
const IDLE_LOOK_MS = 1000;
/**
 * After the front's commit wakes the mover, how long it lets more webhooks gather before it reads
 * them. The front commits about once per webhook at 1,000 a second, and each move (a read of the
 * staged file, a commit into the inbox, a pass of the location's loop) has a fixed cost: moved one
 * at a time, the read alone took 67 µs of the app thread per webhook. With 5 ms the app thread
 * spent 252–319 µs per webhook against 321–378 (bench/webhook-ack.ts, three alternating pairs). A
 * webhook reaches its loop this much later; its acknowledgement does not wait for the move.
 */
const MOVE_COALESCE_MS = 5;

export interface Mover {
  /** Moves what is staged now, then stops. */
  stop(): Promise<void>;
}

/**
 * Moves staged events into the inbox in order, publishing the last seq moved in `seqs[MOVED]` so
 * the front deletes them; waits on `seqs[STAGED]` for more. A move that fails is retried: the
 * events stay staged (acknowledged, durable) until the inbox has them.
 */
export function startMover(
  stagedPath: string,
  seqs: BigInt64Array,
  services: Pick<Services, 'webhookInbox'>,
  log: FastifyBaseLogger,
  options: { retryMs?: number } = {},
): Mover {
  const retryMs = options.retryMs ?? MOVE_RETRY_MS;
  const staged = openStagedInbox(stagedPath, { readonly: true });
  let moved = 0;
  let stopping = false;
  let retry: { timer: NodeJS.Timeout; wake(): void } | undefined;

  const done = (async () => {
    // Whether to read again at once: at the start (events a previous process left staged), after
    // a full batch (a backlog) and after a failed move. Otherwise the mover waits for the front's
    // next commit, then MOVE_COALESCE_MS more.
    let readNow = true;
    for (;;) {
      if (!readNow && !stopping) {
        const seen = Atomics.load(seqs, STAGED);
        if (seen <= BigInt(moved)) {
          const wait = Atomics.waitAsync(seqs, STAGED, seen, IDLE_LOOK_MS);
          if (wait.async) await wait.value;
        }
        if (!stopping) await new Promise((resolve) => setTimeout(resolve, MOVE_COALESCE_MS));
      }
      try {
        const batch = staged.after(moved, MOVE_BATCH);
        readNow = batch.length === MOVE_BATCH;
        if (batch.length === 0) {
          if (stopping) break;
          continue;
        }
        await Promise.all(batch.map(({ seq: _seq, ...event }) => services.webhookInbox.store(event)));
        moved = batch[batch.length - 1]!.seq;
        Atomics.store(seqs, MOVED, BigInt(moved));
      } catch (err) {
        // Reading the staged file or writing the inbox failed: the events stay staged.
        log.error({ err }, 'staged webhooks not moved into the inbox; retrying');
        if (stopping) break;
        await new Promise<void>((resolve) => {
          retry = { timer: setTimeout(resolve, retryMs), wake: resolve };
        });
        retry = undefined;
        readNow = true;
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      Atomics.notify(seqs, STAGED);
      if (retry) {
        clearTimeout(retry.timer);
        retry.wake();
      }
      await done;
      staged.close();
    },
  };
}

async function main(): Promise<void> {
  // Named for `top -H` and /proc, and behind the front in the CPU's queue (APP_THREAD_NICE). Linux
  // only: elsewhere the thread keeps its name and its priority.
  try {
    writeFileSync('/proc/thread-self/comm', APP_THREAD_NAME);
    // /proc/thread-self is `<pid>/task/<tid>`; setpriority on a thread id sets that thread's nice value.
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').at(-1)), APP_THREAD_NICE);
  } catch {
    // Not Linux, or the priority could not be lowered: the thread runs as it is.
  }
  const port = parentPort!;
  const data = workerData as AppThreadData;
  const seqs = new BigInt64Array(data.shared);
  const post = (m: AppMessage) => port.postMessage(m);
  let mover: Mover | undefined;
  let tandem: RunningTandem;
  try {
    tandem = await startTandem({
      ...data.options,
      listen: { port: 0, host: '127.0.0.1' },
      // The app believes X-Forwarded-For only on requests bearing it (server/security/front-secret.ts).
      frontSecret: data.frontSecret,
      onListening({ port: appPort, config, services }) {
        const log = data.options.quiet ? (pino({ level: 'silent' }) as FastifyBaseLogger) : (pino(loggerOptions(config)) as FastifyBaseLogger);
        mover = startMover(data.stagedPath, seqs, services, log);
        post({
          type: 'listening',
          port: appPort,
          webhookPublicKeyPem: config.highlevel.webhookPublicKeyPem,
          appId: config.highlevel.appId,
          databasePath: config.databasePath,
        });
      },
    });
  } catch (err) {
    await mover?.stop();
    const e = err as NodeJS.ErrnoException;
    const cause = (e.cause as Error | undefined)?.message;
    post({
      type: 'failed',
      name: e.name ?? 'Error',
      message: `${e.message ?? String(err)}${cause ? ` (${cause})` : ''}`,
      ...(e.stack ? { stack: e.stack } : {}),
      ...(e.code ? { code: e.code } : {}),
    });
    return;
  }
  post({
    type: 'started',
    started: {
      mode: tandem.mode,
      clientId: tandem.config.highlevel.clientId,
      tandemUrl: tandem.tandemUrl,
      ...(tandem.sandboxUrl ? { sandboxUrl: tandem.sandboxUrl } : {}),
      ...(tandem.sandbox ? { sandbox: tandem.sandbox } : {}),
      ...(tandem.sandboxFile ? { sandboxFile: tandem.sandboxFile } : {}),
    },
  });
  port.on('message', (m: { type: string }) => {
    if (m.type !== 'close') return;
    void (async () => {
      // The last staged events first, while the inbox writer still runs; then the app.
      await mover?.stop();
      await tandem.close();
      post({ type: 'closed' });
    })();
  });
}

if (parentPort) await main();
