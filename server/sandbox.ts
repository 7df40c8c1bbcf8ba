// The sandbox: with no HighLevel credentials, `npm start` runs the emulator in-process, seeds a demo
// agency through the emulator's control and public APIs, registers Tandem as its marketplace app and
// records everything a person or script needs in DATA_DIR/sandbox.json.
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { startEmulator, type RunningEmulator } from '../emulator/server.ts';
import type { World } from '../emulator/state.ts';
import { StartError, TANDEM_SCOPES } from './config.ts';
import { DEMO_AGENCY, DEMO_LOCATIONS, DEMO_USERS, demoContacts } from './sandbox-seed.ts';
import { ensureFolder, removeDatabaseFiles, type Db } from '../db/client.ts';
import { createApiKey, isLiveApiKey } from '../db/api-keys.ts';

const sandboxInfoSchema = z.object({
  tandemUrl: z.string(),
  highlevelUrl: z.string(),
  sandboxUrl: z.string(),
  webhookPublicKeyPem: z.string(),
  company: z.object({ id: z.string(), name: z.string() }),
  locations: z.array(z.object({ id: z.string(), name: z.string(), privateToken: z.string() })),
  users: z.array(
    z.object({
      id: z.string(),
      email: z.string(),
      name: z.string(),
      role: z.enum(['admin', 'user']),
      type: z.enum(['agency', 'account']),
      locationIds: z.array(z.string()),
      deactivated: z.boolean(),
    }),
  ),
  app: z.object({
    appId: z.string(),
    clientId: z.string(),
    clientSecret: z.string(),
    sharedSecret: z.string(),
    installUrl: z.string(),
  }),
  tokenEncryptionKey: z.string(),
  createdAt: z.string(),
  /** A key of Tandem's REST API for the first demo location (only its hash is in the database). */
  apiKey: z.object({ locationId: z.string(), key: z.string() }).optional(),
});

/** The contents of DATA_DIR/sandbox.json. */
export type SandboxInfo = z.infer<typeof sandboxInfoSchema>;

export interface RunningSandbox {
  emulator: RunningEmulator;
  info: SandboxInfo;
  /** Path of sandbox.json. */
  file: string;
  /** True when this start created the demo world (first run or reset). */
  seeded: boolean;
}

export function sandboxFiles(dataDir: string) {
  return {
    info: join(dataDir, 'sandbox.json'),
    world: join(dataDir, 'emulator.json'),
    webhookKey: join(dataDir, 'emulator-webhook-key.pem'),
  };
}

/** The environment that points Tandem at the sandbox's HighLevel app. */
export function sandboxEnv(info: SandboxInfo): Record<string, string> {
  return {
    HIGHLEVEL_CLIENT_ID: info.app.clientId,
    HIGHLEVEL_CLIENT_SECRET: info.app.clientSecret,
    HIGHLEVEL_SHARED_SECRET: info.app.sharedSecret,
    HIGHLEVEL_API_URL: info.highlevelUrl,
    HIGHLEVEL_MARKETPLACE_URL: info.highlevelUrl,
    HIGHLEVEL_WEBHOOK_PUBLIC_KEY: info.webhookPublicKeyPem,
    TOKEN_ENCRYPTION_KEY: info.tokenEncryptionKey,
  };
}

/** Deletes the sandbox's files and Tandem's database (with its WAL files). */
export function removeSandboxData(dataDir: string, databasePath: string): void {
  const files = sandboxFiles(dataDir);
  for (const path of [files.info, files.world, `${files.world}.tmp`, files.webhookKey]) rmSync(path, { force: true });
  if (databasePath !== ':memory:') removeDatabaseFiles(databasePath);
}

/** Where the files are (DATA_DIR, Tandem's database, the front's staged inbox beside it). */
export interface SandboxPaths {
  dataDir: string;
  databasePath: string;
  /**
   * The staged inbox (db/staged-inbox.ts) to delete with Tandem's database when the sandbox starts
   * afresh, since its webhooks come from the old world. Left out behind the front, which owns that
   * file and has prepared the sandbox before opening it (server/front.ts).
   */
  stagedPath?: string;
}

/**
 * Decides from the files alone, before anything runs, whether the sandbox goes on with what
 * DATA_DIR holds or starts afresh, and deletes what a fresh start replaces. Nothing is ever
 * deleted because a file could not be read: starting afresh over a Tandem database happens only
 * on --reset; without one (nothing of Tandem's to lose) a sandbox left half made by an interrupted
 * first start is set up again. Throws StartError saying how to go on (restore the file, or
 * --reset) when the files cannot be read or do not belong together. Returns a notice for the log
 * when it started afresh on its own.
 */
