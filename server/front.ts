// Tandem in two threads, as `npm start` runs it. The front (this file, the process's main thread)
// owns the public port: it receives HighLevel's webhooks itself (checked as the app's route checks
// them, server/highlevel/webhook-receipt.ts, and committed to the staged inbox, db/staged-inbox.ts,
// before the answer) and passes every other request on to the app, which runs on a worker thread
// (server/app-thread.ts) exactly as startTandem runs it in one thread: routes, sync engine,
// one-time operations, sandbox.
// Why: at 1,000 webhooks a second the sync engine's work (the drain's transactions, its garbage)
// held the one event loop for milliseconds at a time, and every webhook arriving then waited
// (bench/README.md). Here an acknowledgement waits for nothing but its own commit: the front has
// its own event loop and heap, writes a file no other thread writes, and never takes the main
// database's write lock.
import http from 'node:http';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { loadConfig, type Mode } from './config.ts';
import { BODY_LIMIT, errorBody } from './errors.ts';
import { checkWebhook, NOT_STORED, type ReceiptDeps } from './highlevel/webhook-receipt.ts';
import { WEBHOOK_BODY_LIMIT } from './highlevel/webhook-events.ts';
import { parseWebhookPublicKey } from './highlevel/webhook-signature.ts';
import { loggerOptions } from './log.ts';
import { prepareSandbox, type SandboxInfo } from './sandbox.ts';
import { listenFailure, stagedInboxFor, startEnvironment, StartError, type StartOptions } from './start.ts';
import { openStagedInbox } from '../db/staged-inbox.ts';
import { startCheckpointer } from '../db/checkpointer.ts';
import { writeProblem } from '../db/client.ts';
import { openInboxLookup } from '../db/webhook-inbox.ts';
import { createStagedWriter } from './installs/staged-writer.ts';
import { FRONT_SECRET_HEADER, newFrontSecret } from './security/front-secret.ts';

const WEBHOOK_PATH = '/webhooks/highlevel';

export type FrontOptions = Pick<StartOptions, 'env' | 'reset' | 'port' | 'emulatorPort' | 'dataDir' | 'quiet' | 'sync' | 'operations'>;

/** What the app thread reports once it has started (plain data: it crosses threads). */
export interface AppStarted {
  mode: Mode;
  clientId: string;
  tandemUrl: string;
  sandboxUrl?: string;
  sandbox?: SandboxInfo;
  sandboxFile?: string;
}

export interface RunningFront extends AppStarted {
  /** The app thread's own address (tests and benchmarks). */
  appUrl: string;
  /** Tandem's database file (the app thread's; others may read it). */
  databasePath: string;
  close(): Promise<void>;
}

/** Messages from the app thread. */
export type AppMessage =
  | { type: 'listening'; port: number; webhookPublicKeyPem: string; appId: string; databasePath: string }
  | { type: 'started'; started: AppStarted }
  | { type: 'failed'; name: string; message: string; stack?: string; code?: string }
  | { type: 'closed' };

/** What the front gives the app thread (workerData). */
export interface AppThreadData {
  options: FrontOptions & { env: NodeJS.ProcessEnv };
  stagedPath: string;
  shared: SharedArrayBuffer;
  /**
   * Put on every request the front passes on: the app believes X-Forwarded-For only on requests
   * bearing it (server/security/front-secret.ts). Made at each start; never logged.
   */
  frontSecret: string;
}

