// Test helpers: an emulator over real HTTP on a free port, a manual clock, and a small API client.
import { setTimeout as delay } from 'node:timers/promises';
import { startEmulator, type RunningEmulator } from '../../emulator/server.ts';
import type { EmulatorOptions } from '../../emulator/emulator.ts';
import type { Clock } from '../../emulator/state.ts';

export class ManualClock implements Clock {
  constructor(private t = Date.parse('2026-01-15T12:00:00.000Z')) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

export async function testEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  return startEmulator({ ...options, port: 0 });
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** Calls the emulator like a HighLevel client would (Version 2021-07-28 unless overridden). */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; version?: string | null; headers?: Record<string, string>; form?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
  if (opts.version !== null) headers.version = opts.version ?? '2021-07-28';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(base + path, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

/** Control API call (no Version header). */
export async function control<T = any>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await call<T>(base, method, `/__emulator${path}`, { body, version: null });
  if (res.status >= 400) throw new Error(`control ${method} ${path} -> ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Polls `check` until it returns a truthy value (tests wait for conditions, never fixed sleeps). */
export async function until<T>(check: () => T | Promise<T>, what = 'condition', timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}
