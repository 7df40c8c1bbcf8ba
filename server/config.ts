// The environment, parsed once with zod into a typed Config; explains every bad or missing variable.
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { appIdOf } from './highlevel/webhook-events.ts';
import { API_RATE_LIMIT_DEFAULT, type ApiRateLimit } from './auth/api-rate-limit.ts';

export type Mode = 'sandbox' | 'highlevel';

/**
 * HighLevel's published Ed25519 key for `x-ghl-signature` (Webhook Integration Guide, CONTRACT §5.2).
 * A documented fact, so it is the default; the sandbox replaces it with the emulator's own key.
 */
export const HIGHLEVEL_WEBHOOK_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=
-----END PUBLIC KEY-----
`;

/** The OAuth scopes Tandem asks for when installed (README lists what each one is for). */
export const TANDEM_SCOPES = [
  'contacts.readonly',
  'contacts.write',
  'users.readonly',
  'locations.readonly',
  'locations/customFields.readonly',
  'oauth.readonly',
  'oauth.write',
] as const;

export interface Config {
  mode: Mode;
  port: number;
  host: string;
  /** Where HighLevel (browsers, webhooks, OAuth redirects) reaches Tandem; no trailing slash. */
  publicUrl: string;
  dataDir: string;
  databasePath: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  emulatorPort: number;
  /**
   * Which proxies' X-Forwarded-For to believe (Fastify's `trustProxy`): false, true, a hop count
   * or addresses. The sign-in rate limit is per client address, so behind a proxy it needs this.
   */
  trustProxy: boolean | number | string;
  /** The REST API's limit per location: a burst, then so many a second (server/auth/api-rate-limit.ts). */
  apiRateLimit: ApiRateLimit;
  highlevel: {
    clientId: string;
    clientSecret: string;
    /** Decrypts the custom page's user-data payload (CryptoJS AES passphrase). */
    sharedSecret: string;
    webhookPublicKeyPem: string;
    /** The app id HighLevel's INSTALL and UNINSTALL webhooks carry (HIGHLEVEL_APP_ID, else derived from the client id). */
    appId: string;
    apiUrl: string;
    marketplaceUrl: string;
  };
  /** 32 bytes; encrypts OAuth tokens at rest (AES-256-GCM). */
  tokenEncryptionKey: Buffer;
  /** Keys from before a rotation: they still open old rows, which are re-sealed on their next refresh. */
  tokenEncryptionKeysOld: Buffer[];
  /** Extra origins that may frame the panel, beyond HighLevel's and the learned white-label domains. */
  frameAncestors: string[];
}

/** What each variable is and where to find it, printed when it is missing or wrong. */
export const VARIABLE_HELP = {
  HIGHLEVEL_CLIENT_ID:
    "Your app's Client ID: HighLevel developer portal (marketplace.gohighlevel.com) → My Apps → your app → Advanced Settings → Auth → Client Keys",
  HIGHLEVEL_CLIENT_SECRET:
    'The Client Secret shown once when you add a client key (same place: Advanced Settings → Auth → Client Keys)',
  HIGHLEVEL_SHARED_SECRET:
    'The Shared Secret that encrypts the user data HighLevel gives the custom page: Advanced Settings → Auth → Shared Secret',
  TOKEN_ENCRYPTION_KEY:
    'Not from HighLevel: 32 random bytes, base64, that encrypt OAuth tokens at rest; create it once with `openssl rand -base64 32` and keep it',
  TOKEN_ENCRYPTION_KEYS_OLD:
    'Optional, for key rotation: the previous TOKEN_ENCRYPTION_KEY value(s), comma-separated; tokens sealed with them stay readable and are re-sealed with the current key on their next refresh',
  HIGHLEVEL_APP_ID:
    "Optional: your app's id as HighLevel's INSTALL and UNINSTALL webhooks carry it (the id in your app's developer-portal address). By default the part of the Client ID before its first '-'; set it only if the log says those webhooks are refused as for another app",
  HIGHLEVEL_WEBHOOK_PUBLIC_KEY:
    "The PEM public key that verifies webhook signatures (x-ghl-signature); defaults to HighLevel's published Ed25519 key",
  PUBLIC_URL: 'The https URL where HighLevel reaches Tandem, e.g. https://tandem.example.com',
  HIGHLEVEL_API_URL: 'HighLevel API base URL (default https://services.leadconnectorhq.com)',
  HIGHLEVEL_MARKETPLACE_URL: 'HighLevel marketplace base URL (default https://marketplace.gohighlevel.com)',
  PORT: 'TCP port Tandem listens on (default 3000)',
  HOST: 'Interface Tandem listens on (default 127.0.0.1; 0.0.0.0 to accept outside connections)',
  EMULATOR_PORT: 'TCP port of the sandbox HighLevel emulator (default 3001)',
  DATA_DIR: 'Folder for the SQLite database and sandbox files (default ./data)',
  DATABASE_PATH: 'SQLite file (default DATA_DIR/tandem.db)',
  LOG_LEVEL: 'One of fatal, error, warn, info, debug, trace, silent (default info)',
  TRUST_PROXY:
    'Behind a reverse proxy: how many proxies to trust (e.g. 1) or their addresses/CIDRs, comma-separated, so Tandem sees client addresses (default: none)',
  API_RATE_LIMIT_BURST: `How many requests one location's API keys may send to the REST API at once; beyond it the API answers 429 (default ${API_RATE_LIMIT_DEFAULT.burst})`,
  API_RATE_LIMIT_PER_SECOND: `How many requests a second one location's API keys regain after a burst, up to API_RATE_LIMIT_BURST (default ${API_RATE_LIMIT_DEFAULT.perSecond})`,
  FRAME_ANCESTORS:
    "Optional: extra origins allowed to frame the panel, comma-separated (e.g. https://app.myagency.com), for a white-label domain HighLevel did not report at install",
} as const;

