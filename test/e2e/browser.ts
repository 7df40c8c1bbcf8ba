// Headless Chromium for end-to-end tests (Debian's /usr/bin/chromium through playwright-core), and
// the sandbox each test file drives it against.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { openDatabase, type Database } from '../../db/client.ts';
import { startFront, type FrontOptions, type RunningFront } from '../../server/front.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Tandem as a browser test sees it: `npm start`'s two threads, and the test's own connection to its database. */
export interface E2eTandem extends RunningFront {
  database: Database;
}

/**
 * A test file's world: the sandbox as `npm start` runs it (Tandem's front and app threads, server/front.ts,
 * and its emulated HighLevel, on free ports, data in a temporary folder) and a browser, started
 * before the file's tests and closed after them, with test-results/ ready for screenshots. Its
 * fields are set once the tests run.
 */
export function sandboxInBrowser(name: string, options: Pick<FrontOptions, 'sync'> = {}): { tandem: E2eTandem; browser: Browser } {
  const dataDir = mkdtempSync(join(tmpdir(), `tandem-e2e-${name}-`));
  const world = {} as { tandem: E2eTandem; browser: Browser };
  beforeAll(async () => {
    const front = await startFront({ dataDir, port: 0, emulatorPort: 0, quiet: true, env: {}, ...options });
    const database = openDatabase(front.databasePath);
    world.tandem = {
      ...front,
      database,
      async close() {
        database.close();
        await front.close();
      },
    };
    world.browser = await launchBrowser();
    mkdirSync('test-results', { recursive: true });
  });
  afterAll(async () => {
    await world.browser?.close();
    await world.tandem?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return world;
}
