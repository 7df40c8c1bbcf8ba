// What the benchmarks that keep the emulator out of Tandem's process share: a server started as a
// child process, and Tandem (in the benchmark's own process, with a real SQLite file) registered
// as an app of that emulator and installed on one location. HighLevel is never in Tandem's process,
// so its work is not measured as Tandem's, and the two use both cores as they would in production.
import { spawn, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startTandem, type RunningTandem, type StartOptions } from '../server/start.ts';
import type { Clock } from '../server/clock.ts';
import { startFront, type RunningFront } from '../server/front.ts';
import type { Services } from '../server/services.ts';
import type { RequestLogEntry } from '../emulator/emulator.ts';
import { getSyncState } from '../db/sync-state.ts';
import { call, control } from '../test/helpers/emulator.ts';
import { appRegistration, createAgency, installLocation, tandemEnv, type TestApp } from '../test/helpers/tandem.ts';

export const benchFile = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** A server script of bench/ or emulator/ in a child process; resolves with its base URL once it listens. */
export function spawnServer(script: string, args: string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', benchFile(script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (url) {
        child.stdout!.removeAllListeners('data').resume();
        resolve({ url, child });
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before listening: ${out}`)));
  });
}

export interface BenchWorld {
  emulatorUrl: string;
  /** The emulator's Ed25519 private key (PEM file): the webhook load generator signs with it. */
  webhookKeyFile: string;
  app: TestApp;
  tandem: RunningTandem;
  tandemUrl: string;
  location: { id: string; name: string; privateToken: string };
  /** A temporary folder of this world's, removed by close. */
  dir: string;
  /**
   * Stops the one-thread Tandem above and starts the same Tandem (same port, data and app) as
   * `npm start` runs it: the front on this thread, the app on a worker (server/front.ts). From then
   * on `tandem` is closed: read the database through `databasePath`.
   */
  startTwoThreads(): Promise<RunningFront>;
  close(): Promise<void>;
}

/**
 * The emulator in a child process, Tandem here on a free port with its data in a temporary folder,
 * and Tandem installed on one new location through the real OAuth flow.
 */
export async function benchWorld(options: Pick<StartOptions, 'sync' | 'operations'> = {}): Promise<BenchWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-'));
  const webhookKeyFile = join(dir, 'webhook-key.pem');
  const emulator = await spawnServer('../emulator/cli.ts', ['--port', '0', '--webhook-key', webhookKeyFile]);
  let tandem: RunningTandem | undefined;
  let front: RunningFront | undefined;
  const close = async () => {
    await tandem?.close();
    await front?.close();
    emulator.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const info = await control<{ webhookPublicKeyPem: string }>(emulator.url, 'GET', '/info');
    const port = await freePort('127.0.0.1');
    const tandemUrl = `http://127.0.0.1:${port}`;
    const app = await control<TestApp>(emulator.url, 'POST', '/apps', appRegistration(tandemUrl));
    const startOptions = {
      env: tandemEnv(app, emulator.url, info.webhookPublicKeyPem, tandemUrl),
      port,
      dataDir: join(dir, 'data'),
      quiet: true,
      ...(options.sync ? { sync: options.sync } : {}),
      ...(options.operations ? { operations: options.operations } : {}),
    };
    tandem = await startTandem(startOptions);
    const agency = await createAgency({ highlevelUrl: emulator.url }, { locations: ['Cedar Dental Studio'] });
    const { id, name, privateToken } = agency.locations[0]!;
    if (!privateToken) throw new Error('the emulator gave the location no private integration token');
    const location = { id, name, privateToken };
    const install = await installLocation({ url: tandemUrl, highlevelUrl: emulator.url, app }, location.id, { userId: agency.adminId });
    if (install.status !== 200) throw new Error(`install failed: ${install.status}`);
    const one = tandem;
    const startTwoThreads = async () => {
      await one.close();
      front = await startFront(startOptions);
      return front;
    };
    return { emulatorUrl: emulator.url, webhookKeyFile, app, tandem, tandemUrl, location, dir, startTwoThreads, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Tandem's requests about the world's location after `seq`, from the emulator's log. */
export async function requestsSince(w: BenchWorld, seq: number): Promise<RequestLogEntry[]> {
  const { requests } = await control<{ requests: RequestLogEntry[] }>(w.emulatorUrl, 'GET', `/requests?locationId=${w.location.id}&since=${seq}`);
  return requests.filter((r) => r.appId === w.app.appId);
}

/** The seq of Tandem's latest request about the location: requestsSince(w, lastSeq(w)) is what came after. */
export async function lastSeq(w: BenchWorld): Promise<number> {
  return (await requestsSince(w, 0)).at(-1)?.seq ?? 0;
}

/**
 * Runs the location's passes back to back, as the supervisor's timer would (a deferred pass is
 * run again at its retryAt), until `finished()`. Returns the passes and deferrals counted.
 */
export async function drive(t: { services: Pick<Services, 'sync'>; clock: Clock; location: { id: string } }, finished: () => boolean, timeoutMs: number): Promise<{ passes: number; deferrals: number; errors: string[] }> {
  const deadline = Date.now() + timeoutMs;
  let passes = 0;
  let deferrals = 0;
  const errors: string[] = [];
  while (!finished()) {
    if (Date.now() > deadline) throw new Error(`sync did not finish within ${timeoutMs} ms`);
    const r = await t.services.sync.runOnce(t.location.id);
    passes++;
    if (r.error) errors.push(r.error);
    if (r.deferredUntil !== undefined) {
      deferrals++;
      const wait = r.deferredUntil - t.clock.now();
      if (wait > 0) await sleep(wait);
    } else if (!r.more && !finished()) await sleep(1);
  }
  return { passes, deferrals, errors };
}

/** Tandem in sync with the location's HighLevel contacts: the continuous loop's full sweep, driven by hand. */
export async function syncByFullSweep(w: BenchWorld): Promise<void> {
  const db = w.tandem.database.db;
  await drive({ services: w.tandem.services, clock: w.tandem.services.clock, location: w.location }, () => {
    const s = getSyncState(db, w.location.id);
    return s.lastFullSweepAt !== null && s.cursor.run === null;
  }, 600_000);
}

/** Edits HighLevel contacts through its API as the location itself (its private token), waiting out 429s. */
export async function editInHighLevel(w: BenchWorld, ids: string[], patch: (i: number) => Record<string, unknown>): Promise<void> {
  for (const [i, id] of ids.entries()) {
    for (;;) {
      const res = await call(w.emulatorUrl, 'PUT', `/contacts/${id}`, { token: w.location.privateToken, body: patch(i) });
      if (res.status === 200) break;
      if (res.status !== 429) throw new Error(`editing a HighLevel contact: PUT answered ${res.status}`);
      await sleep(250);
    }
  }
}

/** What held this process's event loop while watched: see watchEventLoop. */
export interface LoopWatch {
  /** How late a 1 ms timer fired: p99 and max, ms. */
  heldP99Ms: number;
  heldMaxMs: number;
  /** V8's garbage collections (each pauses the loop): how many, their sum and the longest, ms. */
  gcPauses: number;
  gcMs: number;
  gcMaxMs: number;
}

/** Starts watching the event loop (Tandem's, in a benchmark's own process); the returned function stops and reports. */
export function watchEventLoop(): () => LoopWatch {
  const held = monitorEventLoopDelay({ resolution: 1 });
  const gcMs: number[] = [];
  const gcs = new PerformanceObserver((list) => list.getEntries().forEach((e) => gcMs.push(e.duration)));
  held.enable();
  gcs.observe({ entryTypes: ['gc'] });
  return () => {
    gcs.disconnect();
    held.disable();
    return {
      heldP99Ms: held.percentile(99) / 1e6,
      heldMaxMs: held.max / 1e6,
      gcPauses: gcMs.length,
      gcMs: gcMs.reduce((a, b) => a + b, 0),
      gcMaxMs: Math.max(0, ...gcMs),
    };
  };
}