export type Variable = keyof typeof VARIABLE_HELP;

/** The credentials that switch Tandem from the sandbox to a real HighLevel app. */
const CREDENTIALS = ['HIGHLEVEL_CLIENT_ID', 'HIGHLEVEL_CLIENT_SECRET', 'HIGHLEVEL_SHARED_SECRET'] as const;

export interface ConfigIssue {
  variable: Variable;
  problem: string;
  /** The value the problem is about, shown unless the variable holds a secret. */
  value?: string;
}

/** Variables whose values are never printed: credentials and keys. */
const SECRET: ReadonlySet<Variable> = new Set(['HIGHLEVEL_CLIENT_SECRET', 'HIGHLEVEL_SHARED_SECRET', 'TOKEN_ENCRYPTION_KEY', 'TOKEN_ENCRYPTION_KEYS_OLD']);

/** `PORT=abc`, as a person would type the setting (quoted when it has spaces or is empty). */
function setting(issue: ConfigIssue): string {
  if (issue.value === undefined || SECRET.has(issue.variable) || issue.variable === 'HIGHLEVEL_WEBHOOK_PUBLIC_KEY') return issue.variable;
  const value = /^[^\s"'$`\\]+$/.test(issue.value) ? issue.value : JSON.stringify(issue.value);
  return `${issue.variable}=${value}`;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(
      [
        'Tandem cannot start; fix these environment variables:',
        ...issues.map((i) => `  ${setting(i)} ${i.problem}. ${VARIABLE_HELP[i.variable]}`),
        ...(issues.some((i) => (CREDENTIALS as readonly string[]).includes(i.variable) || i.variable === 'TOKEN_ENCRYPTION_KEY')
          ? ['To try Tandem without a HighLevel app, unset all HIGHLEVEL_* credentials: `npm start` then runs the local sandbox.']
          : []),
      ].join('\n'),
    );
    this.name = 'ConfigError';
  }

  get variables(): Variable[] {
    return this.issues.map((i) => i.variable);
  }
}

/** A reason not to start that the person running Tandem can fix; printed without a stack. */
export class StartError extends Error {
  override name = 'StartError';
}

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

/** Sandbox mode when none of the HighLevel app credentials is set. */
export function detectMode(env: NodeJS.ProcessEnv): Mode {
  return CREDENTIALS.some((name) => set(env[name])) ? 'highlevel' : 'sandbox';
}

