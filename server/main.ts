// Entry point for `npm start`: starts Tandem (and the sandbox when no HighLevel app is configured),
// prints where to go, and closes gracefully on SIGINT/SIGTERM.
import { relative } from 'node:path';
import { ConfigError } from './config.ts';
import { startFront, type RunningFront } from './front.ts';
import { stopSignalListener } from './signals.ts';
import { StartError } from './start.ts';

const USAGE = `Usage: npm start [-- --reset]

  --reset   sandbox only: delete the sandbox's data (data/sandbox.json, the emulated HighLevel
            and Tandem's database) and seed a fresh demo agency
  --help    show this text

Without HIGHLEVEL_CLIENT_ID, HIGHLEVEL_CLIENT_SECRET and HIGHLEVEL_SHARED_SECRET Tandem runs against
a local HighLevel emulator (the sandbox). See README.md for a real HighLevel app.`;

async function main(argv: string[]): Promise<void> {
  const unknown = argv.filter((a) => a !== '--reset' && a !== '--help');
  if (argv.includes('--help') || unknown.length > 0) {
    if (unknown.length > 0) console.error(`Unknown option: ${unknown.join(' ')}\n`);
    console.log(USAGE);
    process.exit(unknown.length > 0 ? 2 : 0);
  }

  // Listening from the first moment: a Ctrl+C while Tandem starts (the sandbox's seed and install
  // take a few seconds) lets the start finish, then stops what it started, instead of killing the
  // process half way through writing the sandbox. One Ctrl+C often arrives more than once
  // (server/signals.ts): only a later press exits at once.
  let tandem: RunningFront | undefined;
  let stopRequested = false;
  const stop = (running: RunningFront) =>
    running.close().then(
      () => {
        console.log('Tandem stopped.');
        process.exit(0);
      },
      (err: unknown) => {
        console.error('Error while stopping:', err);
        process.exit(1);
      },
    );
  const onSignal = stopSignalListener({
    stop(signal) {
      stopRequested = true;
      if (!tandem) {
        console.log(`\n${signal}: Tandem stops as soon as it has started… (a second Ctrl+C exits at once)`);
        return;
      }
      console.log(`\n${signal}: stopping Tandem… (a second Ctrl+C exits at once)`);
      void stop(tandem);
    },
    forceExit(signal) {
      console.error(`${signal} again: exiting now.`);
      process.exit(1);
    },
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // Two threads: the front takes webhooks and passes the rest on to the app (server/front.ts).
    tandem = await startFront({ reset: argv.includes('--reset') });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartError) {
      console.error(`\n${err.message}\n`);
      process.exit(1);
    }
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(`\nTandem cannot start: ${(err as Error).message}. Set PORT (or EMULATOR_PORT) to a free port.\n`);
      process.exit(1);
    }
    throw err;
  }
  if (stopRequested) {
    await stop(tandem);
    return;
  }
  console.log(banner(tandem));
}

function banner(t: RunningFront): string {
  if (t.mode === 'sandbox' && t.sandbox) {
    const path = t.sandboxFile ?? '';
    const file = relative(process.cwd(), path).startsWith('..') ? path : relative(process.cwd(), path);
    return [
      '',
      'Tandem is running in sandbox mode: no HighLevel credentials are set, so a local HighLevel',
      `emulator runs beside it with a demo agency ("${t.sandbox.company.name}").`,
      '',
      `  Open HighLevel sandbox: ${t.sandboxUrl}`,
      `  Tandem:                 ${t.tandemUrl}`,
      `  Emulated HighLevel:     ${t.sandbox.highlevelUrl}`,
      `  Sandbox details:        ${file} (ids, tokens and secrets for scripts)`,
      `  REST API:               ${t.tandemUrl}/api/v1 (key: apiKey.key in the sandbox details; spec at /api/v1/openapi.json)`,
      '',
      'Start over with `npm start -- --reset`. Stop with Ctrl+C.',
      '',
    ].join('\n');
  }
  const local = /^http:\/\/(localhost|127\.0\.0\.1)/.test(t.tandemUrl);
  return [
    '',
    `Tandem is running for HighLevel app ${t.clientId}.`,
    '',
    `  Tandem:                 ${t.tandemUrl}`,
    `  Redirect URL:           ${t.tandemUrl}/oauth/callback`,
    `  Webhook URL:            ${t.tandemUrl}/webhooks/highlevel`,
    `  Custom page URL:        ${t.tandemUrl}/panel/`,
    ...(local ? ['', 'Note: PUBLIC_URL is a local address; HighLevel cannot reach it. Set PUBLIC_URL to your https URL.'] : []),
    '',
  ].join('\n');
}

await main(process.argv.slice(2));
