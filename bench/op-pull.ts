// Benchmark of the one-time Pull contacts (issue 5): a full pull into an empty Tandem and a drifted
// pull (Tandem already in sync, 1% of the contacts changed in HighLevel since), each previewed then
// run through the real runner (services.operations) against the emulator over real HTTP on the real
// clock, with the rate window shortened. The emulator runs in a process of its own (processes.ts),
// so the CPU figures are Tandem's alone. Requests come from the emulator's log (Tandem's app token).
// Prints figures beside the goal; asserts nothing.
import { cpus, loadavg } from 'node:os';
import { contactIds } from '../db/contacts.ts';
import type { Counts, Preview, Progress } from '../server/sync/operations/types.ts';
import { control } from '../test/helpers/emulator.ts';
import { benchWorld, editInHighLevel, lastSeq, requestsSince, syncByFullSweep, type BenchWorld } from './processes.ts';

const BURST_MAX = Number(process.env.BENCH_SYNC_BURST ?? 100);
const WINDOW_MS = Number(process.env.BENCH_SYNC_WINDOW_MS ?? 1000);
/** The share of each window a one-time operation leaves to the continuous loop (runner.ts). */
const KEEP_SHARE = 0.25;
const PAGE = 500;


export interface OpPullFigures {
  kind: 'full' | 'drifted';
  size: number;
  /** Contacts changed in HighLevel since the last sync (drifted pull). */
  drift: number;
  preview: { requests: number; ms: number; predicted: number; counts: Counts['tandem'] };
  run: { requests: number; ms: number; cpuMs: number; counts: Counts['tandem'] };
  rateLimited: number;
  /** One search page per 500 contacts, plus one when the last page is exactly full. */
  pages: number;
  contactsPerSec: number;
  /** Requests per second the operation may use: the window less the loop's share. */
  floorPerSec: number;
  /** What the rate limit alone would take for the run's requests, ms. */
  floorMs: number;
  /** (requests / wall time) / floorPerSec. */
  fractionOfFloor: number;
  load: string;
}

function load(): string {
  return `loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cores`;
}

async function setUp(): Promise<BenchWorld> {
  const w = await benchWorld({ sync: { start: false, budget: { max: BURST_MAX, intervalMs: WINDOW_MS } }, operations: { sweepMs: 0 } });
  await control(w.emulatorUrl, 'PATCH', '/config', { rateLimit: { burstMax: BURST_MAX, burstWindowMs: WINDOW_MS } });
  return w;
}

async function previewAndRun(w: BenchWorld, kind: OpPullFigures['kind'], size: number, drift: number): Promise<OpPullFigures> {
  const ops = w.tandem.services.operations;
  const loc = w.location.id;
  const seq0 = await lastSeq(w);
  let started = performance.now();
  const row = ops.preview({ locationId: loc, userId: 'bench' }, 'pull');
  const previewed = await ops.settled(row.id);
  if (previewed.status !== 'previewed') throw new Error(`preview ${previewed.status}: ${previewed.error}`);
  const preview = JSON.parse(previewed.preview!) as Preview;
  const previewMs = performance.now() - started;
  const seq1 = await lastSeq(w);

  started = performance.now();
  const cpu = process.cpuUsage();
  ops.confirm(loc, row.id);
  const done = await ops.settled(row.id);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  if (done.status !== 'completed') throw new Error(`run ${done.status}: ${done.error}`);
  const progress = JSON.parse(done.progress!) as Progress;
  const runLog = await requestsSince(w, seq1);
  const allLog = await requestsSince(w, seq0);
  const floorPerSec = (BURST_MAX - Math.ceil(KEEP_SHARE * BURST_MAX)) / (WINDOW_MS / 1000);
  return {
    kind,
    size,
    drift,
    preview: { requests: allLog.length - runLog.length, ms: previewMs, predicted: preview.requests, counts: preview.counts.tandem },
    run: { requests: runLog.length, ms, cpuMs: Math.round((used.user + used.system) / 1000), counts: progress.counts.tandem },
    rateLimited: allLog.filter((r) => r.status === 429).length,
    pages: Math.floor(size / PAGE) + 1,
    contactsPerSec: size / (ms / 1000),
    floorPerSec,
    floorMs: (runLog.length / floorPerSec) * 1000,
    fractionOfFloor: runLog.length / (ms / 1000) / floorPerSec,
    load: load(),
  };
}

/** A full pull of `size` HighLevel contacts into a Tandem that has none. */
export async function fullOpPullBenchmark(size = Number(process.env.BENCH_OP_PULL_SIZE ?? 20_000)): Promise<OpPullFigures> {
  const w = await setUp();
  try {
    await control(w.emulatorUrl, 'POST', `/locations/${w.location.id}/contacts/seed`, { count: size });
    const figures = await previewAndRun(w, 'full', size, size);
    if (contactIds(w.tandem.database.db, w.location.id).length !== size) throw new Error('the pull did not import every contact');
    return figures;
  } finally {
    await w.close();
  }
}

/** A pull of an already-synced location where `driftShare` of the contacts changed in HighLevel. */
export async function driftedOpPullBenchmark(size = Number(process.env.BENCH_OP_PULL_SIZE ?? 20_000), driftShare = 0.01): Promise<OpPullFigures> {
  const w = await setUp();
  try {
    const { payloads } = await control<{ payloads: Array<{ id: string }> }>(w.emulatorUrl, 'POST', `/locations/${w.location.id}/contacts/seed`, { count: size, payloads: true });
    await syncByFullSweep(w);
    const every = Math.round(1 / driftShare);
    const drifted = payloads.filter((_, i) => i % every === 0).map((p) => p.id);
    await editInHighLevel(w, drifted, (i) => ({ firstName: `Drifted${i}` }));
    return await previewAndRun(w, 'drifted', size, drifted.length);
  } finally {
    await w.close();
  }
}

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const f2 = (n: number) => n.toFixed(2);

export function printOpPull(r: OpPullFigures): void {
  const title = r.kind === 'full' ? 'Pull contacts, full (empty Tandem)' : `Pull contacts, drifted (${f0(r.drift)} of ${f0(r.size)} changed in HighLevel)`;
  console.log(`${title}: ${f0(r.size)} contacts, window ${BURST_MAX} requests / ${WINDOW_MS} ms, the operation's share ${f0(r.floorPerSec)} requests/s`);
  console.log(`  preview: ${r.preview.requests} requests (predicted ${r.preview.requests === r.preview.predicted ? 'the same' : r.preview.predicted}) in ${f0(r.preview.ms)} ms; counts ${JSON.stringify(r.preview.counts)}`);
  console.log(`  run: ${r.run.requests} requests (goal: ${r.pages}, one per page of ${PAGE}) in ${f0(r.run.ms)} ms, ${f0(r.contactsPerSec)} contacts/s, CPU ${f0(r.run.cpuMs)} ms; counts ${JSON.stringify(r.run.counts)} (goal: = preview)`);
  console.log(`  rate-limit floor for these requests ${f0(r.floorMs)} ms; fraction of the floor ${f2(r.fractionOfFloor)}; 429s ${r.rateLimited} (goal 0)`);
  console.log(`  ${r.load}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const which = process.argv[2] ?? 'all';
  if (which === 'full' || which === 'all') printOpPull(await fullOpPullBenchmark());
  if (which === 'drifted' || which === 'all') printOpPull(await driftedOpPullBenchmark());
}
