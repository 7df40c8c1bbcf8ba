// `npm start` as a person runs it: server/main.ts under tsx, in a process group of its own as a
// terminal's foreground job, in sandbox mode. What a first run prints and opens, and Ctrl+C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sandboxLanding } from '../../server/routes/panel.ts';

const root = new URL('../..', import.meta.url).pathname;
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const dataDir = mkdtempSync(join(tmpdir(), 'tandem-npm-start-'));
let child: ChildProcess | undefined;

afterAll(() => {
  // Only if the test failed before Tandem stopped: the group this test started.
  if (child?.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('prints the banner first, leads from Tandem to the sandbox, and stops cleanly on one Ctrl+C', async () => {
    // What `npm start` runs once the panel is built, as npm runs it: tsx's CLI with Tandem as its
    // child. No HIGHLEVEL_* variables: the sandbox.
    child = spawn(process.execPath, [tsxCli, 'server/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dataDir, PORT: '0', EMULATOR_PORT: '0' },
      detached: true, // its own process group, as the terminal's foreground job
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const output = { changed: () => {} };
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      output.changed();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      output.changed();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child!.once('exit', (code, signal) => resolve({ code, signal })));
    const printed = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (stdout.includes(text)) resolve();
          else if (child!.exitCode !== null) reject(new Error(`exited before printing ${JSON.stringify(text)}:\n${stdout}\n${stderr}`));
        };
        output.changed = check;
        child!.once('exit', check);
        check();
      });

    await printed('Stop with Ctrl+C.');
    // Nothing before the banner: no JSON lines, not Fastify's line for the app thread's internal port.
    const beforeBanner = stdout.slice(0, stdout.indexOf('Tandem is running in sandbox mode'));
    expect(beforeBanner).not.toContain('Server listening');
    expect(beforeBanner).not.toMatch(/^\{"level"/m);

    const sandboxUrl = /Open HighLevel sandbox: (\S+)/.exec(stdout)![1]!;
    const tandemUrl = /Tandem: +(\S+)/.exec(stdout)![1]!;
    // The banner's Tandem address leads to the banner's sandbox page.
    const landing = await fetch(`${tandemUrl}/`, { redirect: 'manual' });
    expect(landing.status).toBe(200);
    expect(await landing.text()).toBe(sandboxLanding(sandboxUrl));
    expect((await fetch(`${tandemUrl}/favicon.ico`)).status).toBe(204);

    // One Ctrl+C: the terminal signals the whole group, and the copies relayed to Tandem (tsx's,
    // npm's) arrive at random a few milliseconds later; the second group signal stands for them.
    process.kill(-child.pid!, 'SIGINT');
    process.kill(-child.pid!, 'SIGINT');
    const { code, signal } = await exited;
    const all = `${stdout}\n${stderr}`;
    expect(all).toContain('SIGINT: stopping Tandem…');
    expect(all).not.toContain('exiting now');
    expect(stdout).toContain('Tandem stopped.');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  }, 60_000);
});
