// pino options for Tandem's logger: structured JSON, with every secret-bearing path redacted.
import type { LoggerOptions } from 'pino';
import type { Config } from './config.ts';

/**
 * Paths that may carry credentials. Redaction is a safety net: code should not log these at all.
 * `payload` is the custom page's encrypted user data, which must never reach a log either.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  '*.accessToken',
  '*.refreshToken',
  '*.clientSecret',
  '*.sharedSecret',
  '*.privateToken',
  '*.tokenEncryptionKey',
  '*.payload',
  'config.highlevel.clientSecret',
  'config.highlevel.sharedSecret',
  'config.tokenEncryptionKey',
];

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
}
