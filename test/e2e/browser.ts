// Headless Chromium for end-to-end tests (Debian's /usr/bin/chromium through playwright-core), and
// the sandbox each test file drives it against.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { startTandem, type RunningTandem, type StartOptions } from '../../server/start.ts';

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

/**
 * A test file's world: the sandbox (Tandem and its emulated HighLevel, on free ports, data in a
 * temporary folder) and a browser, started before the file's tests and closed after them, with
 * test-results/ ready for screenshots. Its fields are set once the tests run.
 */
export function sandboxInBrowser(name: string, options: Pick<StartOptions, 'sync'> = {}): { tandem: RunningTandem; browser: Browser } {
  const dataDir = mkdtempSync(join(tmpdir(), `tandem-e2e-${name}-`));
  const world = {} as { tandem: RunningTandem; browser: Browser };
  beforeAll(async () => {
    world.tandem = await startTandem({ dataDir, port: 0, emulatorPort: 0, quiet: true, env: {}, ...options });
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
