// Runs the emulator alone: `npm run emulator -- --port 3001 --state .sandbox/emulator.json`.
// Prints the base URL and the webhook public key (Tandem's WEBHOOK public key setting).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { startEmulator } from './server.ts';
import type { EmulatorOptions } from './emulator.ts';

const USAGE = `Usage: npm run emulator -- [options]
  --port <n>              port to listen on (default 3001; 0 = any free port)
  --host <addr>           address to bind (default 127.0.0.1)
  --state <file>          save the world to this JSON file and reload it on start (default: in memory)
  --webhook-key <file>    Ed25519 private key PEM for webhook signatures; created when missing
                          (default with --state: <state>.webhook-key.pem, so the public key survives restarts)
  --rate-burst <n>        requests per burst window (default 100)
  --rate-window-ms <n>    burst window length in ms (default 10000)
  --rate-daily <n>        requests per day (default 200000)
  --search-lag-ms <n>     delay before writes show in POST /contacts/search (default 0)
  --search-lag-jitter-ms <n>
                          random extra delay in [0, n) per write on top of it, so writes may
                          show out of order (default 0)
  --webhook-retry-ms <n>  delay before a webhook answered 429 is redelivered (default 600000)
  --logger                log every request
  --help`;

function int(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} needs an integer >= ${min}, got "${value}"`);
  return n;
}

/** Reads the webhook signing key, creating it on first run so a sandbox keeps one public key. */
function webhookKey(path: string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8');
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, pem, { mode: 0o600 });
  return pem;
}

function definedOnly<T extends Record<string, unknown>>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '3001' },
      host: { type: 'string', default: '127.0.0.1' },
      state: { type: 'string' },
      'webhook-key': { type: 'string' },
      'rate-burst': { type: 'string' },
      'rate-window-ms': { type: 'string' },
      'rate-daily': { type: 'string' },
      'search-lag-ms': { type: 'string' },
      'search-lag-jitter-ms': { type: 'string' },
      'webhook-retry-ms': { type: 'string' },
      logger: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const keyPath = values['webhook-key'] ?? (values.state ? `${values.state}.webhook-key.pem` : undefined);
  const options: EmulatorOptions & { port: number; host: string; logger: boolean } = {
    port: int('port', values.port)!,
    host: values.host,
    logger: values.logger,
    config: {
      rateLimit: definedOnly({
        burstMax: int('rate-burst', values['rate-burst'], 1),
        burstWindowMs: int('rate-window-ms', values['rate-window-ms'], 1),
        dailyMax: int('rate-daily', values['rate-daily'], 1),
      }),
      ...definedOnly({
        searchLagMs: int('search-lag-ms', values['search-lag-ms']),
        searchLagJitterMs: int('search-lag-jitter-ms', values['search-lag-jitter-ms']),
        webhookRetryIntervalMs: int('webhook-retry-ms', values['webhook-retry-ms']),
      }),
    },
    ...(values.state ? { persistPath: values.state } : {}),
    ...(keyPath ? { webhookPrivateKeyPem: webhookKey(keyPath) } : {}),
  };

  const running = await startEmulator(options);
  console.log(`HighLevel emulator listening on ${running.url}`);
  console.log(`  UI:          ${running.url}/`);
  console.log(`  control API: ${running.url}/__emulator/info`);
  if (values.state) console.log(`  state file:  ${values.state}`);
  console.log(`Webhook public key (x-ghl-signature, Ed25519):\n${running.emu.webhookKey.publicKeyPem.trim()}`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    console.log(`${signal}: saving state and closing`);
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  console.error(USAGE);
  process.exit(1);
});
