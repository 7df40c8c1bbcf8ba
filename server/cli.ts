// Operator commands: `npm run tandem -- <command>`. Reads the database named by DATABASE_PATH /
// DATA_DIR (the same settings as `npm start`); needs no HighLevel credentials and never prints a token.
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { openDatabase } from '../db/client.ts';
import { ConfigError, loadSettings } from './config.ts';
import { installationRows, installationsJson, installationsTable } from './installs/report.ts';

const USAGE = `Usage: npm run tandem -- <command>

Commands:
  installations [--json]   list the HighLevel locations Tandem is installed on, with status
                           (active, needs re-auth, paused, uninstalled) and token expiry

Reads the database at DATABASE_PATH (default DATA_DIR/tandem.db, DATA_DIR default ./data).`;

export interface CliIo {
  env: NodeJS.ProcessEnv;
  now: number;
  out(text: string): void;
  err(text: string): void;
}

/** Runs one command; returns the exit code. */
export function runCli(argv: string[], io: CliIo): number {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    io.out(USAGE);
    return command ? 0 : 2;
  }
  if (command !== 'installations') {
    io.err(`Unknown command: ${command}\n\n${USAGE}`);
    return 2;
  }
  const unknown = rest.filter((a) => a !== '--json');
  if (unknown.length) {
    io.err(`Unknown option: ${unknown.join(' ')}\n\n${USAGE}`);
    return 2;
  }
  return installations(rest.includes('--json'), io);
}

function installations(json: boolean, io: CliIo): number {
  let settings: ReturnType<typeof loadSettings>;
  try {
    settings = loadSettings(io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message);
      return 1;
    }
    throw err;
  }
  const installUrl = `${settings.publicUrl ?? `http://localhost:${settings.port}`}/oauth/install`;
  let found: ReturnType<typeof statSync> = undefined;
  try {
    found = statSync(settings.databasePath, { throwIfNoEntry: false });
  } catch (err) {
    // A path through a file (DATA_DIR=/etc/passwd/data): there is no database there.
    if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
  }
  if (!found) {
    if (json) io.out('[]');
    else io.out(`No installations: there is no Tandem database at ${settings.databasePath} yet. Start Tandem (npm start), then install it from ${installUrl}.`);
    return 0;
  }
  if (found.isDirectory()) {
    io.err(`Cannot read installations: ${settings.databasePath} is a folder. Set DATABASE_PATH to Tandem's database file (e.g. ${settings.databasePath.replace(/\/+$/, '')}/tandem.db), or DATA_DIR to the folder that holds tandem.db.`);
    return 1;
  }
  let database: ReturnType<typeof openDatabase>;
  try {
    database = openDatabase(settings.databasePath);
  } catch (err) {
    io.err(`Cannot open the Tandem database ${settings.databasePath}: ${(err as Error).message}.`);
    return 1;
  }
  try {
    const rows = installationRows(database.db);
    if (json) io.out(installationsJson(rows));
    else if (rows.length === 0) io.out(`No installations yet. Install Tandem on a HighLevel location from ${installUrl}.`);
    else io.out(installationsTable(rows, io.now));
    return 0;
  } catch (err) {
    // Most likely a database Tandem has not migrated yet (never started with this version).
    io.err(`Cannot read installations from ${settings.databasePath}: ${(err as Error).message}. Start Tandem once so it prepares the database.`);
    return 1;
  } finally {
    database.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = runCli(process.argv.slice(2), {
    env: process.env,
    now: Date.now(),
    out: (t) => console.log(t),
    err: (t) => console.error(t),
  });
}
