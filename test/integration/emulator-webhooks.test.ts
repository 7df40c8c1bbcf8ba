// Webhook delivery from the emulator to a real HTTP receiver: signature over the exact bytes,
// compact flat bodies, redelivery only on 429, per-app order, bounded concurrency, and the scripted faults.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, control, testEmulator, until } from '../helpers/emulator.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { DeliveryAttempt } from '../../emulator/webhooks.ts';

interface Received {
  body: string;
  headers: IncomingHttpHeaders;
}

/** A webhook receiver recording raw bodies; `answer(n)` picks the status of the n-th request (1-based). */
async function startReceiver() {
  const received: Received[] = [];
  const state = { answer: (_n: number): number | 'hang' => 200 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      const status = state.answer(received.length);
      if (status !== 'hang') res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    received,
    state,
    bodies: () => received.map((r) => JSON.parse(r.body) as Record<string, any>),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

const SCOPES = ['contacts.readonly', 'contacts.write', 'users.readonly', 'locations.readonly'];

let emu: RunningEmulator;
let receiver: Receiver;
let clock: ManualClock;
let appId: string;

beforeEach(async () => {
  clock = new ManualClock();
  // One delivery in flight: these tests check the order in which events arrive, which several
  // requests in flight (the default) would leave to the network.
  emu = await testEmulator({ clock, config: { webhookRetryIntervalMs: 5, webhookMaxRetries: 3, webhookTimeoutMs: 2000, webhookConcurrency: 1 } });
  receiver = await startReceiver();
  const app = await control(emu.url, 'POST', '/apps', {
    name: 'Tandem',
    redirectUris: ['http://127.0.0.1/oauth/callback'],
    webhookUrl: receiver.url,
    scopes: SCOPES,
  });
  appId = app.appId;
});

afterEach(async () => {
  await emu.close();
  await receiver.close();
});

/** Emits an event straight through the dispatcher, as the emulator's routes do. */
function emit(payload: Record<string, unknown>, id = appId): void {
  emu.emu.webhooks.send(emu.emu.world.apps[id]!, payload);
}

async function deliveries(query = ''): Promise<DeliveryAttempt[]> {
  return (await control(emu.url, 'GET', `/webhooks${query}`)).deliveries;
}

describe('webhook delivery', () => {
  it('signs the exact compact body with the key published at /__emulator/info', async () => {
    const { webhookPublicKeyPem } = await control(emu.url, 'GET', '/info');
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1', firstName: 'Zoë', tags: ['a', 'b'] });
    await until(() => receiver.received.length === 1, 'delivery');

    const { body, headers } = receiver.received[0]!;
    expect(headers['content-type']).toBe('application/json');
    const signature = headers['x-ghl-signature'];
    expect(typeof signature).toBe('string');
    expect(Buffer.from(signature as string, 'base64')).toHaveLength(64);
    expect(verify(null, Buffer.from(body), webhookPublicKeyPem, Buffer.from(signature as string, 'base64'))).toBe(true);
    // Any other bytes fail, so the receiver must verify the raw body.
    expect(verify(null, Buffer.from(body + ' '), webhookPublicKeyPem, Buffer.from(signature as string, 'base64'))).toBe(false);

    const parsed = JSON.parse(body);
    expect(body).toBe(JSON.stringify(parsed));
    expect(parsed).toMatchObject({ type: 'ContactCreate', locationId: 'loc1', id: 'c1', firstName: 'Zoë', tags: ['a', 'b'] });
    expect(parsed.timestamp).toBe('2026-01-15T12:00:00.000Z');
    expect(parsed.webhookId).toMatch(/^[0-9a-f-]{36}$/);

    await emu.emu.webhooks.idle();
    const [attempt] = await deliveries();
    expect(attempt).toMatchObject({ appId, type: 'ContactCreate', attempt: 1, status: 200, outcome: 'delivered', body });
  });

  it('sends INSTALL when an install is made through the control API', async () => {
    const location = await control(emu.url, 'POST', '/locations', { name: 'Main Street' });
    await control(emu.url, 'POST', '/installs', { appId, locationId: location.id });
    await until(() => receiver.bodies().some((b) => b.type === 'INSTALL'), 'INSTALL webhook');
    const install = receiver.bodies().find((b) => b.type === 'INSTALL')!;
    expect(install).toMatchObject({ type: 'INSTALL', appId, locationId: location.id, companyId: location.companyId });
  });

  it('sends nothing and logs nothing for an app without a webhook URL', async () => {
    await control(emu.url, 'PATCH', `/apps/${appId}`, { webhookUrl: null });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    expect(emu.emu.webhooks.pending()).toBe(0);
    await emu.emu.webhooks.idle();
    expect(await deliveries()).toEqual([]);
    expect(receiver.received).toHaveLength(0);
  });

  it('gates contact events by the app scopes but always sends INSTALL/UNINSTALL', async () => {
    await control(emu.url, 'PATCH', `/apps/${appId}`, { scopes: ['users.readonly'] });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    emit({ type: 'UNINSTALL', appId, locationId: 'loc1' });
    await until(() => receiver.received.length === 1, 'UNINSTALL');
    await emu.emu.webhooks.idle();
    expect(receiver.bodies().map((b) => b.type)).toEqual(['UNINSTALL']);
  });

  it('delivers one app\'s events in emission order', async () => {
    for (let i = 0; i < 25; i++) emit({ type: 'ContactUpdate', locationId: 'loc1', id: `c${i}` });
    await until(() => receiver.received.length === 25, '25 deliveries');
    expect(receiver.bodies().map((b) => b.id)).toEqual(Array.from({ length: 25 }, (_, i) => `c${i}`));
  });

  it('keeps up to webhookConcurrency deliveries of one app in flight, never more', async () => {
    await control(emu.url, 'PATCH', '/config', { webhookConcurrency: 3 });
    // The first three answers are held until the third request has arrived: a dispatcher without a
    // bound would have the fourth and fifth in flight meanwhile.
    const held: (() => void)[] = [];
    let open = 0;
    const openAtArrival: number[] = [];
    const hold = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        open++;
        openAtArrival.push(open);
        const answer = () => {
          open--;
          res.writeHead(200).end('ok');
        };
        if (held.length < 3 && openAtArrival.length <= 3) held.push(answer);
        else answer();
        if (held.length === 3 && openAtArrival.length === 3) for (const release of held) release();
      });
    });
    await new Promise<void>((resolve) => hold.listen(0, '127.0.0.1', resolve));
    try {
      await control(emu.url, 'PATCH', `/apps/${appId}`, { webhookUrl: `http://127.0.0.1:${(hold.address() as AddressInfo).port}/webhooks` });
      for (let i = 0; i < 5; i++) emit({ type: 'ContactUpdate', locationId: 'loc1', id: `c${i}` });
      await until(() => openAtArrival.length === 5, 'five deliveries');
      await emu.emu.webhooks.idle();
      expect(openAtArrival.slice(0, 3)).toEqual([1, 2, 3]);
      expect(Math.max(...openAtArrival)).toBe(3);
      expect((await deliveries()).map((d) => d.outcome)).toEqual(Array(5).fill('delivered'));
    } finally {
      hold.closeAllConnections();
      await new Promise<void>((resolve) => hold.close(() => resolve()));
    }
  });
});

