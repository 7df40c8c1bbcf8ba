// The one way Tandem sends a request to HighLevel: configured origin only, Version header, bearer
// auth, JSON or form bodies, a timeout, and every failure turned into a HighLevelError that says
// what happened (NestJS error envelope, X-RateLimit-* headers, Retry-After) — plus the pure
// classification that decides what a caller does about it.

/** API version every call uses (CONTRACT §2.1); `/oauth/token` alone takes no Version header. */
export const API_VERSION = '2021-07-28';

/** Long enough for a slow HighLevel, short enough that a refresh lock (60 s) outlives the request. */
export const DEFAULT_TIMEOUT_MS = 20_000;

/** HighLevel's X-RateLimit-* headers (CONTRACT §6); absent headers stay undefined. */
export interface RateLimitInfo {
  /** X-RateLimit-Max: requests allowed per burst interval. */
  max?: number;
  /** X-RateLimit-Remaining: left in the current burst interval. */
  remaining?: number;
  /** X-RateLimit-Interval-Milliseconds: the burst interval. */
  intervalMs?: number;
  /** X-RateLimit-Limit-Daily. */
  dailyLimit?: number;
  /** X-RateLimit-Daily-Remaining. */
  dailyRemaining?: number;
  /** X-RateLimit-Daily-Reset: milliseconds until the daily budget resets. */
  dailyResetMs?: number;
}

export type HighLevelErrorKind = 'http' | 'network' | 'timeout' | 'invalid_response';

export interface HighLevelErrorDetails {
  kind?: HighLevelErrorKind;
  /** The parsed response body (never the request, so never a token we sent). */
  body?: unknown;
  rateLimit?: RateLimitInfo;
  retryAfterMs?: number;
  /** "POST /oauth/token": which call failed, without host or query. */
  request?: string;
  cause?: unknown;
}

export class HighLevelError extends Error {
  override readonly name = 'HighLevelError';
  readonly kind: HighLevelErrorKind;
  readonly body: unknown;
  readonly rateLimit: RateLimitInfo | undefined;
  readonly retryAfterMs: number | undefined;
  readonly request: string | undefined;
  constructor(
    /** HTTP status; 0 when no response arrived (network, timeout). */
    readonly status: number,
    message: string,
    details: HighLevelErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = details.kind ?? 'http';
    this.body = details.body;
    this.rateLimit = details.rateLimit;
    this.retryAfterMs = details.retryAfterMs;
    this.request = details.request;
  }
}

export interface HighLevelTarget {
  /** The configured base URL (Config.highlevel.apiUrl); requests go nowhere else. */
  apiUrl: string;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** Path on the API host, starting with '/', e.g. `/locations/abc`. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  token?: string;
  json?: unknown;
  form?: Record<string, string>;
  timeoutMs?: number;
  /** The caller's cancellation (e.g. uninstall); its abort is rethrown as is, not as a HighLevelError. */
  signal?: AbortSignal;
  /** For a Retry-After given as an HTTP date; defaults to the system time. */
  now?: number;
}

export interface HighLevelResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
  rateLimit?: RateLimitInfo;
}

/** Resolves `path` against the configured base and refuses anything that would leave its origin. */
export function resolveUrl(apiUrl: string, path: string, query?: RequestOptions['query']): URL {
  const base = new URL(apiUrl);
  if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\')) {
    throw new Error(`refusing HighLevel request to ${JSON.stringify(path)}: only paths on ${base.origin} are allowed`);
  }
  const url = new URL(base.href.replace(/\/+$/, '') + path);
  if (url.origin !== base.origin) throw new Error(`refusing HighLevel request outside ${base.origin}`);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  return url;
}

