// Benchmark of Push contacts (issue 5): a full push (contacts only in Tandem, nothing in HighLevel
// yet) and a drifted push (10,000 contacts already in sync, 1% drift on either side), through the
// operations runner as the panel drives it (preview, confirm, run). The emulator runs in a process
// of its own (processes.ts), over real HTTP on the real clock, with the rate window shortened;
// requests are counted from the emulator's request log (Tandem's app token only). Prints figures
// beside the goal (<= 150 requests for the drifted 10,000); asserts nothing.
import { cpus, loadavg } from 'node:os';
import { createContact, updateContact } from '../db/contacts.ts';
import { getLinkByRemote } from '../db/links.ts';
import type { OperationRow } from '../db/operations.ts';
import { emptyContact } from '../server/sync/contact-model.ts';
import type { Preview, Progress } from '../server/sync/operations/types.ts';
import { control } from '../test/helpers/emulator.ts';
import { benchWorld, editInHighLevel, lastSeq, requestsSince, syncByFullSweep, type BenchWorld } from './processes.ts';

const BURST_MAX = Number(process.env.BENCH_SYNC_BURST ?? 100);
const WINDOW_MS = Number(process.env.BENCH_SYNC_WINDOW_MS ?? 1000);
/** The runner leaves this share of every window to the continuous loop (runner.ts KEEP_SHARE). */
const KEEP_SHARE = 0.25;

export interface PushFigures {
  label: string;
  contacts: number;
  previewRequests: number;
  previewMs: number;
  requests: number;
  predicted: number;
  rateLimited: number;
  runMs: number;
  /** requests / run time against the burst floor (all of it, and the operation's 75% share). */
  fractionOfFloor: number;
  fractionOfShare: number;
  counts: Record<string, number>;
  byPath: Record<string, number>;
  load: string;
}

async function tandem(): Promise<BenchWorld> {
  const w = await benchWorld({ sync: { start: false, budget: { max: BURST_MAX, intervalMs: WINDOW_MS } }, operations: { start: false, sweepMs: 0 } });
  await control(w.emulatorUrl, 'PATCH', '/config', { rateLimit: { burstMax: BURST_MAX, burstWindowMs: WINDOW_MS } });
  return w;
}

const ADMIN = { userId: 'u_admin', userName: 'Ada Admin' };

async function measure(w: BenchWorld, label: string, contacts: number): Promise<PushFigures> {
  const ops = w.tandem.services.operations;
  const loc = w.location.id;
  const started = performance.now();
  const seq0 = await lastSeq(w);
  const previewed = await ops.settled(ops.preview({ locationId: loc, ...ADMIN }, 'push').id);
  if (previewed.status !== 'previewed') throw new Error(`preview ended ${previewed.status}: ${previewed.error}`);
  const preview = JSON.parse(previewed.preview!) as Preview;
  const previewMs = performance.now() - started;
  const seq = await lastSeq(w);
  const runStarted = performance.now();
  ops.confirm(loc, previewed.id);
  const done: OperationRow = await ops.settled(previewed.id);
  const runMs = performance.now() - runStarted;
  const progress = JSON.parse(done.progress!) as Progress;
  const log = await requestsSince(w, seq);
  const previewRequests = (await requestsSince(w, seq0)).length - log.length;
  const byPath: Record<string, number> = {};
  for (const e of log) {
    const key = `${e.method} ${e.path.split('?')[0]!.replace(/\/[A-Za-z0-9]{20,24}(?=\/|$)/g, '/:id')} ${e.status}`;
    byPath[key] = (byPath[key] ?? 0) + 1;
  }
  const floorPerSec = BURST_MAX / (WINDOW_MS / 1000);
  const perSec = log.length / (runMs / 1000);
  return {
    label,
    contacts,
    previewRequests,
    previewMs,
    requests: log.length,
    predicted: preview.requests,
    rateLimited: log.filter((e) => e.status === 429).length,
    runMs,
    fractionOfFloor: perSec / floorPerSec,
    fractionOfShare: perSec / (floorPerSec * (1 - KEEP_SHARE)),
    counts: progress.counts.highlevel as unknown as Record<string, number>,
    byPath,
    load: `loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cores`,
  };
}