export async function startFront(options: FrontOptions = {}): Promise<RunningFront> {
  const { env, mode, settings } = await startEnvironment(options);
  // With a real HighLevel app the front checks webhooks from its own reading of the configuration,
  // so they are taken (staged) while the app thread starts, e.g. during a restart, instead of
  // answered 429 (HighLevel redelivers those only about ten minutes later). The sandbox's key
  // exists once the app thread has started the emulator.
  let receipt: ReceiptDeps | undefined;
  if (mode === 'highlevel') {
    const { highlevel } = loadConfig(env, 'highlevel');
    receipt = { webhookKey: parseWebhookPublicKey(highlevel.webhookPublicKeyPem), appId: highlevel.appId };
  }
  const port = Number(env.PORT ?? settings.port);

  // An in-memory database (DATABASE_PATH=:memory:) is the app thread's alone: webhooks are then
  // staged in DATA_DIR, and redeliveries are recognised while they are staged only.
  const inMemory = settings.databasePath === ':memory:';
  const stagedPath = stagedInboxFor(settings);
  // The sandbox's files are sorted out before the staged inbox opens: when it starts over (--reset,
  // or a first start left half made), the events staged for the old world go with it, or the app
  // thread would replay them into the new database. It refuses, deleting nothing, when its files
  // cannot be read.
  const prepared = mode === 'sandbox' ? prepareSandbox({ dataDir: settings.dataDir, databasePath: settings.databasePath, stagedPath, reset: options.reset }) : {};
  const staged = openStagedInbox(stagedPath);
  const stagedProblem = writeProblem(staged);
  if (stagedProblem) {
    staged.close();
    throw new StartError(`Tandem cannot start: the staged webhook inbox ${stagedPath} cannot be written: ${stagedProblem}. Make it and its folder writable for the user running Tandem.`);
  }
  const checkpointer = startCheckpointer(staged.sqlite, stagedPath, (message) => process.emitWarning(`staged inbox checkpoints fell back to SQLite's own: ${message}`));
  const shared = new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT);
  const seqs = new BigInt64Array(shared);

  // Redacting as the app's logger does (server/log.ts).
  const log: Logger = pino({ ...loggerOptions(settings), ...(options.quiet ? { level: 'silent' } : {}) });
  if (prepared.notice) log.warn(prepared.notice);
  let inbox: ReturnType<typeof openInboxLookup> | undefined;
  let appPort: number | undefined;
  const agent = new http.Agent({ keepAlive: true });
  const frontSecret = newFrontSecret();

  const writer = createStagedWriter(staged, seqs, (err) => log.error({ err }, 'webhooks not staged; asking HighLevel to redeliver'));
  const proxy = createProxy({ appPort: () => appPort, agent, frontSecret, log });

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === WEBHOOK_PATH && req.method === 'POST') receive(req, res);
    else proxy(req, res);
  });
  // As Fastify's defaults: HighLevel keeps connections alive between deliveries.
  server.keepAliveTimeout = 72_000;

  function receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > WEBHOOK_BODY_LIMIT) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooLarge) return answer(res, 413, errorBody('payload_too_large', 'Request body is too large'));
      if (!receipt) {
        // The app thread is still starting: HighLevel redelivers a 429.
        res.setHeader('retry-after', '5');
        return answer(res, 429, errorBody(NOT_STORED.code, 'Tandem is starting; please redeliver.'));
      }
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const checked = checkWebhook(raw, req.headers['x-ghl-signature'], Date.now(), receipt);
      if (!checked.ok) {
        const { refusal } = checked;
        if (refusal.log) log.warn(refusal.log.fields, refusal.log.message);
        return answer(res, refusal.status, errorBody(refusal.code, refusal.message));
      }
      const { event } = checked;
      // A redelivery of an event the app already took in: answered as the inbox would. When the
      // lookup fails, the event is staged anyway (moving it twice is harmless).
      if (alreadyInInbox(event.webhookId)) return answer(res, 200, { received: true, duplicate: true });
      writer.store(event).then(
        (stored) => answer(res, 200, { received: true, duplicate: !stored }),
        () => {
          res.setHeader('retry-after', String(NOT_STORED.retryAfterSeconds));
          answer(res, NOT_STORED.status, errorBody(NOT_STORED.code, NOT_STORED.message));
        },
      );
    });
  }

  function alreadyInInbox(webhookId: string): boolean {
    try {
      return inbox?.has(webhookId) ?? false;
    } catch (err) {
      log.warn({ err, webhookId }, 'could not look the webhook up in the inbox; staging it');
      return false;
    }
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, settings.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    shutDown();
    throw listenFailure(err, settings);
  }

  // The public port is the front's (env.PORT); the app's own is picked by the app thread. The
  // sandbox was prepared (and reset) above, so the app thread finds it as it is now.
  const { port: _public, reset: _reset, ...rest } = options;
  const data: AppThreadData = { options: { ...rest, env }, stagedPath, shared, frontSecret };
  const worker = startAppThread(data);
  let closed: (() => void) | undefined;
  let started: AppStarted;
  let databasePath = settings.databasePath;
  try {
    started = await new Promise<AppStarted>((resolve, reject) => {
      worker.on('message', (m: AppMessage) => {
        if (m.type === 'listening') {
          appPort = m.port;
          databasePath = m.databasePath;
          // The sandbox's key, known now (a real app's was read from the configuration at start).
          receipt ??= { webhookKey: parseWebhookPublicKey(m.webhookPublicKeyPem), appId: m.appId };
          // Read-only: the front never writes the main database (it only asks whether an event is in the inbox).
          if (!inMemory) inbox = openInboxLookup(m.databasePath);
        } else if (m.type === 'started') resolve(m.started);
        else if (m.type === 'failed') reject(rebuildError(m));
        else if (m.type === 'closed') closed?.();
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`Tandem's app thread exited (${code}) while starting`)));
    });
  } catch (err) {
    await worker.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    shutDown();
    throw err;
  }
  // The address operators know Tandem by; the sandbox says it in its banner instead.
  log[started.mode === 'sandbox' ? 'debug' : 'info']({ address: `http://${settings.host}:${(server.address() as AddressInfo).port}`, publicUrl: started.tandemUrl }, 'Tandem listening');
  worker.removeAllListeners('error').removeAllListeners('exit');
  worker.on('error', (err) => log.error({ err }, "Tandem's app thread failed"));
  let exited = false;
  worker.on('exit', (code) => {
    exited = true;
    if (!closing) {
      log.fatal({ code }, "Tandem's app thread exited; stopping");
      process.exitCode = 1;
      void close();
    }
  });

  function shutDown(): void {
    writer.close();
    checkpointer.stop();
    staged.close();
    inbox?.close();
    agent.destroy();
  }

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      // Stop taking requests, let the app finish its work (and its last move), then close the files.
      server.close();
      server.closeIdleConnections();
      const timer = setInterval(() => server.closeIdleConnections(), 25);
      // (An app thread that has exited already has nothing left to finish.)
      if (!exited) {
        await new Promise<void>((resolve) => {
          closed = resolve;
          worker.once('exit', () => resolve());
          worker.postMessage({ type: 'close' });
        });
      }
      clearInterval(timer);
      await worker.terminate();
      await writer.drain();
      shutDown();
    })();
    return closing;
  }

  return { ...started, appUrl: `http://127.0.0.1:${appPort}`, databasePath, close };
}

