// Benchmark of Push contacts (issue 5): a full push (contacts only in Tandem, nothing in HighLevel
// yet) and a drifted push (10,000 contacts already in sync, 1% drift on either side), through the
// operations runner as the panel drives it (preview, confirm, run). Tandem and the emulator run in
// this process over real HTTP on the real clock, with the rate window shortened; requests are
// counted from the emulator's request log (Tandem's app token only). Prints figures beside the
// goal (<= 150 requests for the drifted 10,000); asserts nothing.
import { cpus, loadavg } from 'node:os';
import { createContact } from '../db/contacts.ts';
import { emptyContact } from '../server/sync/contact-model.ts';
import { control } from '../test/helpers/emulator.ts';
import { confirmAndSettle, editHighLevel, editTandem, lastSeq, previewOf, requestsSince, seedSynced } from '../test/helpers/push-world.ts';
import { installedTandem } from '../test/helpers/tandem.ts';

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

async function tandem() {
  const t = await installedTandem({ sync: { start: false, budget: { max: BURST_MAX, intervalMs: WINDOW_MS } }, operations: { start: false, sweepMs: 0 } });
  await control(t.highlevelUrl, 'PATCH', '/config', { rateLimit: { burstMax: BURST_MAX, burstWindowMs: WINDOW_MS } });
  return t;
}

async function measure(t: Awaited<ReturnType<typeof tandem>>, label: string, contacts: number): Promise<PushFigures> {
  const started = performance.now();
  const p = await previewOf(t, 'push');
  const previewMs = performance.now() - started;
  const seq = lastSeq(t);
  const r = await confirmAndSettle(t, p.row.id);
  const log = requestsSince(t, seq);
  const byPath: Record<string, number> = {};
  for (const e of log) {
    const key = `${e.method} ${e.path.split('?')[0]!.replace(/\/[A-Za-z0-9]{20,24}(?=\/|$)/g, '/:id')} ${e.status}`;
    byPath[key] = (byPath[key] ?? 0) + 1;
  }
  const floorPerSec = BURST_MAX / (WINDOW_MS / 1000);
  const perSec = log.length / (r.ms / 1000);
  return {
    label,
    contacts,
    previewRequests: p.requests,
    previewMs,
    requests: log.length,
    predicted: p.preview.requests,
    rateLimited: log.filter((e) => e.status === 429).length,
    runMs: r.ms,
    fractionOfFloor: perSec / floorPerSec,
    fractionOfShare: perSec / (floorPerSec * (1 - KEEP_SHARE)),
    counts: r.progress.counts.highlevel as unknown as Record<string, number>,
    byPath,
    load: `loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cores`,
  };
}

/** `size` contacts only in Tandem: one page read, then one create each. */
export async function fullPushOperationBenchmark(size = Number(process.env.BENCH_OP_PUSH_SIZE ?? 2000)): Promise<PushFigures> {
  const t = await tandem();
  try {
    const now = t.clock.now();
    t.db.transaction(() => {
      for (let i = 0; i < size; i++) {
        createContact(t.db, { locationId: t.location.id, fields: { ...emptyContact(), firstName: `Bench${i}`, lastName: 'Push', email: `bench${i}@push.example`, tags: ['bench'] }, now, origin: 'remote' });
      }
    });
    return await measure(t, `full push of ${size.toLocaleString('en-US')} (nothing in HighLevel)`, size);
  } finally {
    await t.close();
  }
}

/** `size` contacts in sync, then 1% drift: half renamed in Tandem, a quarter tagged in Tandem, a quarter renamed in HighLevel. */
export async function driftedPushOperationBenchmark(size = Number(process.env.BENCH_OP_PUSH_DRIFTED ?? 10_000)): Promise<PushFigures> {
  const t = await tandem();
  try {
    const synced = seedSynced(t, size);
    const drift = Math.round(size / 100);
    synced.slice(0, drift / 2).forEach((s) => editTandem(t, s.contact.id, { firstName: `Renamed ${s.contact.fields.firstName}` }));
    synced.slice(drift / 2, (drift * 3) / 4).forEach((s) => editTandem(t, s.contact.id, {}, { add: ['drift'], remove: [] }));
    synced.slice((drift * 3) / 4, drift).forEach((s) => editHighLevel(t, s.doc.id, { lastName: 'Drifted' }));
    return await measure(t, `drifted push of ${size.toLocaleString('en-US')} (1% drift)`, size);
  } finally {
    await t.close();
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
