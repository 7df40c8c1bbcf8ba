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

/**
 * A request URL as logged: the path, and the query's parameter names without their values. Query
 * values carry secrets (the OAuth callback's `code` and `state`) and people's data (a contact
 * search's email or phone); what a request did is readable without them.
 */
export function loggedUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const names = url
    .slice(q + 1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq < 0 ? pair : `${pair.slice(0, eq)}=[redacted]`;
    });
  return `${url.slice(0, q)}?${names.join('&')}`;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      // Fastify's own request serializer, with the URL as loggedUrl writes it.
      req: (req: LoggedRequest) => ({
        method: req.method,
        url: req.url === undefined ? undefined : loggedUrl(req.url),
        host: req.host,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
  };
}
