// Starts Tandem (and, without HighLevel credentials, the sandbox beside it): config, database,
// migrations, HTTP. main.ts and the tests both start Tandem through here.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, detectMode, loadConfig, loadSettings, StartError, type Config, type Mode, type Settings } from './config.ts';
import { checkWritableFile, databaseFiles, ensureFolder, migrate, openDatabase, StorageError, writeProblem, type Database } from '../db/client.ts';
import { stagedInboxPath } from '../db/staged-inbox.ts';
import { listInstallations } from '../db/installations.ts';
import { buildApp } from './app.ts';
import { systemClock, type Clock } from './clock.ts';
import { ensureSandboxApiKey, sandboxEnv, startSandbox, type RunningSandbox, type SandboxInfo } from './sandbox.ts';
import { installThroughBrowser } from './sandbox-install.ts';
import { createServices, type Services } from './services.ts';
import type { SyncOptions } from './sync/supervisor.ts';
import type { OperationsOptions } from './sync/operations/runner.ts';

export { StartError };

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Sandbox only: delete the sandbox's data and Tandem's database first. */
  reset?: boolean;
  /** Overrides PORT; 0 picks a free port. */
  port?: number;
  /** Overrides EMULATOR_PORT; 0 picks a free port. */
  emulatorPort?: number;
  /** Overrides DATA_DIR. */
  dataDir?: string;
  /** No request logging (tests). */
  quiet?: boolean;
  /** Injected time (tests); default the system clock. */
  clock?: Clock;
  /** The contact sync loop's tuning; `start: false` leaves it stopped (tests that drive passes themselves). */
  sync?: SyncOptions;
  /** One-time operations' tuning; `start: false` leaves resuming and sweeping to the test. */
  operations?: OperationsOptions & { start?: boolean };
  /**
   * Where the app itself listens when that is not the public address: the front thread
   * (server/front.ts) listens there and passes everything but webhooks on. Implies `behindFront`.
   */
  listen?: { port: number; host: string };
  /** With `listen`: the secret the front marks its requests with (server/security/front-secret.ts). */
  frontSecret?: string;
  /** Called once the app listens, before the sandbox's install and the sync loop start. */
  onListening?(listening: { port: number; config: Config; services: Services }): void;
}

export interface RunningTandem {
  mode: Mode;
  config: Config;
  tandemUrl: string;
  /** The emulated HighLevel page with Tandem's panel inside (sandbox only). */
  sandboxUrl?: string;
  sandbox?: SandboxInfo;
  /** Path of sandbox.json (sandbox only). */
  sandboxFile?: string;
  database: Database;
  services: Services;
  close(): Promise<void>;
}

/**
 * The environment a start works from, shared by startTandem and the front (server/front.ts): the
 * options' overrides applied, --reset refused for a real app, and port 0 resolved to a free port,
 * since the app's URLs must be known before it is registered.
 */
export async function startEnvironment(options: Pick<StartOptions, 'env' | 'port' | 'emulatorPort' | 'dataDir' | 'reset'>): Promise<{ env: NodeJS.ProcessEnv; mode: Mode; settings: Settings }> {
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  if (options.port !== undefined) env.PORT = String(options.port);
  if (options.emulatorPort !== undefined) env.EMULATOR_PORT = String(options.emulatorPort);
  if (options.dataDir !== undefined) env.DATA_DIR = options.dataDir;
  const mode = detectMode(env);
  if (options.reset && mode === 'highlevel') {
    throw new StartError('--reset only applies to the sandbox; it never deletes the data of a real HighLevel app.');
  }
  const settings = loadSettings(env);
  checkStorage(settings, mode, env.DATABASE_PATH !== undefined && env.DATABASE_PATH.trim() !== '');
  if (settings.port === 0 && !settings.publicUrl) {
    try {
      env.PORT = String(await freePort(settings.host));
    } catch (err) {
      throw listenFailure(err, settings);
    }
  }
  return { env, mode, settings };
}

/** Where the front stages webhooks: beside the database, or in DATA_DIR for an in-memory one. */
export function stagedInboxFor(settings: Pick<Settings, 'dataDir' | 'databasePath'>): string {
  return stagedInboxPath(settings.databasePath === ':memory:' ? join(settings.dataDir, 'tandem.db') : settings.databasePath);
}