describe('redelivery', () => {
  it('redelivers a 429 with the same body and webhookId, at most webhookMaxRetries times', async () => {
    receiver.state.answer = () => 429;
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    await until(() => receiver.received.length === 4, 'four attempts');
    await emu.emu.webhooks.idle();
    expect(receiver.received).toHaveLength(4);
    expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1);
    const log = await deliveries();
    expect(log.map((d) => [d.attempt, d.status, d.outcome])).toEqual([
      [1, 429, 'retry-scheduled'],
      [2, 429, 'retry-scheduled'],
      [3, 429, 'retry-scheduled'],
      [4, 429, 'failed'],
    ]);
    expect(new Set(log.map((d) => d.webhookId)).size).toBe(1);
  });

  it('stops redelivering once the receiver accepts', async () => {
    receiver.state.answer = (n) => (n === 1 ? 429 : 204);
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    await until(() => receiver.received.length === 2, 'redelivery');
    await emu.emu.webhooks.idle();
    expect(receiver.received).toHaveLength(2);
    expect((await deliveries()).map((d) => d.outcome)).toEqual(['retry-scheduled', 'delivered']);
  });

  it('does not redeliver after a 500', async () => {
    receiver.state.answer = () => 500;
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    await until(() => receiver.received.length === 1, 'delivery');
    await emu.emu.webhooks.idle();
    expect(receiver.received).toHaveLength(1);
    expect(await deliveries()).toMatchObject([{ attempt: 1, status: 500, outcome: 'failed' }]);
  });

  it('does not redeliver after a timeout', async () => {
    await control(emu.url, 'PATCH', '/config', { webhookTimeoutMs: 100 });
    receiver.state.answer = () => 'hang';
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    await emu.emu.webhooks.idle();
    expect(receiver.received).toHaveLength(1);
    const [attempt] = await deliveries();
    expect(attempt).toMatchObject({ attempt: 1, outcome: 'failed', error: 'timeout after 100 ms' });
    expect(attempt!.status).toBeUndefined();
  });

  it('does not redeliver after a network error', async () => {
    const closed = await startReceiver();
    await closed.close();
    await control(emu.url, 'PATCH', `/apps/${appId}`, { webhookUrl: closed.url });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    await emu.emu.webhooks.idle();
    const log = await deliveries();
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/ECONNREFUSED/) });
  });
});