const PORT_RULE = 'must be a whole number from 0 to 65535';
const port = z
  .string()
  .trim()
  .regex(/^\d{1,5}$/, PORT_RULE)
  .transform(Number)
  .refine((n) => n <= 65535, PORT_RULE);
const COUNT_RULE = 'must be a whole number from 1 to 1000000';
const count = z
  .string()
  .trim()
  .regex(/^\d{1,7}$/, COUNT_RULE)
  .transform(Number)
  .refine((n) => n >= 1 && n <= 1_000_000, COUNT_RULE);
const url = z
  .url({ protocol: /^https?$/ })
  .transform((u) => u.replace(/\/+$/, ''));

const fields = {
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  PUBLIC_URL: url.optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_PATH: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'not a log level' }).default('info'),
  EMULATOR_PORT: port.default(3001),
  TRUST_PROXY: z
    .string()
    .trim()
    .refine((v) => /^(true|false|\d{1,2}|[0-9a-f:.\/]+(\s*,\s*[0-9a-f:.\/]+)*)$/i.test(v), 'must be true, false, a number of proxies, or addresses/CIDRs, comma-separated')
    .transform((v): boolean | number | string => (v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v.replace(/\s+/g, '')))
    .default(false),
  API_RATE_LIMIT_BURST: count.default(API_RATE_LIMIT_DEFAULT.burst),
  API_RATE_LIMIT_PER_SECOND: count.default(API_RATE_LIMIT_DEFAULT.perSecond),
  HIGHLEVEL_API_URL: url.default('https://services.leadconnectorhq.com'),
  HIGHLEVEL_MARKETPLACE_URL: url.default('https://marketplace.gohighlevel.com'),
  HIGHLEVEL_CLIENT_ID: z.string().trim().min(1),
  HIGHLEVEL_CLIENT_SECRET: z.string().trim().min(1),
  HIGHLEVEL_SHARED_SECRET: z.string().min(1),
  // Whatever form the log shows (a 24-hex id, or a whole Client ID with its '-' part).
  HIGHLEVEL_APP_ID: z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "must be the app id as Tandem's log shows it: letters, digits, '-' or '_', at most 64").optional(),
  HIGHLEVEL_WEBHOOK_PUBLIC_KEY: z
    .string()
    // .env files often carry PEMs on one line with literal "\n".
    .transform((pem) => pem.replace(/\\n/g, '\n'))
    .refine(isPublicKey, 'is not a PEM public key')
    .default(HIGHLEVEL_WEBHOOK_PUBLIC_KEY),
  TOKEN_ENCRYPTION_KEY: z
    .string()
    .refine(isKey, 'must be 32 bytes encoded as base64 (44 characters)')
    .transform((k) => Buffer.from(k, 'base64')),
  TOKEN_ENCRYPTION_KEYS_OLD: z
    .string()
    .transform((list) => list.split(/[\s,]+/).filter(Boolean))
    .refine((list) => list.every(isKey), 'must be comma-separated keys, each 32 bytes encoded as base64 (44 characters)')
    .transform((list) => list.map((k) => Buffer.from(k, 'base64')))
    .default([]),
  FRAME_ANCESTORS: z
    .string()
    .transform((list) => list.split(/[\s,]+/).filter(Boolean))
    .refine((list) => list.every(isFrameOrigin), 'must be origins like https://app.example.com (or https://*.example.com), comma-separated')
    .default([]),
};

/** Settings that exist before any HighLevel credentials (the sandbox needs them to start). */
const settingsSchema = z.object({
  PORT: fields.PORT,
  HOST: fields.HOST,
  PUBLIC_URL: fields.PUBLIC_URL,
  DATA_DIR: fields.DATA_DIR,
  DATABASE_PATH: fields.DATABASE_PATH,
  LOG_LEVEL: fields.LOG_LEVEL,
  EMULATOR_PORT: fields.EMULATOR_PORT,
  TRUST_PROXY: fields.TRUST_PROXY,
  API_RATE_LIMIT_BURST: fields.API_RATE_LIMIT_BURST,
  API_RATE_LIMIT_PER_SECOND: fields.API_RATE_LIMIT_PER_SECOND,
  HIGHLEVEL_API_URL: fields.HIGHLEVEL_API_URL,
  HIGHLEVEL_MARKETPLACE_URL: fields.HIGHLEVEL_MARKETPLACE_URL,
});
const configSchema = z.object(fields);

