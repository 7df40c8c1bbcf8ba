// `npm start` without credentials: the sandbox seeds the emulated HighLevel, writes sandbox.json,
// frames Tandem's panel, survives restarts and starts over with --reset.
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StartError, startTandem, type RunningTandem } from '../../server/start.ts';
import type { SandboxInfo } from '../../server/sandbox.ts';
import { call } from '../helpers/emulator.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'tandem-sandbox-'));
const running: RunningTandem[] = [];
afterAll(async () => {
  for (const t of running) await t.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(reset = false): Promise<RunningTandem> {
  const t = await startTandem({ dataDir, port: 0, emulatorPort: 0, quiet: true, env: {}, reset });
  running.push(t);
  return t;
}

async function stop(t: RunningTandem): Promise<void> {
  await t.close();
  running.splice(running.indexOf(t), 1);
}

function readInfo(): SandboxInfo {
  return JSON.parse(readFileSync(join(dataDir, 'sandbox.json'), 'utf8')) as SandboxInfo;
}

async function contacts(info: SandboxInfo, index: number): Promise<{ id: string; email: string }[]> {
  const location = info.locations[index]!;
  const res = await call(info.highlevelUrl, 'POST', '/contacts/search', {
    token: location.privateToken,
    body: { locationId: location.id, pageLimit: 500 },
  });
  expect(res.status).toBe(200);
  return res.body.contacts as { id: string; email: string }[];
}

async function contactIds(info: SandboxInfo, index: number): Promise<string[]> {
  return (await contacts(info, index)).map((c) => c.id).sort();
}

const emails = async (info: SandboxInfo, index: number) => (await contacts(info, index)).map((c) => c.email).sort();

describe('sandbox', () => {
  let first: SandboxInfo;
  let firstContacts: string[];
  let firstEmails: string[];

  it('starts the emulator beside Tandem, seeds it and writes sandbox.json', async () => {
    const t = await start();
    expect(t.mode).toBe('sandbox');
    const info = readInfo();
    expect(info).toEqual(t.sandbox);
    expect(statSync(join(dataDir, 'sandbox.json')).mode & 0o777).toBe(0o600);

    expect(info.tandemUrl).toBe(t.tandemUrl);
    expect(info.company).toEqual({ id: expect.any(String), name: expect.any(String) });
    expect(info.locations).toHaveLength(2);
    for (const l of info.locations) expect(l).toEqual({ id: expect.any(String), name: expect.any(String), privateToken: expect.any(String) });
    const types = info.users.map((u) => `${u.type}/${u.role}`);
    expect(types).toContain('agency/admin');
    expect(types.filter((x) => x === 'account/admin')).toHaveLength(2);
    expect(info.users.every((u) => u.id && u.email && u.name)).toBe(true);
    expect(info.app).toMatchObject({ appId: expect.stringMatching(/^[0-9a-f]{24}$/), sharedSecret: expect.any(String) });
    expect(info.app.clientId.startsWith(`${info.app.appId}-`)).toBe(true);
    expect(Buffer.from(info.tokenEncryptionKey, 'base64')).toHaveLength(32);
    expect(info.webhookPublicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(info.sandboxUrl).toBe(
      `${info.highlevelUrl}/v2/location/${info.locations[0]!.id}/custom-page/${info.app.appId}?userId=${
        info.users.find((u) => u.type === 'agency')!.id
      }`,
    );

    // The emulator is the one Tandem talks to, with the sandbox app's credentials and signing key.
    expect(t.config.highlevel).toMatchObject({
      apiUrl: info.highlevelUrl,
      marketplaceUrl: info.highlevelUrl,
      clientId: info.app.clientId,
      clientSecret: info.app.clientSecret,
      sharedSecret: info.app.sharedSecret,
      webhookPublicKeyPem: info.webhookPublicKeyPem,
    });
    const emulatorInfo = await call(info.highlevelUrl, 'GET', '/__emulator/info', { version: null });
    expect(emulatorInfo.body.webhookPublicKeyPem).toBe(info.webhookPublicKeyPem);

    // At least 50 contacts, through the public API with the location's private integration token.
    firstContacts = await contactIds(info, 0);
    expect(firstContacts.length).toBeGreaterThanOrEqual(50);
    expect((await contactIds(info, 1)).length).toBeGreaterThan(0);

    // The printed URL opens the emulated HighLevel with Tandem's panel in an iframe.
    const page = await fetch(info.sandboxUrl);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(new RegExp(`<iframe[^>]+src="${t.tandemUrl}/panel/"`));
    const panel = await fetch(`${t.tandemUrl}/panel/`);
    expect(panel.status).toBe(200);
    expect(await fetch(`${t.tandemUrl}/health`).then((r) => r.json())).toMatchObject({ status: 'ok', db: 'ok' });
    // Tandem's own address leads to that page, and shows nothing of the sandbox's secrets.
    const landing = await fetch(`${t.tandemUrl}/`, { redirect: 'manual' });
    expect(landing.status).toBe(200);
    const landingHtml = await landing.text();
    expect(landingHtml).toContain(`href="${info.sandboxUrl}"`);
    const secrets = [info.app.clientSecret, info.app.sharedSecret, info.tokenEncryptionKey, info.apiKey!.key, ...info.locations.map((l) => l.privateToken)];
    for (const secret of secrets) expect(landingHtml).not.toContain(secret);
    firstEmails = await emails(info, 0);
    // A REST API key for the first location, usable as written.
    expect(info.apiKey).toEqual({ locationId: info.locations[0]!.id, key: expect.stringMatching(/^tk_/) });
    const api = await fetch(`${t.tandemUrl}/api/v1/contacts?limit=1`, { headers: { authorization: `Bearer ${info.apiKey!.key}` } });
    expect(api.status).toBe(200);
    first = info;
    await stop(t);
  });

  it('keeps its data across restarts without seeding again', async () => {
    const t = await start();
    const info = readInfo();
    expect(info.company).toEqual(first.company);
    expect(info.locations).toEqual(first.locations);
    expect(info.users).toEqual(first.users);
    expect(info.app).toMatchObject({ appId: first.app.appId, clientId: first.app.clientId, clientSecret: first.app.clientSecret, sharedSecret: first.app.sharedSecret });
    expect(info.tokenEncryptionKey).toBe(first.tokenEncryptionKey);
    expect(info.webhookPublicKeyPem).toBe(first.webhookPublicKeyPem);
    expect(info.createdAt).toBe(first.createdAt);
    expect(await contactIds(info, 0)).toEqual(firstContacts);
    expect(info.apiKey).toEqual(first.apiKey);
    expect((await fetch(`${t.tandemUrl}/api/v1/users`, { headers: { authorization: `Bearer ${info.apiKey!.key}` } })).status).toBe(200);
    // The app follows Tandem to its new port.
    const page = await fetch(info.sandboxUrl).then((r) => r.text());
    expect(page).toContain(`src="${t.tandemUrl}/panel/"`);
    await stop(t);
  });

  it('refuses, deleting nothing, when the emulated HighLevel cannot be read or sandbox.json is missing beside a database', async () => {
    const worldFile = join(dataDir, 'emulator.json');
    const infoFile = join(dataDir, 'sandbox.json');
    const world = readFileSync(worldFile);
    const info = readFileSync(infoFile);
    const database = readFileSync(join(dataDir, 'tandem.db'));

    writeFileSync(worldFile, world.subarray(0, 1000));
    const unreadable = await start().then(() => undefined, (err: unknown) => err);
    expect(unreadable).toBeInstanceOf(StartError);
    expect((unreadable as Error).message).toContain(`${worldFile} cannot be read (not valid JSON`);
    expect((unreadable as Error).message).toContain('`npm start -- --reset`');
    expect(readFileSync(worldFile).length).toBe(1000);
    writeFileSync(worldFile, world);

    rmSync(infoFile);
    const missing = await start().then(() => undefined, (err: unknown) => err);
    expect(missing).toBeInstanceOf(StartError);
    expect((missing as Error).message).toContain(`${infoFile} is missing, but ${worldFile} holds an emulated HighLevel`);
    expect((missing as Error).message).toContain(join(dataDir, 'tandem.db'));
    expect(readFileSync(worldFile).equals(world)).toBe(true);
    expect(readFileSync(join(dataDir, 'tandem.db')).equals(database)).toBe(true);
    writeFileSync(infoFile, info, { mode: 0o600 });

    // Restored: the same sandbox, and its data.
    const t = await start();
    expect(readInfo().company).toEqual(first.company);
    expect((await fetch(`${t.tandemUrl}/api/v1/users`, { headers: { authorization: `Bearer ${first.apiKey!.key}` } })).status).toBe(200);
    await stop(t);
  });

  it('signs webhooks with a new key when the key file is damaged, and publishes it, keeping the sandbox', async () => {
    writeFileSync(join(dataDir, 'emulator-webhook-key.pem'), 'not a key');
    const t = await start();
    const info = readInfo();
    expect(info.company).toEqual(first.company);
    expect(info.webhookPublicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(info.webhookPublicKeyPem).not.toBe(first.webhookPublicKeyPem);
    expect(t.config.highlevel.webhookPublicKeyPem).toBe(info.webhookPublicKeyPem);
    const emulatorInfo = await call(info.highlevelUrl, 'GET', '/__emulator/info', { version: null });
    expect(emulatorInfo.body.webhookPublicKeyPem).toBe(info.webhookPublicKeyPem);
    await stop(t);
  });

  it('starts over with reset', async () => {
    await start(true);
    const info = readInfo();
    expect(info.company.id).not.toBe(first.company.id);
    expect(info.app.appId).not.toBe(first.app.appId);
    expect(info.tokenEncryptionKey).not.toBe(first.tokenEncryptionKey);
    expect(info.apiKey).toEqual({ locationId: info.locations[0]!.id, key: expect.stringMatching(/^tk_/) });
    expect(info.apiKey!.key).not.toBe(first.apiKey!.key);
    const ids = await contactIds(info, 0);
    expect(ids).toHaveLength(firstContacts.length);
    expect(ids.some((id) => firstContacts.includes(id))).toBe(false);
    // The same demo people every time, under new HighLevel ids.
    expect(await emails(info, 0)).toEqual(firstEmails);
  });
});