/**
 * Passes a request on to the app thread and its answer back (every request but a webhook's): the
 * client's address appended to X-Forwarded-For, and the front's secret put on (server/security/front-secret.ts).
 */
export function createProxy(target: { appPort: () => number | undefined; agent: http.Agent; frontSecret: string; log: Logger }): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { agent, frontSecret, log } = target;
  return (req, res) => {
    const appPort = target.appPort();
    if (appPort === undefined) {
      res.setHeader('retry-after', '1');
      return answer(res, 503, errorBody('starting', 'Tandem is starting; try again in a moment.'));
    }
    // A body larger than any route takes is refused here. Passed on, the app refuses it before
    // reading it and closes its side, and the front, still sending it, often met the broken pipe
    // before the app's answer: a 502 instead of the 413 (QA). Node reads and drops the rest.
    if (Number(req.headers['content-length']) > BODY_LIMIT) return answer(res, 413, TOO_LARGE);
    const headers = withoutHopHeaders(req.headers);
    const peer = req.socket.remoteAddress ?? '';
    const forwarded = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = forwarded ? `${Array.isArray(forwarded) ? forwarded.join(', ') : forwarded}, ${peer}` : peer;
    // Marks the request as the front's; replaces whatever a client sent under that name.
    headers[FRONT_SECRET_HEADER] = frontSecret;
    /** Whether the app's answer has begun; and whether the front refused the body itself. */
    let answered = false;
    let refused = false;
    const upstream = http.request({ host: '127.0.0.1', port: appPort, method: req.method, path: req.url, headers, agent }, (up) => {
      answered = true;
      res.writeHead(up.statusCode ?? 502, withoutHopHeaders(up.headers));
      up.pipe(res);
      // An answer cut short by the app's side is cut short for the client too.
      up.on('close', () => {
        if (!up.complete) res.destroy();
      });
    });
    /** Whether the client went away before its answer was sent (a tab closed, a request aborted). */
    let clientGone = false;
    upstream.on('error', (err) => {
      if (refused) return;
      const where = { method: req.method, path: (req.url ?? '').split('?')[0] };
      const code = (err as NodeJS.ErrnoException).code;
      // Ending the upstream request for a client that left fails it ("socket hang up"): that is
      // the client's doing, an everyday event, not the app thread failing.
      if (clientGone) return log.debug({ ...where, code }, 'client went away before the app answered');
      // The app answered before reading the whole body (a refusal: 401, 413, 415) and closed its
      // side: the pipe broke on the body, and the answer goes on to the client as it is.
      if (answered) return log.debug({ ...where, code }, 'the app answered before it read the whole body');
      log.error({ err, ...where }, 'app thread did not answer');
      if (!res.headersSent) answer(res, 502, errorBody('bad_gateway', 'Tandem could not answer; please try again.'));
      else res.destroy();
    });
    // A browser that goes away (a progress stream closed) ends the upstream request too.
    res.on('close', () => {
      if (res.writableFinished) return;
      clientGone = true;
      upstream.destroy();
    });
    // A body sent without its length is counted as it comes: past the limit, refused as above.
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_LIMIT || refused || answered) return;
      refused = true;
      req.unpipe(upstream);
      upstream.destroy();
      answer(res, 413, TOO_LARGE);
    });
    req.pipe(upstream);
  };
}