export type Settings = Omit<Config, 'highlevel' | 'tokenEncryptionKey' | 'tokenEncryptionKeysOld' | 'publicUrl' | 'frameAncestors'> & { publicUrl?: string };

/** Parses what does not depend on credentials; throws ConfigError. */
export function loadSettings(env: NodeJS.ProcessEnv): Settings {
  const values = clean(env);
  const parsed = settingsSchema.safeParse(values);
  if (!parsed.success) throw toConfigError(parsed.error, values);
  const e = parsed.data;
  return {
    mode: detectMode(env),
    port: e.PORT,
    host: e.HOST,
    publicUrl: e.PUBLIC_URL,
    dataDir: e.DATA_DIR,
    databasePath: e.DATABASE_PATH ?? join(e.DATA_DIR, 'tandem.db'),
    logLevel: e.LOG_LEVEL,
    emulatorPort: e.EMULATOR_PORT,
    trustProxy: e.TRUST_PROXY,
    apiRateLimit: { burst: e.API_RATE_LIMIT_BURST, perSecond: e.API_RATE_LIMIT_PER_SECOND },
  };
}

/**
 * The full configuration. `mode` labels the result: the sandbox passes the environment with its
 * own app's credentials merged in, so both modes validate the same way.
 */
export function loadConfig(env: NodeJS.ProcessEnv, mode: Mode = detectMode(env)): Config {
  const values = clean(env);
  const parsed = configSchema.safeParse(values);
  if (!parsed.success) throw toConfigError(parsed.error, values);
  const e = parsed.data;
  return {
    ...loadSettings(env),
    mode,
    publicUrl: e.PUBLIC_URL ?? `http://localhost:${e.PORT}`,
    highlevel: {
      clientId: e.HIGHLEVEL_CLIENT_ID,
      clientSecret: e.HIGHLEVEL_CLIENT_SECRET,
      sharedSecret: e.HIGHLEVEL_SHARED_SECRET,
      webhookPublicKeyPem: e.HIGHLEVEL_WEBHOOK_PUBLIC_KEY,
      appId: e.HIGHLEVEL_APP_ID ?? appIdOf(e.HIGHLEVEL_CLIENT_ID),
      apiUrl: e.HIGHLEVEL_API_URL,
      marketplaceUrl: e.HIGHLEVEL_MARKETPLACE_URL,
    },
    tokenEncryptionKey: e.TOKEN_ENCRYPTION_KEY,
    tokenEncryptionKeysOld: e.TOKEN_ENCRYPTION_KEYS_OLD,
    frameAncestors: e.FRAME_ANCESTORS,
  };
}

/** Blank variables count as unset, so `FOO=` in a .env file does not trip validation. */
function clean(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.keys(VARIABLE_HELP)) out[name] = set(env[name]) ? env[name] : undefined;
  return out;
}

function toConfigError(error: z.ZodError, values: Record<string, string | undefined>): ConfigError {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const variable = String(issue.path[0]) as Variable;
    if (issues.some((i) => i.variable === variable)) continue;
    // Set but wrong is not missing (PORT=abc once read as "PORT is missing").
    const value = values[variable];
    issues.push(value === undefined ? { variable, problem: 'is missing' } : { variable, value, problem: `is invalid: ${issue.message}` });
  }
  return new ConfigError(issues);
}

function isKey(value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === 32 && bytes.toString('base64') === value;
}

/** An origin a CSP `frame-ancestors` can hold as-is: scheme, host (maybe `*.`-wildcarded), port. */
function isFrameOrigin(value: string): boolean {
  return /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/i.test(value);
}

function isPublicKey(pem: string): boolean {
  try {
    createPublicKey(pem);
    return true;
  } catch {
    return false;
  }
}