function headerNumber(headers: Headers, name: string): number | undefined {
  const raw = headers.get(name);
  if (raw === null || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

export function parseRateLimit(headers: Headers): RateLimitInfo | undefined {
  const info: RateLimitInfo = {
    max: headerNumber(headers, 'x-ratelimit-max'),
    remaining: headerNumber(headers, 'x-ratelimit-remaining'),
    intervalMs: headerNumber(headers, 'x-ratelimit-interval-milliseconds'),
    dailyLimit: headerNumber(headers, 'x-ratelimit-limit-daily'),
    dailyRemaining: headerNumber(headers, 'x-ratelimit-daily-remaining'),
    dailyResetMs: headerNumber(headers, 'x-ratelimit-daily-reset'),
  };
  const present = Object.fromEntries(Object.entries(info).filter(([, v]) => v !== undefined)) as RateLimitInfo;
  return Object.keys(present).length ? present : undefined;
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The NestJS envelope's `message` is a string, or an array for validation errors (CONTRACT §2.3). */
export function errorMessage(status: number, body: unknown): string {
  if (body && typeof body === 'object') {
    const m = (body as { message?: unknown }).message;
    if (typeof m === 'string' && m) return m;
    if (Array.isArray(m) && m.length) return m.map(String).join('; ');
    // RFC 6749 style ({ error, error_description }), in case HighLevel answers that way.
    const { error: e, error_description: d } = body as { error?: unknown; error_description?: unknown };
    if (typeof e === 'string' && e) return typeof d === 'string' && d ? `${e}: ${d}` : e;
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 200);
  return `HTTP ${status}`;
}

function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Sends one request; resolves with the parsed JSON of a 2xx answer, throws HighLevelError otherwise. */
export async function request<T = unknown>(target: HighLevelTarget, opts: RequestOptions): Promise<HighLevelResponse<T>> {
  const url = resolveUrl(target.apiUrl, opts.path, opts.query);
  const label = `${opts.method} ${url.pathname}`;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (url.pathname !== '/oauth/token') headers.version = API_VERSION;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }

  const timeout = AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let res: Response;
  let text: string;
  try {
    res = await (target.fetch ?? fetch)(url, { method: opts.method, headers, body, signal, redirect: 'manual' });
    text = await res.text();
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? err;
    if (timeout.aborted) throw new HighLevelError(0, `${label} timed out`, { kind: 'timeout', request: label, cause: err });
    // The cause (e.g. ECONNRESET) says what broke; the request itself, with its secrets, is not kept.
    const reason = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new HighLevelError(0, `${label} failed: ${reason?.code ?? reason?.message ?? (err as Error).message}`, {
      kind: 'network',
      request: label,
      cause: err,
    });
  }

  const parsed = parseBody(text);
  const rateLimit = parseRateLimit(res.headers);
  if (res.status >= 200 && res.status < 300) {
    if (text && typeof parsed === 'string') {
      throw new HighLevelError(res.status, `${label} answered ${res.status} without JSON`, { kind: 'invalid_response', request: label, rateLimit });
    }
    return { status: res.status, body: parsed as T, headers: res.headers, ...(rateLimit ? { rateLimit } : {}) };
  }
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), opts.now ?? Date.now());
  throw new HighLevelError(res.status, errorMessage(res.status, parsed), {
    kind: 'http',
    body: parsed,
    request: label,
    ...(rateLimit ? { rateLimit } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

export type HighLevelErrorClass = 'retry' | 'reauth' | 'paused' | 'record';

/**
 * What to do about a failed HighLevel call (RELIABILITY.md "Refresh errors treated alike"):
 * - retry:  no answer (network, timeout), an unusable 2xx, 408, 429 or 5xx — the request may be
 *           repeated later with backoff; stored tokens stay as they are.
 * - reauth: the grant is dead — "Invalid grant" (reused/expired/revoked refresh token or code) or
 *           "Invalid client" (our client credentials rejected); only a new install helps.
 * - paused: "Location is not active" (SaaS-paused); the same refresh token works again later.
 * - record: any other 4xx: this request is wrong or not allowed; retrying it unchanged cannot help.
 * Anything that is not a HighLevelError is 'record': unknown failures must not loop.
 */
export function classifyHighLevelError(err: unknown): HighLevelErrorClass {
  if (!(err instanceof HighLevelError)) return 'record';
  if (err.kind !== 'http') return 'retry';
  if (err.status === 408 || err.status === 429 || err.status >= 500) return 'retry';
  if (/location is not active/i.test(err.message)) return 'paused';
  if (isInvalidGrant(err)) return 'reauth';
  if ((err.status === 400 || err.status === 401) && /invalid[ _]client/i.test(err.message)) return 'reauth';
  return 'record';
}

/**
 * The grant itself is dead: a reused, expired or revoked refresh token (or code). HighLevel says
 * "Invalid grant: …" (CONTRACT §1.4); the RFC 6749 spelling `invalid_grant` is accepted too.
 */
export function isInvalidGrant(err: unknown): boolean {
  return err instanceof HighLevelError && err.kind === 'http' && err.status === 400 && /invalid[ _]grant/i.test(err.message);
}

/**
 * How long HighLevel asked us to wait, if it said: Retry-After, else for a 429 the daily reset when
 * the daily budget is spent, else the burst interval (as the official SDK does, CONTRACT §6).
 */
export function retryHintMs(err: HighLevelError): number | undefined {
  if (err.retryAfterMs !== undefined) return err.retryAfterMs;
  if (err.status !== 429) return undefined;
  const rl = err.rateLimit;
  if (rl?.dailyRemaining === 0 && rl.dailyResetMs !== undefined) return rl.dailyResetMs;
  return rl?.intervalMs;
}