/**
 * Before anything starts: the folders Tandem writes exist (created when missing) and take files,
 * and the database's files, when there, can be written. SQLite would otherwise open a read-only
 * file read-only without a word and fail every write until a restart; a path under a file or a
 * place like /proc would fail with a raw error, or hang. Throws ConfigError naming the setting, or
 * StartError for a file that is not writable.
 */
function checkStorage(settings: Settings, mode: Mode, databasePathSet: boolean): void {
  const inMemory = settings.databasePath === ':memory:';
  const dataDirIssue = (problem: string) => new ConfigError([{ variable: 'DATA_DIR', value: settings.dataDir, problem }]);
  const databaseIssue = (problem: string) =>
    databasePathSet ? new ConfigError([{ variable: 'DATABASE_PATH', value: settings.databasePath, problem }]) : dataDirIssue(problem);
  const folder = (path: string, issue: (problem: string) => ConfigError, mode?: number) => {
    try {
      ensureFolder(path, mode);
    } catch (err) {
      if (err instanceof StorageError) throw issue(`cannot be used: ${err.message}; choose a folder Tandem can create and write`);
      throw err;
    }
  };
  // The sandbox's folder holds tokens and secrets: private to the user (as startSandbox makes it).
  if (mode === 'sandbox' || inMemory) folder(settings.dataDir, dataDirIssue, mode === 'sandbox' ? 0o700 : undefined);
  if (inMemory) return;
  folder(dirname(settings.databasePath), databaseIssue);
  if (statSync(settings.databasePath, { throwIfNoEntry: false })?.isDirectory()) {
    throw databaseIssue(`is a folder; it must name the SQLite file, e.g. ${join(settings.databasePath, 'tandem.db')}`);
  }
  for (const file of [...databaseFiles(settings.databasePath), ...databaseFiles(stagedInboxFor(settings))]) {
    try {
      checkWritableFile(file);
    } catch (err) {
      if (err instanceof StorageError) throw notWritable(err.message);
      throw err;
    }
  }
}

/** The refusal for a database (or a file beside it) that cannot be written. */
function notWritable(problem: string): StartError {
  return new StartError(
    [
      `Tandem cannot start: its database cannot be written: ${problem}.`,
      'Tandem writes it (and the files SQLite keeps beside it) on every change, and would fail every request that changes data.',
      'Make the file and its folder writable for the user running Tandem (check owner and permissions, `lsattr` for the immutable flag, and that the disk is not mounted read-only), or set DATABASE_PATH to a writable place.',
    ].join('\n'),
  );
}

/**
 * A failure to listen on HOST that is about its value (a name that does not resolve, an address
 * that is not this machine's) as a ConfigError; anything else as it was (a port in use is
 * explained by server/main.ts).
 */
export function listenFailure(err: unknown, settings: Pick<Settings, 'host'>): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' || e.code === 'EAI_NONAME' || e.code === 'EADDRNOTAVAIL') {
    return new ConfigError([
      { variable: 'HOST', value: settings.host, problem: `is not an address of this machine (${e.code}); use 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of its own addresses` },
    ]);
  }
  return err;
}

