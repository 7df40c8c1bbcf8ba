// Tandem's close() while HighLevel is still delivering a webhook over a keep-alive connection (as the
// emulator's delivery agent, and HighLevel, keep them): the request is answered, then the
// connection is closed, and close() ends at once instead of waiting out the keep-alive timeout.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Agent, request } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import { until } from '../helpers/emulator.ts';
import { startTestTandem, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem | undefined;
const agent = new Agent({ keepAlive: true });
afterEach(async () => {
  agent.destroy();
  await t?.close();
  t = undefined;
});

it('closes promptly while a webhook is in flight on a keep-alive connection', async () => {
  t = await startTestTandem({ sync: { start: false }, operations: { start: false, sweepMs: 0 } });
  let started = 0;
  const onStart = () => started++;
  subscribe('http.server.request.start', onStart);
  try {
    const body = JSON.stringify({ type: 'ContactUpdate', locationId: 'loc_none', id: 'c_none', webhookId: 'w1', timestamp: new Date().toISOString() });
    let send!: () => void;
    const answered = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const req = request(
        `${t!.url}/webhooks/highlevel`,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-ghl-signature': 'c2ln' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      // The headers go now: Tandem starts the request and waits for the body.
      req.write(body.slice(0, 10));
      send = () => req.end(body.slice(10));
    });
    await until(() => started > 0, 'Tandem to start the webhook request');
    // close() begins while the request is in flight; the rest of its body arrives afterwards.
    const closing = t.close();
    send();
    const answer = await answered;
    expect(answer.status).toBe(401);
    // Before the fix the now-idle keep-alive connection held close() for Fastify's 72 s keep-alive
    // timeout, past this test's timeout.
    await closing;
    t = undefined;
  } finally {
    unsubscribe('http.server.request.start', onStart);
  }
}, 20_000);
