// Load generator for bench/webhook-ack.ts, run in its own process so its work never lands in the
// measured server's event loop: sends pre-signed webhooks at a fixed rate and reports each
// acknowledgement's latency as JSON on stdout.
//
// It shares the machine's cores with the server it measures, so it is built to cost little: every
// request is one pre-built buffer (request line, headers, body) written on a kept-alive socket of
// its own, and answers are read by counting bytes, not through node:http's parser and objects.
// With node:http as the client, this process took about twice the CPU (signing included) and a
// server that does nothing measured a p99 of 6.3 ms instead of 1.4–1.9 ms (bench/README.md).
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';

const [url, keyFile, rateArg, secondsArg, locationId, idPrefix = 'bench', payloadsFile] = process.argv.slice(2) as [string, string, string, string, string, string?, string?];
const rate = Number(rateArg);
/**
 * LOAD_WARMUP_SECONDS: that many seconds of the same stream first, with no pause before the
 * measured seconds and reported apart (`warmup`); their events are `<idPrefix>warm`'s. One stream,
 * so the measured seconds are a stream's steady state, not a restart of it.
 */
const warmCount = rate * Number(process.env.LOAD_WARMUP_SECONDS ?? 0);
const measuredCount = rate * Number(secondsArg);
const total = warmCount + measuredCount;
const key = createPrivateKey(readFileSync(keyFile, 'utf8'));
const target = new URL('/webhooks/highlevel', url);
/** Sockets kept open: one request in flight on each, as HighLevel's deliveries are. */
const SOCKETS = 64;

/**
 * With a payloads file (JSON array of ContactUpdate payloads of contacts HighLevel and Tandem both
 * hold: the emulator's seed route with `payloads`), event i edits contact i (modulo their number):
 * a new last name (`<idPrefix> i`), stamped 1/rate s after the one before, so never later than it is sent. Without one,
 * each event is about a contact neither side holds (ids `<idPrefix>…`).
 */
const known = payloadsFile ? (JSON.parse(readFileSync(payloadsFile, 'utf8')) as Record<string, unknown>[]) : undefined;
const stampedFrom = Date.now();