export async function fullPushOperationBenchmark(size = Number(process.env.BENCH_OP_PUSH_SIZE ?? 2000)): Promise<PushFigures> {
  const w = await tandem();
  try {
    const db = w.tandem.database.db;
    const now = w.tandem.services.clock.now();
    db.transaction(() => {
      for (let i = 0; i < size; i++) {
        createContact(db, { locationId: w.location.id, fields: { ...emptyContact(), firstName: `Bench${i}`, lastName: 'Push', email: `bench${i}@push.example`, tags: ['bench'] }, now, origin: 'remote' });
      }
    });
    return await measure(w, `full push of ${size.toLocaleString('en-US')} (nothing in HighLevel)`, size);
  } finally {
    await w.close();
  }
}

/**
 * `size` contacts in sync (the continuous loop's full sweep), then 1% drift: half renamed in Tandem,
 * a quarter tagged in Tandem (edits the ledger does not know yet, as if made while the loop was
 * away), a quarter renamed in HighLevel through its API.
 */
export async function driftedPushOperationBenchmark(size = Number(process.env.BENCH_OP_PUSH_DRIFTED ?? 10_000)): Promise<PushFigures> {
  const w = await tandem();
  try {
    const { payloads } = await control<{ payloads: Array<{ id: string; firstName?: string }> }>(w.emulatorUrl, 'POST', `/locations/${w.location.id}/contacts/seed`, { count: size, payloads: true });
    await syncByFullSweep(w);
    const db = w.tandem.database.db;
    const now = w.tandem.services.clock.now();
    const contactOf = (highlevelId: string) => getLinkByRemote(db, w.location.id, highlevelId)!.contactId;
    const drift = Math.round(size / 100);
    for (const p of payloads.slice(0, drift / 2)) updateContact(db, { locationId: w.location.id, id: contactOf(p.id), patch: { firstName: `Renamed ${p.firstName ?? ''}` }, now, origin: 'remote' });
    for (const p of payloads.slice(drift / 2, (drift * 3) / 4)) updateContact(db, { locationId: w.location.id, id: contactOf(p.id), patch: {}, tags: { add: ['drift'], remove: [] }, now, origin: 'remote' });
    await editInHighLevel(w, payloads.slice((drift * 3) / 4, drift).map((p) => p.id), () => ({ lastName: 'Drifted' }));
    return await measure(w, `drifted push of ${size.toLocaleString('en-US')} (1% drift)`, size);
  } finally {
    await w.close();
  }
}

export function printPush(f: PushFigures, goal?: string): void {
  const fmt = (n: number) => n.toFixed(2);
  console.log(`${f.label}${goal ? ` (goal: ${goal})` : ''}`);
  console.log(`  preview: ${f.previewRequests} requests in ${Math.round(f.previewMs)} ms; predicted for the run: ${f.predicted}`);
  console.log(`  run: ${f.requests} requests in ${Math.round(f.runMs)} ms, ${f.rateLimited} 429s; counts ${JSON.stringify(f.counts)}`);
  console.log(`  ${fmt(f.requests / (f.runMs / 1000))} requests/s = ${fmt(f.fractionOfFloor)} of the rate-limit floor (${BURST_MAX}/${WINDOW_MS} ms), ${fmt(f.fractionOfShare)} of the operation's 75% share`);
  console.log(`  by path ${JSON.stringify(f.byPath)}; ${f.load}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const which = process.argv[2] ?? 'all';
  if (which === 'full' || which === 'all') printPush(await fullPushOperationBenchmark(), '0 429s, requests = 1 per create + pages');
  if (which === 'drifted' || which === 'all') printPush(await driftedPushOperationBenchmark(), '<= 150 requests for 10,000 with 1% drift');
}