describe('webhook faults', () => {
  it('duplicate sends the same bytes twice', async () => {
    await control(emu.url, 'POST', '/webhooks/faults', { mode: 'duplicate' });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c2' });
    await until(() => receiver.received.length === 3, 'three deliveries');
    await emu.emu.webhooks.idle();
    expect(receiver.received[0]!.body).toBe(receiver.received[1]!.body);
    expect(receiver.bodies().map((b) => b.id)).toEqual(['c1', 'c1', 'c2']);
    expect((await deliveries()).map((d) => d.fault ?? null)).toEqual([null, 'duplicate', null]);
  });

  it('drop never sends the event and logs it as dropped', async () => {
    await control(emu.url, 'POST', '/webhooks/faults', { mode: 'drop', count: 2 });
    for (const id of ['c1', 'c2', 'c3']) emit({ type: 'ContactCreate', locationId: 'loc1', id });
    await until(() => receiver.received.length === 1, 'the third event');
    await emu.emu.webhooks.idle();
    expect(receiver.bodies().map((b) => b.id)).toEqual(['c3']);
    expect((await deliveries()).map((d) => d.outcome)).toEqual(['dropped', 'dropped', 'delivered']);
  });

  it('delay sends the event later, so later events overtake it', async () => {
    await control(emu.url, 'POST', '/webhooks/faults', { mode: 'delay', delayMs: 150 });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'late' });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'early' });
    await until(() => receiver.received.length === 2, 'both events');
    expect(receiver.bodies().map((b) => b.id)).toEqual(['early', 'late']);
  });

  it('reorder holds an event until the next one of the app has been sent', async () => {
    await control(emu.url, 'POST', '/webhooks/faults', { mode: 'reorder' });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'first' });
    await emu.emu.webhooks.idle();
    expect(receiver.received).toHaveLength(0);
    emit({ type: 'ContactUpdate', locationId: 'loc1', id: 'second' });
    await until(() => receiver.received.length === 2, 'both events');
    expect(receiver.bodies().map((b) => b.id)).toEqual(['second', 'first']);
  });

  it('a fault with a type only touches events of that type', async () => {
    await control(emu.url, 'POST', '/webhooks/faults', { mode: 'drop', type: 'ContactUpdate' });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    emit({ type: 'ContactUpdate', locationId: 'loc1', id: 'c1' });
    emit({ type: 'ContactUpdate', locationId: 'loc1', id: 'c1', again: true });
    await until(() => receiver.received.length === 2, 'two deliveries');
    await emu.emu.webhooks.idle();
    expect(receiver.bodies().map((b) => [b.type, b.again ?? false])).toEqual([
      ['ContactCreate', false],
      ['ContactUpdate', true],
    ]);
  });

  it('rejects a bad fault and clears faults on DELETE', async () => {
    const bad = await fetch(`${emu.url}/__emulator/webhooks/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'delay' }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/delayMs/);
    await control(emu.url, 'POST', '/webhooks/faults', { mode: 'drop', count: 5 });
    await control(emu.url, 'DELETE', '/webhooks/faults');
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    await until(() => receiver.received.length === 1, 'delivery');
  });
});

describe('the delivery log', () => {
  it('filters by app and type, reports pending work, and clears', async () => {
    const other = await control(emu.url, 'POST', '/apps', {
      name: 'Other',
      redirectUris: ['http://127.0.0.1/cb'],
      webhookUrl: receiver.url,
      scopes: SCOPES,
    });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    emit({ type: 'ContactDelete', locationId: 'loc1', id: 'c1' });
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' }, other.appId);
    await until(async () => (await control(emu.url, 'GET', '/webhooks')).pending === 0, 'no pending deliveries');
    expect(await deliveries()).toHaveLength(3);
    expect(await deliveries(`?appId=${appId}`)).toHaveLength(2);
    expect(await deliveries(`?appId=${appId}&type=ContactDelete`)).toMatchObject([{ type: 'ContactDelete', appId }]);
    expect(await deliveries(`?appId=${other.appId}`)).toMatchObject([{ appId: other.appId }]);
    await control(emu.url, 'DELETE', '/webhooks');
    expect(await deliveries()).toEqual([]);
  });

  it('reset cancels scheduled redeliveries', async () => {
    await control(emu.url, 'PATCH', '/config', { webhookRetryIntervalMs: 60_000 });
    receiver.state.answer = () => 429;
    emit({ type: 'ContactCreate', locationId: 'loc1', id: 'c1' });
    await until(async () => (await deliveries()).length === 1, 'first attempt');
    expect(emu.emu.webhooks.pending()).toBe(1);
    await control(emu.url, 'POST', '/reset');
    expect(emu.emu.webhooks.pending()).toBe(0);
    expect(await deliveries()).toEqual([]);
  });
});