// Built and signed before the clock starts: signing is the sender's cost, not the receiver's.
const requests = Array.from({ length: total }, (_, i) => {
  const prefix = i < warmCount ? `${idPrefix}warm` : idPrefix;
  const event = known
    ? { ...known[i % known.length]!, lastName: `${prefix} ${i}`, timestamp: new Date(stampedFrom + Math.floor((i * 1000) / rate)).toISOString(), webhookId: randomUUID() }
    : {
        type: 'ContactUpdate',
        locationId,
        id: `${prefix}${String(i).padStart(15, '0')}`,
        firstName: 'Load',
        lastName: `Test ${i}`,
        email: `load${i}@${idPrefix}.example`,
        timestamp: new Date().toISOString(),
        webhookId: randomUUID(),
      };
  const body = Buffer.from(JSON.stringify(event));
  const head =
    `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\n` +
    `content-length: ${body.length}\r\nx-ghl-signature: ${sign(null, body, key).toString('base64')}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
});

/** The warm-up's figures and the measured ones, each as finish() reports them. */
interface Part {
  latencies: number[];
  /** Latencies by the second in which the event was due. */
  bySecond: number[][];
  /** How late each request left against its place in the schedule (this process's own delays). */
  lateness: number[];
  statuses: Record<string, number>;
}
const newPart = (): Part => ({ latencies: [], bySecond: [], lateness: [], statuses: {} });
const warm = newPart();
const measured = newPart();
const partOf = (i: number) => (i < warmCount ? warm : measured);
let done = 0;

interface Conn {
  socket: net.Socket;
  /** The request in flight: its index and when it was written. */
  inFlight?: { i: number; sentAt: bigint };
  buffer: string;
}

function record(i: number, status: string, sentAt: bigint): void {
  const ms = Number(process.hrtime.bigint() - sentAt) / 1e6;
  const part = partOf(i);
  part.latencies.push(ms);
  (part.bySecond[Math.floor((i < warmCount ? i : i - warmCount) / rate)] ??= []).push(ms);
  part.statuses[status] = (part.statuses[status] ?? 0) + 1;
  if (++done === total) finish();
}

/** Reads complete answers off the socket's bytes: status line, headers, content-length body. */
function onData(conn: Conn, chunk: string): void {
  conn.buffer += chunk;
  for (;;) {
    const headEnd = conn.buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = conn.buffer.slice(0, headEnd);
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (conn.buffer.length < headEnd + 4 + length) return;
    conn.buffer = conn.buffer.slice(headEnd + 4 + length);
    const flight = conn.inFlight;
    conn.inFlight = undefined;
    idle.push(conn);
    if (flight) record(flight.i, head.slice(9, 12), flight.sentAt);
    pump();
  }
}

const idle: Conn[] = [];
const conns: Conn[] = [];
function open(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true }, () => {
      socket.off('error', reject);
      resolve();
    });
    const conn: Conn = { socket, buffer: '' };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => onData(conn, chunk));
    socket.once('error', reject);
    socket.on('close', () => {
      // A socket the server closed with a request in flight: that request failed.
      if (conn.inFlight) {
        const { statuses } = partOf(conn.inFlight.i);
        conn.inFlight = undefined;
        statuses.error = (statuses.error ?? 0) + 1;
        if (++done === total) finish();
      }
      const at = idle.indexOf(conn);
      if (at >= 0) idle.splice(at, 1);
    });
    conns.push(conn);
    idle.push(conn);
  });
}

// A fixed schedule: event i is due at start + i/rate, whatever the answers do (open-loop load);
// an event due while every socket waits for an answer leaves on the next one free.
let start = 0;
let next = 0;
let due = 0;
function pump(): void {
  while (next < due && idle.length > 0) {
    const conn = idle.pop()!;
    const i = next++;
    const sentAt = process.hrtime.bigint();
    partOf(i).lateness.push(performance.now() - (start + (i * 1000) / rate));
    conn.inFlight = { i, sentAt };
    conn.socket.write(requests[i]!);
  }
}
/** performance.now() when the first measured event was due (after the warm-up). */
let measuredFrom: number | undefined;
function tick(): void {
  due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
  if (measuredFrom === undefined && due > warmCount) {
    measuredFrom = start + (warmCount * 1000) / rate;
    // The caller starts its measurements (CPU, event loop, a full sweep) with the measured seconds.
    process.stderr.write('measuring\n');
  }
  pump();
  if (due < total) setTimeout(tick, 1);
  // Answers still missing 30 s after the last event was due are reported, not waited for.
  else setTimeout(() => {
    if (done === total) return;
    measured.statuses.timeout = total - done;
    done = total;
    finish();
  }, 30_000).unref();
}

await Promise.all(Array.from({ length: SOCKETS }, open));
start = performance.now();
tick();

function finish(): void {
  const elapsed = (performance.now() - (measuredFrom ?? start)) / 1000;
  const pctOf = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  const figures = (part: Part, sent: number) => {
    const latencies = part.latencies.sort((a, b) => a - b);
    const pct = (p: number) => pctOf(latencies, p);
    return {
      sent,
      statuses: part.statuses,
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      max: latencies.at(-1),
      p99BySecond: part.bySecond.map((xs) => pctOf(xs.sort((a, b) => a - b), 99)),
      senderLateP99: pctOf(part.lateness.sort((a, b) => a - b), 99),
    };
  };
  process.stdout.write(
    JSON.stringify({
      ...figures(measured, measuredCount),
      elapsed,
      achievedRate: measuredCount / elapsed,
      ...(warmCount > 0 ? { warmup: figures(warm, warmCount) } : {}),
    }) + '\n',
  );
  for (const c of conns) c.socket.destroy();
}
