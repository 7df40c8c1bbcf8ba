// The front's pass-through to the app thread (createProxy, server/front.ts) and what it logs, in
// front of a stand-in app over real HTTP: a client that goes away before the app answered is an
// ordinary event (debug at most), while an app that fails to answer is an error (and a 502).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT } from '../../server/errors.ts';
import { createProxy } from '../../server/front.ts';
import { until } from '../helpers/emulator.ts';

interface Line {
  level: number;
  msg: string;
  path?: string;
}

const lines: Line[] = [];
const log = pino({ level: 'trace' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
/** What the stand-in app has received, and which of those requests have closed. */
const received = new Set<string>();
const closed = new Set<string>();

let app: http.Server;
let front: http.Server;
let frontUrl: string;
const agent = new http.Agent({ keepAlive: true });

const listen = (server: http.Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

beforeAll(async () => {
  app = http.createServer((req, res) => {
    const path = req.url!;
    received.add(path);
    // The answer closes when its connection does (the front ended it), or once it is sent.
    res.on('close', () => closed.add(path));
    // Never answers: the client gives up first.
    if (path.startsWith('/slow')) return;
    // The app's side of the connection breaks before any answer.
    if (path.startsWith('/broken')) return req.socket.destroy();
    // Answers its head and part of a stream, then waits.
    if (path.startsWith('/stream')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      return;
    }
    res.end('ok');
  });
  const appPort = await listen(app);
  front = http.createServer(createProxy({ appPort: () => appPort, agent, frontSecret: 'test-secret', log }));
  frontUrl = `http://127.0.0.1:${await listen(front)}`;
});
afterAll(async () => {
  agent.destroy();
  front.closeAllConnections();
  app.closeAllConnections();
  await Promise.all([new Promise((r) => front.close(r)), new Promise((r) => app.close(r))]);
});

const about = (path: string) => lines.filter((l) => l.path === path.split('?')[0]);
const ERROR = 50;

describe('the front passing requests on', () => {
  it('answers as the app does', async () => {
    const res = await fetch(`${frontUrl}/plain`);
    expect(await res.text()).toBe('ok');
  });

  it('logs a client that went away before the app answered at debug level, not as an error', async () => {
    const aborted = new AbortController();
    const pending = fetch(`${frontUrl}/slow`, { signal: aborted.signal }).catch((err: Error) => err);
    await until(() => received.has('/slow'), 'the app to receive the request');
    aborted.abort();
    expect(await pending).toBeInstanceOf(Error);
    const logged = await until(() => about('/slow')[0], 'a log line about the request');
    expect(logged).toMatchObject({ level: 20, msg: 'client went away before the app answered' });
    expect(about('/slow').filter((l) => l.level >= ERROR)).toEqual([]);
    // The app's request is ended too.
    await until(() => closed.has('/slow'), 'the app request to close');
  });

  it('logs nothing when a client leaves a stream it was reading', async () => {
    const aborted = new AbortController();
    const res = await fetch(`${frontUrl}/stream`, { signal: aborted.signal });
    expect(res.status).toBe(200);
    aborted.abort();
    await until(() => closed.has('/stream'), 'the app request to close');
    expect(about('/stream')).toEqual([]);
  });

  it('refuses a body larger than any route takes itself, declared or counted, and the app never sees it (QA: 502s)', async () => {
    const big = Buffer.alloc(BODY_LIMIT + 1, 'a');
    const declared = await fetch(`${frontUrl}/big-declared`, { method: 'POST', body: big });
    expect(declared.status).toBe(413);
    expect((await declared.json()).error).toMatchObject({ code: 'payload_too_large', message: expect.stringContaining('at most 1 MiB') });
    // Sent as a stream, without its length.
    const chunks = [big.subarray(0, 600_000), big.subarray(600_000)];
    const stream = new ReadableStream({ pull: (c) => (chunks.length ? c.enqueue(chunks.shift()) : c.close()) });
    const counted = await fetch(`${frontUrl}/slow-big`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(counted.status).toBe(413);
    expect(received.has('/big-declared')).toBe(false);
    expect(about('/slow-big').filter((l) => l.level >= ERROR)).toEqual([]);
  });

  it('still logs an app that did not answer as an error, and answers 502', async () => {
    const res = await fetch(`${frontUrl}/broken?x=1`);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ error: { code: 'bad_gateway', message: 'Tandem could not answer; please try again.' } });
    expect(about('/broken')).toEqual([expect.objectContaining({ level: ERROR, msg: 'app thread did not answer' })]);
  });
});