const TOO_LARGE = errorBody('payload_too_large', `The request body is larger than Tandem takes (at most ${BODY_LIMIT / (1024 * 1024)} MiB); send less, in several requests if needed.`);

/**
 * Headers about one connection, not the message (RFC 9110 §7.6.1): the front's connections to the
 * client and to the app are not the same, and Node frames each message itself.
 */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

function withoutHopHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(HOP_HEADERS);
  // Connection may name more headers that are about this hop only.
  for (const name of String(headers.connection ?? '').split(',')) if (name.trim()) named.add(name.trim().toLowerCase());
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !named.has(name)) out[name] = value;
  return out;
}

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  });
  res.end(json);
}

function rebuildError(m: Extract<AppMessage, { type: 'failed' }>): Error {
  // A configuration the person starting Tandem must fix is reported as startTandem reports it.
  const err = m.name === 'ConfigError' || m.name === 'StartError' ? new StartError(m.message) : new Error(m.message);
  if (m.code) (err as NodeJS.ErrnoException).code = m.code;
  // An unexpected failure keeps the app thread's stack, where it happened.
  if (m.stack && !(err instanceof StartError)) err.stack = m.stack;
  return err;
}

/** The app thread: app-thread.ts with tsx's loader registered, since Node does not run TypeScript itself. */
function startAppThread(data: AppThreadData): Worker {
  // The ESM entry of tsx's API, found through its package.json (require.resolve picks the CommonJS one).
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const api = (require(manifest) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default;
  const tsx = pathToFileURL(join(dirname(manifest), api)).href;
  const entry = new URL('./app-thread.ts', import.meta.url).href;
  const source = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(source, { eval: true, workerData: data });
}