export function prepareSandbox(options: SandboxPaths & { reset?: boolean }): { notice?: string } {
  const files = sandboxFiles(options.dataDir);
  const forget = () => {
    removeSandboxData(options.dataDir, options.databasePath);
    if (options.stagedPath) removeDatabaseFiles(options.stagedPath);
  };
  if (options.reset) {
    forget();
    return {};
  }
  const info = readJson(files.info, (json) => sandboxInfoSchema.parse(json));
  if (info.state === 'unreadable') {
    throw new StartError(
      refusal(
        `the sandbox file ${files.info} cannot be read (${info.reason}).`,
        `It holds the sandbox's ids and secrets, among them the key to the tokens in Tandem's database, so Tandem does not set up a new sandbox over the old one (that would delete Tandem's database).`,
        `restore ${files.info} (from a backup), then start again`,
      ),
    );
  }
  const world = readJson(files.world, (json) => worldSchema.parse(json));
  if (world.state === 'unreadable') {
    throw new StartError(
      refusal(
        `the emulated HighLevel's file ${files.world} cannot be read (${world.reason}).`,
        `It holds the sandbox's agency, locations, users, contacts and the app Tandem is installed as, so Tandem does not set up a new sandbox over the old one (that would delete Tandem's database).`,
        `restore ${files.world} (from a backup), then start again`,
      ),
    );
  }
  const saved = info.state === 'read' ? info.value : undefined;
  const existing = world.state === 'read' && !isEmpty(world.value) ? world.value : undefined;
  // The sandbox as it was left, or none at all (a first start: the database, if any, is left
  // alone, as it may not be a sandbox's).
  if (saved && existing && describes(saved, existing)) return {};
  if (!saved && !existing) return {};

  const problem = saved
    ? `${files.world} does not hold the emulated HighLevel that ${files.info} describes (${existing ? 'another world' : world.state === 'absent' ? 'the file is missing' : 'it is empty'}).`
    : `${files.info} is missing, but ${files.world} holds an emulated HighLevel.`;
  const databaseLeft = options.databasePath !== ':memory:' && existsSync(options.databasePath);
  if (databaseLeft) {
    throw new StartError(
      refusal(
        problem,
        `Without the two together Tandem cannot use the sandbox, and setting up a new one would delete Tandem's database (${options.databasePath}).`,
        `restore the missing or replaced file (from a backup), then start again`,
      ),
    );
  }
  forget();
  return { notice: `${problem} With no Tandem database to lose, the sandbox starts afresh: a new demo agency.` };
}

/** A refusal: what is wrong, why Tandem stops there, and the two ways on. */
function refusal(problem: string, why: string, restore: string): string {
  return [
    `Tandem cannot start: ${problem}`,
    why,
    'Either:',
    `  - ${restore}; or`,
    "  - start afresh with `npm start -- --reset`, which deletes the sandbox's data and Tandem's database (its contacts and API keys) and seeds a new demo agency.",
  ].join('\n');
}

export async function startSandbox(
  options: SandboxPaths & {
    emulatorPort: number;
    /** Tandem's public URL, registered as the app's redirect, webhook and custom page URLs. */
    tandemUrl: string;
    reset?: boolean;
  },
): Promise<RunningSandbox> {
  const files = sandboxFiles(options.dataDir);
  // The folder holds tokens and secrets (emulator.json, sandbox.json): private to the user.
  ensureFolder(options.dataDir, 0o700);
  const { notice } = prepareSandbox(options);
  if (notice) process.emitWarning(notice);
  const saved = readInfo(files.info);
  const emulator = await startEmulator({
    port: options.emulatorPort,
    persistPath: files.world,
    webhookPrivateKeyPem: webhookKey(files.webhookKey),
  });
  try {
    const world = emulator.emu.world;
    const reuse = saved && describes(saved, world);
    // prepareSandbox left either the sandbox as it was or no world at all.
    if (!reuse && !isEmpty(world)) throw new StartError(`Tandem cannot start: the sandbox's files in ${options.dataDir} changed while it started; start again.`);
    const info = reuse ? await refresh(saved, emulator, options.tandemUrl) : await seed(emulator, options.tandemUrl);
    emulator.emu.save();
    writeInfo(files.info, info);
    return { emulator, info, file: files.info, seeded: !reuse };
  } catch (err) {
    await emulator.close();
    throw err;
  }
}

/**
 * Gives the sandbox a REST API key for its first demo location, once: a key from an earlier start
 * that still works is kept (its plaintext lives only in sandbox.json, mode 0600); after a reset, or
 * when it was revoked, a new one is created and written.
 */
