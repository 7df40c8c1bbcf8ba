// `npm start` as a person runs it: server/main.ts under tsx, in a process group of its own as a
// terminal's foreground job, in sandbox mode. What a first run prints and opens, and Ctrl+C (also
// during the start).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** Tandem as `npm start` runs it once the panel is built: tsx's CLI with Tandem as its child. */
function startTandem(env: Record<string, string> = {}) {
  // No HIGHLEVEL_* variables: the sandbox.
  const proc = spawn(process.execPath, [tsxCli, 'server/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dataDir, PORT: '0', EMULATOR_PORT: '0', ...env },
    detached: true, // its own process group, as the terminal's foreground job
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  const out = { stdout: '', stderr: '' };
  const waiting = new Set<() => void>();
  const changed = () => waiting.forEach((check) => check());
  proc.stdout!.on('data', (chunk: Buffer) => {
    out.stdout += chunk.toString();
    changed();
  });
  proc.stderr!.on('data', (chunk: Buffer) => {
    out.stderr += chunk.toString();
    changed();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  /** Resolves once stdout matches. */
  const printed = (text: string | RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (typeof text === 'string' ? out.stdout.includes(text) : text.test(out.stdout)) {
          waiting.delete(check);
          resolve();
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          waiting.delete(check);
          reject(new Error(`exited before printing ${String(text)}:\n${out.stdout}\n${out.stderr}`));
        }
      };
      waiting.add(check);
      proc.once('exit', check);
      check();
    });
  /** One Ctrl+C: the terminal signals the whole group, and the copies relayed to Tandem (tsx's,
   * npm's) arrive at random a few milliseconds later; the second group signal stands for them. */
  const ctrlC = () => {
    process.kill(-proc.pid!, 'SIGINT');
    process.kill(-proc.pid!, 'SIGINT');
  };
  return { proc, out, exited, printed, ctrlC };
}

describe('npm start', () => {
  it('prints the banner first, leads from Tandem to the sandbox, and stops cleanly on one Ctrl+C', async () => {
    const { out, exited, printed, ctrlC } = startTandem();
    await printed('Stop with Ctrl+C.');
    // Nothing before the banner: no JSON lines, not Fastify's line for the app thread's internal port.
    const beforeBanner = out.stdout.slice(0, out.stdout.indexOf('Tandem is running in sandbox mode'));
    expect(beforeBanner).not.toContain('Server listening');
    expect(beforeBanner).not.toMatch(/^\{"level"/m);

    const sandboxUrl = /Open HighLevel sandbox: (\S+)/.exec(out.stdout)![1]!;
    const tandemUrl = /Tandem: +(\S+)/.exec(out.stdout)![1]!;
    // The banner's Tandem address leads to the banner's sandbox page.
    const landing = await fetch(`${tandemUrl}/`, { redirect: 'manual' });
    expect(landing.status).toBe(200);
    expect(await landing.text()).toBe(sandboxLanding(sandboxUrl));
    expect((await fetch(`${tandemUrl}/favicon.ico`)).status).toBe(204);

    ctrlC();
    const { code, signal } = await exited;
    const all = `${out.stdout}\n${out.stderr}`;
    expect(all).toContain('SIGINT: stopping Tandem…');
    expect(all).not.toContain('exiting now');
    expect(out.stdout).toContain('Tandem stopped.');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('a Ctrl+C while the sandbox is still being set up lets the start finish, then stops; the next start finds it whole', async () => {
    rmSync(dataDir, { recursive: true, force: true });
    // At debug level the sandbox's start logs as it goes: its first line means Tandem listens for
    // signals and is not yet started (the banner comes last).
    const first = startTandem({ LOG_LEVEL: 'debug' });
    await first.printed(/^\{"level"/m);
    expect(first.out.stdout).not.toContain('Tandem is running');
    first.ctrlC();
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.out.stdout).toContain('SIGINT: Tandem stops as soon as it has started…');
    expect(first.out.stdout).toContain('Tandem stopped.');
    expect(first.out.stdout).not.toContain('Tandem is running');

    // The sandbox it set up is whole: the next start uses it as it is and answers.
    const second = startTandem();
    await second.printed('Stop with Ctrl+C.');
    const tandemUrl = /Tandem: +(\S+)/.exec(second.out.stdout)![1]!;
    expect((await fetch(`${tandemUrl}/health`)).status).toBe(200);
    second.ctrlC();
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 90_000);

  it('with a real app configured, logs the public address it listens on, and the app thread\'s as internal', async () => {
    const tandem = startTandem({
      HIGHLEVEL_CLIENT_ID: 'app-1234567890abcdef-client',
      HIGHLEVEL_CLIENT_SECRET: 'client-secret',
      HIGHLEVEL_SHARED_SECRET: 'shared-secret',
      TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      PUBLIC_URL: 'https://tandem.example.com',
      DATABASE_PATH: join(dataDir, 'production.db'),
    });
    await tandem.printed('Tandem is running for HighLevel app');
    // The log is written asynchronously: it may follow the banner.
    await tandem.printed('"msg":"Tandem listening"');
    await tandem.printed('app thread listening at');
    const lines = tandem.out.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; address?: string; publicUrl?: string });
    const front = lines.find((l) => l.msg === 'Tandem listening');
    expect(front?.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(front?.publicUrl).toBe('https://tandem.example.com');
    const app = lines.filter((l) => /listening at/.test(l.msg));
    expect(app.map((l) => l.msg)).toEqual([expect.stringMatching(/^app thread listening at http:\/\/127\.0\.0\.1:\d+ \(internal/)]);
    tandem.ctrlC();
    expect(await tandem.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});

describe('npm start with a setting it cannot use', () => {
  /** Runs `npm start` to its end: its exit code and output (killed, and said so, if it hangs). */
  function run(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    const proc = spawn(process.execPath, [tsxCli, 'server/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', EMULATOR_PORT: '0', ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // A start that hangs (DATA_DIR under /proc once did) fails the test instead of holding it. Eight
    // starts at once on a busy two-core machine took over 20 s to load tsx: 45 s, within the test's 60.
    const guard = setTimeout(() => {
      output += '\n[still running after 45 s: killed]';
      process.kill(-proc.pid!, 'SIGKILL');
    }, 45_000);
    return new Promise((resolve) =>
      proc.once('exit', (code) => {
        clearTimeout(guard);
        resolve({ code, output });
      }),
    );
  }

  it('says what is wrong in one line naming the setting and its value, and exits 1 without a stack trace', async () => {
    const base = mkdtempSync(join(tmpdir(), 'tandem-npm-start-settings-'));
    try {
      const file = join(base, 'a-file');
      writeFileSync(file, '');
      const folder = join(base, 'a-folder');
      mkdirSync(folder);
      const dir = (name: string) => join(base, name);
      const cases: { env: Record<string, string>; line: string }[] = [
        { env: { PORT: 'abc', DATA_DIR: dir('port') }, line: '  PORT=abc is invalid: must be a whole number from 0 to 65535. TCP port Tandem listens on' },
        { env: { PORT: '4301.5', DATA_DIR: dir('port2') }, line: '  PORT=4301.5 is invalid: must be a whole number from 0 to 65535.' },
        { env: { HOST: '999.1.1.1', DATA_DIR: dir('host') }, line: '  HOST=999.1.1.1 is not an address of this machine (' },
        // TEST-NET-1: an address, but never this machine's.
        { env: { HOST: '192.0.2.1', DATA_DIR: dir('host2') }, line: '  HOST=192.0.2.1 is not an address of this machine (EADDRNOTAVAIL); use 127.0.0.1 (this machine only), 0.0.0.0 (every interface)' },
        { env: { DATA_DIR: join(file, 'data') }, line: `  DATA_DIR=${join(file, 'data')} cannot be used: ${file} is a file, not a folder; choose a folder Tandem can create and write.` },
        { env: { DATABASE_PATH: folder, DATA_DIR: dir('db') }, line: `  DATABASE_PATH=${folder} is a folder; it must name the SQLite file, e.g. ${join(folder, 'tandem.db')}.` },
        ...(process.platform === 'linux'
          ? [
              // Node's recursive mkdir loops forever under /proc; /sys refuses with EPERM.
              { env: { DATA_DIR: '/proc/tandem-nope/data' }, line: '  DATA_DIR=/proc/tandem-nope/data cannot be used: the folder /proc/tandem-nope cannot be created (ENOENT)' },
              { env: { DATA_DIR: '/sys/tandem-nope' }, line: '  DATA_DIR=/sys/tandem-nope cannot be used: the folder /sys/tandem-nope cannot be created' },
            ]
          : []),
      ];
      const results = await Promise.all(cases.map((c) => run(c.env)));
      for (const [i, { code, output }] of results.entries()) {
        const { env, line } = cases[i]!;
        expect({ env, code, output }).toEqual({ env, code: 1, output: expect.stringContaining(line) });
        expect(output).toContain('Tandem cannot start; fix these environment variables:');
        // One problem, one line; no stack.
        expect(output.split('\n').filter((l) => l.startsWith('  '))).toHaveLength(1);
        expect(output).not.toMatch(/^\s+at /m);
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 60_000);
});
