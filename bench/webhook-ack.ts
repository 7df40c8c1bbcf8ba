// Benchmark: webhook acknowledgement latency at a sustained rate (issue 4 goal: p99 <= 5 ms at
// 1,000 events per second, nothing lost). Tandem runs here with a real SQLite file; the load comes
// from a separate process (bench/webhook-load.ts). Prints figures; asserts nothing.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listInboxEvents } from '../db/webhook-inbox.ts';
import { installedTandem } from '../test/helpers/tandem.ts';

const RATE = Number(process.env.BENCH_WEBHOOK_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 10);

export async function webhookAckBenchmark(): Promise<Record<string, unknown>> {
  const t = await installedTandem(process.env.BENCH_SYNC === 'off' ? { sync: { start: false } } : {});
  try {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'tandem-bench-')), 'webhook-key.pem');
    writeFileSync(keyFile, t.emulator.emu.webhookKey.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
    const before = listInboxEvents(t.db).length;
    const loader = fileURLToPath(new URL('./webhook-load.ts', import.meta.url));
    // Asynchronous: Tandem answers from this very process while the load runs.
    const { stdout: out } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', loader, t.url, keyFile, String(RATE), String(SECONDS), t.location.id],
      { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
    );
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { sent: number; statuses: Record<string, number>; p50: number; p99: number };
    const stored = listInboxEvents(t.db).length - before;
    const acked = result.statuses['200'] ?? 0;
    return { ...result, stored, acked, lost: acked - stored };
  } finally {
    await t.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await webhookAckBenchmark();
  const fmt = (n: unknown) => (typeof n === 'number' ? n.toFixed(2) : String(n));
  console.log(`webhook acknowledgement at ${RATE}/s for ${SECONDS}s`);
  console.log(`  sent ${r.sent}, achieved ${fmt(r.achievedRate)}/s, statuses ${JSON.stringify(r.statuses)}`);
  console.log(`  latency ms: p50 ${fmt(r.p50)}  p90 ${fmt(r.p90)}  p99 ${fmt(r.p99)} (goal <= 5)  max ${fmt(r.max)}`);
  console.log(`  acknowledged ${r.acked}, stored in the inbox ${r.stored}, lost ${r.lost} (goal 0)`);
}
