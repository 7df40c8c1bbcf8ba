// Load generator for bench/webhook-ack.ts, run in its own process so its work never lands in the
// measured server's event loop: sends pre-signed webhooks at a fixed rate and reports each
// acknowledgement's latency as JSON on stdout.
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [url, keyFile, rateArg, secondsArg, locationId, idPrefix = 'bench'] = process.argv.slice(2) as [string, string, string, string, string, string?];
const rate = Number(rateArg);
const total = rate * Number(secondsArg);
const key = createPrivateKey(readFileSync(keyFile, 'utf8'));
const target = new URL('/webhooks/highlevel', url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

// Signed before the clock starts: signing is the sender's cost, not the receiver's.
const events = Array.from({ length: total }, (_, i) => {
  const body = Buffer.from(
    JSON.stringify({
      type: 'ContactUpdate',
      locationId,
      id: `${idPrefix}${String(i).padStart(15, '0')}`,
      firstName: 'Load',
      lastName: `Test ${i}`,
      email: `load${i}@${idPrefix}.example`,
      timestamp: new Date().toISOString(),
      webhookId: randomUUID(),
    }),
  );
  return { body, signature: sign(null, body, key).toString('base64') };
});

const latencies: number[] = [];
/** Latencies by the second in which the event was sent: warm-up and steady state apart. */
const bySecond: number[][] = [];
const statuses: Record<string, number> = {};
let done = 0;

function send(i: number): void {
  const { body, signature } = events[i]!;
  const started = process.hrtime.bigint();
  const req = http.request(
    target,
    { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length, 'x-ghl-signature': signature } },
    (res) => {
      res.resume();
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        latencies.push(ms);
        (bySecond[Math.floor(i / rate)] ??= []).push(ms);
        statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
        if (++done === total) finish();
      });
    },
  );
  req.on('error', () => {
    statuses.error = (statuses.error ?? 0) + 1;
    if (++done === total) finish();
  });
  req.end(body);
}

// A fixed schedule: event i leaves at start + i/rate, whatever the answers do (open-loop load).
const start = performance.now();
let next = 0;
function tick(): void {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
  while (next < due) send(next++);
  if (next < total) setTimeout(tick, 1);
}
tick();

function finish(): void {
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pctOf = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  const pct = (p: number) => pctOf(latencies, p);
  const p99BySecond = bySecond.map((xs) => pctOf(xs.sort((a, b) => a - b), 99));
  process.stdout.write(
    JSON.stringify({ sent: total, elapsed, achievedRate: total / elapsed, statuses, p50: pct(50), p90: pct(90), p99: pct(99), max: latencies.at(-1), p99BySecond }) + '\n',
  );
  agent.destroy();
}