export function ensureSandboxApiKey(sandbox: RunningSandbox, db: Db, now: number): void {
  const location = sandbox.info.locations[0];
  if (!location) return;
  const saved = sandbox.info.apiKey;
  if (saved && saved.locationId === location.id && isLiveApiKey(db, location.id, saved.key)) return;
  const { key } = createApiKey(db, { locationId: location.id, name: 'Sandbox', createdBy: 'sandbox', now });
  sandbox.info = { ...sandbox.info, apiKey: { locationId: location.id, key } };
  writeInfo(sandbox.file, sandbox.info);
}

/** The emulator's signing key, created once so the public key Tandem trusts survives restarts. */
function webhookKey(path: string): string {
  if (existsSync(path)) {
    const saved = readFileSync(path, 'utf8');
    try {
      createPrivateKey(saved);
      return saved;
    } catch {
      // Damaged: a new key is as good (sandbox.json gets its public half at every start, refresh()).
      process.emitWarning(`${path} is not a private key; the emulated HighLevel signs its webhooks with a new one.`);
    }
  }
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(path, pem, { mode: 0o600 });
  return pem;
}

/** sandbox.json as prepareSandbox left it: valid, or absent. */
function readInfo(path: string): SandboxInfo | undefined {
  const info = readJson(path, (json) => sandboxInfoSchema.parse(json));
  return info.state === 'read' ? info.value : undefined;
}

type Read<T> = { state: 'absent' } | { state: 'unreadable'; reason: string } | { state: 'read'; value: T };

/** A JSON file: absent, unreadable (with why) or its parsed value; a file that is there is never taken for absent. */
function readJson<T>(path: string, parse: (json: unknown) => T): Read<T> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? { state: 'absent' } : { state: 'unreadable', reason: e.code ?? e.message };
  }
  try {
    return { state: 'read', value: parse(JSON.parse(text)) };
  } catch (err) {
    if (err instanceof z.ZodError) {
      const issue = err.issues[0];
      return { state: 'unreadable', reason: `not what Tandem wrote there: ${issue?.path.join('.') || 'the whole file'}: ${issue?.message ?? 'invalid'}` };
    }
    return { state: 'unreadable', reason: `not valid JSON: ${(err as Error).message}` };
  }
}

/** What of the emulator's persisted world (emulator/emulator.ts) the sandbox reads. */
const worldSchema = z.looseObject({
  companies: z.record(z.string(), z.unknown()).default({}),
  apps: z.record(z.string(), z.looseObject({ clientId: z.string() })).default({}),
  locations: z.record(z.string(), z.unknown()).default({}),
  contacts: z.record(z.string(), z.array(z.unknown())).default({}),
});
type SavedWorld = Pick<World, 'companies' | 'apps' | 'locations'> | z.infer<typeof worldSchema>;

function writeInfo(path: string, info: SandboxInfo): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Whether the persisted emulator world still holds what sandbox.json describes. */
function describes(info: SandboxInfo, world: SavedWorld): boolean {
  return (
    world.companies[info.company.id] !== undefined &&
    world.apps[info.app.appId]?.clientId === info.app.clientId &&
    info.locations.every((l) => world.locations[l.id] !== undefined)
  );
}

function isEmpty(world: SavedWorld): boolean {
  return Object.keys(world.companies).length === 0 && Object.keys(world.apps).length === 0;
}

/** Tandem's marketplace app as registered with the emulator, for Tandem at `tandemUrl` (the sandbox, tests, benchmarks). */
export function appRegistration(tandemUrl: string) {
  return {
    name: 'Tandem',
    redirectUris: [`${tandemUrl}/oauth/callback`],
    webhookUrl: `${tandemUrl}/webhooks/highlevel`,
    customPageUrl: `${tandemUrl}/panel/`,
    scopes: [...TANDEM_SCOPES],
    distribution: 'both' as const,
  };
}

/** Ports may differ from the last run: re-point the app at Tandem and recompute the URLs. */
async function refresh(saved: SandboxInfo, emulator: RunningEmulator, tandemUrl: string): Promise<SandboxInfo> {
  await control(emulator.url, 'PATCH', `/apps/${saved.app.appId}`, appRegistration(tandemUrl));
  const world = emulator.emu.world;
  return urls(
    {
      ...saved,
      locations: saved.locations.map((l) => ({ ...l, privateToken: world.locations[l.id]?.privateToken ?? l.privateToken })),
      webhookPublicKeyPem: emulator.emu.webhookKey.publicKeyPem,
    },
    emulator.url,
    tandemUrl,
  );
}