export async function startTandem(options: StartOptions = {}): Promise<RunningTandem> {
  const { env, mode, settings } = await startEnvironment(options);
  const tandemUrl = settings.publicUrl ?? `http://localhost:${env.PORT ?? settings.port}`;

  let sandbox: RunningSandbox | undefined;
  if (mode === 'sandbox') {
    sandbox = await startSandbox({
      dataDir: settings.dataDir,
      databasePath: settings.databasePath,
      // Behind the front, the front owns the staged inbox and prepared the sandbox before opening it.
      ...(options.listen ? {} : { stagedPath: stagedInboxFor(settings) }),
      emulatorPort: settings.emulatorPort,
      tandemUrl,
      reset: options.reset,
    });
  }
  let database: ReturnType<typeof openDatabase> | undefined;
  let app: ReturnType<typeof buildApp> | undefined;
  try {
    // In the sandbox its own app's credentials win over anything in the environment.
    const config = loadConfig(sandbox ? { ...env, ...sandboxEnv(sandbox.info), PUBLIC_URL: tandemUrl } : env, mode);
    // WAL checkpoints mostly on a worker thread, not in the commits that acknowledge webhooks (db/checkpointer.ts).
    try {
      database = openDatabase(config.databasePath, {
        backgroundCheckpoints: true,
        onCheckpointError: (message) => process.emitWarning(`database checkpoints fell back to SQLite's own: ${message}`),
      });
    } catch (err) {
      // Its folder was checked (checkStorage): what is left is the file itself, e.g. not a database.
      if ((err as Error).name !== 'SqliteError') throw err;
      throw new StartError(
        `Tandem cannot start: its database ${config.databasePath} cannot be opened (${(err as Error).message}). If that file is not Tandem's database, set DATABASE_PATH to another file.`,
      );
    }
    // Before the migrations, which would fail on a read-only file with SQLite's own words.
    const problem = writeProblem(database);
    if (problem) throw notWritable(`${config.databasePath}: ${problem}`);
    migrate(database);
    const clock = options.clock ?? systemClock;
    const logger = options.quiet ? { logger: false as const } : {};
    const services = createServices({ config, db: database, clock, ...logger, ...(options.sync ? { sync: options.sync } : {}), ...(options.operations ? { operations: options.operations } : {}) });
    app = buildApp({ config, db: database, clock, services, ...logger, behindFront: options.listen !== undefined, frontSecret: options.frontSecret, sandboxUrl: sandbox?.info.sandboxUrl });
    // In the sandbox at the default level, what the start itself logs would print as raw JSON
    // above the banner, which says what matters: Fastify's line for the port the app listens on
    // (under `npm start` an internal loopback port behind the front, server/front.ts) and the
    // requests of the sandbox installing Tandem. Warnings and errors still print; LOG_LEVEL=debug
    // shows it all.
    const quietStart = sandbox !== undefined && !options.quiet && app.log.level === 'info';
    if (quietStart) app.log.level = 'warn';
    try {
      try {
        await app.listen(
          options.listen
            ? { ...options.listen, listenTextResolver: (address) => `app thread listening at ${address} (internal: the front passes requests on to it)` }
            : { port: config.port, host: config.host },
        );
      } catch (err) {
        throw options.listen ? err : listenFailure(err, config);
      }
      options.onListening?.({ port: (app.server.address() as AddressInfo).port, config, services });
      if (sandbox && listInstallations(database.db).length === 0) await installSandbox(sandbox.info, database);
      if (sandbox) ensureSandboxApiKey(sandbox, database.db, clock.now());
    } finally {
      if (quietStart) app.log.level = 'info';
    }
    // After listen: webhooks can arrive and the OAuth callback can complete while the loop starts.
    if (options.sync?.start !== false) services.sync.start();
    // Runs a previous process left unfinished resume from their checkpoints.
    if (options.operations?.start !== false) services.operations.start();
    const db = database;
    const server = app;
    let closing: Promise<void> | undefined;
    return {
      mode,
      config,
      tandemUrl,
      sandboxUrl: sandbox?.info.sandboxUrl,
      sandbox: sandbox?.info,
      sandboxFile: sandbox?.file,
      database: db,
      services,
      close() {
        closing ??= (async () => {
          await server.close();
          await sandbox?.emulator.close();
          db.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await app?.close();
    database?.close();
    await sandbox?.emulator.close();
    throw err;
  }
}

/**
 * The sandbox's agency admin installs Tandem on the demo agency through the real redirect flow
 * (install link, consent, callback), choosing both locations and future locations — on first start
 * and after --reset; a restart with installations in the database leaves them alone.
 */
async function installSandbox(info: SandboxInfo, database: Database): Promise<void> {
  const admin = info.users.find((u) => u.type === 'agency' && u.role === 'admin');
  const result = await installThroughBrowser(info.tandemUrl, {
    ...(admin ? { userId: admin.id } : {}),
    target: 'agency',
    locationIds: info.locations.map((l) => l.id),
    installToFutureLocations: true,
  });
  const installed = new Map(listInstallations(database.db).map((i) => [i.locationId, i.status]));
  const missing = info.locations.filter((l) => installed.get(l.id) !== 'active');
  if (result.status !== 200 || missing.length > 0) {
    throw new StartError(
      `The sandbox could not install Tandem on ${missing.map((l) => l.name).join(', ') || 'the demo agency'} (callback answered ${result.status}). Start over with \`npm start -- --reset\`.`,
    );
  }
}

/** A free TCP port on `host` (tests reserve Tandem's port before registering its URLs). */
export async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