function urls(info: SandboxInfo, highlevelUrl: string, tandemUrl: string): SandboxInfo {
  const location = info.locations[0]!;
  const admin = info.users.find((u) => u.type === 'agency' && u.role === 'admin')!;
  const install = new URLSearchParams({
    response_type: 'code',
    redirect_uri: `${tandemUrl}/oauth/callback`,
    client_id: info.app.clientId,
    scope: TANDEM_SCOPES.join(' '),
    version_id: info.app.appId,
  });
  return {
    ...info,
    tandemUrl,
    highlevelUrl,
    sandboxUrl: `${highlevelUrl}/v2/location/${location.id}/custom-page/${info.app.appId}?userId=${admin.id}`,
    app: { ...info.app, installUrl: `${highlevelUrl}/v2/oauth/chooselocation?${install.toString().replace(/\+/g, '%20')}` },
  };
}

async function seed(emulator: RunningEmulator, tandemUrl: string): Promise<SandboxInfo> {
  const base = emulator.url;
  const company = await control<{ id: string; name: string }>(base, 'POST', '/companies', { name: DEMO_AGENCY.name });
  const locations: SandboxInfo['locations'] = [];
  for (const demo of DEMO_LOCATIONS) {
    const created = await control<{ id: string; name: string; privateToken: string }>(base, 'POST', '/locations', {
      name: demo.name,
      companyId: company.id,
      timezone: demo.timezone,
    });
    locations.push({ id: created.id, name: created.name, privateToken: created.privateToken });
    // Before the contacts, whose values name these fields by key.
    await control(base, 'POST', `/locations/${created.id}/custom-fields`, demo.customFields);
  }
  const locationId = (key: string) => locations[DEMO_LOCATIONS.findIndex((l) => l.key === key)]!.id;

  const users: SandboxInfo['users'] = [];
  for (const demo of DEMO_USERS) {
    const locationIds = demo.locations.map(locationId);
    const created = await control<{ id: string }>(base, 'POST', '/users', {
      companyId: company.id,
      firstName: demo.firstName,
      lastName: demo.lastName,
      email: demo.email,
      phone: demo.phone,
      type: demo.type,
      role: demo.role,
      locationIds,
    });
    if (demo.deactivated) await control(base, 'PATCH', `/users/${created.id}`, { deactivated: true });
    users.push({
      id: created.id,
      email: demo.email,
      name: `${demo.firstName} ${demo.lastName}`,
      role: demo.role,
      type: demo.type,
      locationIds,
      deactivated: demo.deactivated ?? false,
    });
  }

  const sharedSecret = randomUUID();
  const app = await control<{ appId: string; clientId: string; clientSecret: string; sharedSecret: string }>(
    base,
    'POST',
    '/apps',
    { ...appRegistration(tandemUrl), sharedSecret },
  );

  let phoneIndex = 10;
  for (const [i, demo] of DEMO_LOCATIONS.entries()) {
    const location = locations[i]!;
    // Contact owners: the location's active users, in turn, with every third contact unassigned.
    const owners = users.filter((u) => u.type === 'account' && !u.deactivated && u.locationIds.includes(location.id));
    const contacts = demoContacts(demo, phoneIndex);
    phoneIndex += contacts.length;
    for (const [n, contact] of contacts.entries()) {
      const owner = n % 3 === 2 ? undefined : owners[n % owners.length];
      await createContact(base, location.privateToken, {
        ...contact,
        locationId: location.id,
        ...(owner ? { assignedTo: owner.id } : {}),
      });
    }
  }

  // Tandem is installed once it listens, through the real redirect flow (start.ts installSandbox):
  // the agency admin consents in the emulated marketplace and Tandem receives the code.

  return urls(
    {
      tandemUrl,
      highlevelUrl: base,
      sandboxUrl: '',
      webhookPublicKeyPem: emulator.emu.webhookKey.publicKeyPem,
      company: { id: company.id, name: company.name },
      locations,
      users,
      app: {
        appId: app.appId,
        clientId: app.clientId,
        clientSecret: app.clientSecret,
        sharedSecret: app.sharedSecret,
        installUrl: '',
      },
      tokenEncryptionKey: randomBytes(32).toString('base64'),
      createdAt: new Date().toISOString(),
    },
    base,
    tandemUrl,
  );
}

/** Through the public API, as a HighLevel user's private integration would. */
async function createContact(base: string, token: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${base}/contacts/`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      version: '2021-07-28',
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`sandbox seed: POST /contacts/ answered ${res.status}: ${await res.text()}`);
}

async function control<T = unknown>(base: string, method: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(`${base}/__emulator${path}`, {
    method,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`sandbox seed: ${method} /__emulator${path} answered ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}
