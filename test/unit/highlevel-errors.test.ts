// Pure parts of the HighLevel client: error classification, envelope and header parsing, the
// origin guard, token-response parsing, and the refresh/backoff policy.
import { describe, expect, it } from 'vitest';
import {
  HighLevelError,
  classifyHighLevelError,
  errorMessage,
  parseRateLimit,
  parseRetryAfter,
  resolveUrl,
  retryHintMs,
  type HighLevelErrorClass,
} from '../../server/highlevel/http.ts';
import { parseTokenResponse } from '../../server/highlevel/oauth.ts';
import { backoffMs, needsRefresh, refreshDueAt, BACKOFF_MAX_MS } from '../../server/highlevel/token-policy.ts';

const http = (status: number, message: string) => new HighLevelError(status, message, { kind: 'http', body: { statusCode: status, message } });

describe('classifyHighLevelError', () => {
  const table: [string, unknown, HighLevelErrorClass][] = [
    ['network failure', new HighLevelError(0, 'POST /oauth/token failed: ECONNRESET', { kind: 'network' }), 'retry'],
    ['timeout', new HighLevelError(0, 'POST /oauth/token timed out', { kind: 'timeout' }), 'retry'],
    ['2xx without a usable body', new HighLevelError(200, 'token response has an unexpected shape (access_token)', { kind: 'invalid_response' }), 'retry'],
    ['500', http(500, 'Internal server error'), 'retry'],
    ['502 with an HTML body', new HighLevelError(502, 'Bad Gateway', { kind: 'http', body: '<html>' }), 'retry'],
    ['503', http(503, 'Service Unavailable'), 'retry'],
    ['429', http(429, 'Too Many Requests'), 'retry'],
    ['408', http(408, 'Request Timeout'), 'retry'],
    ['reused refresh token', http(400, 'Invalid grant: refresh token is invalid'), 'reauth'],
    ['used authorization code', http(400, 'Invalid grant: authorization code is invalid'), 'reauth'],
    ['RFC 6749 spelling', new HighLevelError(400, 'invalid_grant: refresh token expired', { kind: 'http' }), 'reauth'],
    ['wrong client credentials', http(401, 'Invalid client: client is invalid'), 'reauth'],
    ['paused location on refresh', http(400, 'Location is not active'), 'paused'],
    ['paused location elsewhere', http(403, 'Location is not active'), 'paused'],
    ['missing parameter', http(400, 'Missing parameter: client_id'), 'record'],
    ['expired access token', http(401, 'Invalid JWT'), 'record'],
    ['missing scope', http(401, 'The token is not authorized for this scope.'), 'record'],
    ['other location', http(403, 'The token does not have access to this location.'), 'record'],
    ['validation', new HighLevelError(422, 'property foo should not exist', { kind: 'http' }), 'record'],
    ['location not approved for minting', http(400, 'Location not found'), 'record'],
    ['not a HighLevel error', new Error('boom'), 'record'],
    ['not an error at all', 'boom', 'record'],
  ];
  it.each(table)('%s → %s', (_name, err, expected) => {
    expect(classifyHighLevelError(err)).toBe(expected);
  });

  it('treats "Invalid grant" as permanent only on a 400', () => {
    expect(classifyHighLevelError(http(500, 'Invalid grant: refresh token is invalid'))).toBe('retry');
  });
});

describe('error envelope and headers', () => {
  it('reads the NestJS message as a string or an array', () => {
    expect(errorMessage(400, { statusCode: 400, message: 'Location is not active', error: 'Bad Request' })).toBe('Location is not active');
    expect(errorMessage(422, { statusCode: 422, message: ['a should not exist', 'b must be a string'] })).toBe('a should not exist; b must be a string');
    expect(errorMessage(404, { error: 'Not Found' })).toBe('Not Found');
    expect(errorMessage(400, { error: 'invalid_grant', error_description: 'expired' })).toBe('invalid_grant: expired');
    expect(errorMessage(502, '<html>bad gateway</html>')).toBe('<html>bad gateway</html>');
    expect(errorMessage(500, undefined)).toBe('HTTP 500');
  });

  it('parses the X-RateLimit-* headers including the daily reset', () => {
    const headers = new Headers({
      'x-ratelimit-limit-daily': '200000',
      'x-ratelimit-daily-remaining': '0',
      'x-ratelimit-daily-reset': '3600000',
      'x-ratelimit-interval-milliseconds': '10000',
      'x-ratelimit-max': '100',
      'x-ratelimit-remaining': '42',
    });
    expect(parseRateLimit(headers)).toEqual({ dailyLimit: 200000, dailyRemaining: 0, dailyResetMs: 3600000, intervalMs: 10000, max: 100, remaining: 42 });
    expect(parseRateLimit(new Headers({ 'x-ratelimit-remaining': 'n/a' }))).toBeUndefined();
    expect(parseRateLimit(new Headers())).toBeUndefined();
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-15T12:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Thu, 15 Jan 2026 12:00:30 GMT', now)).toBe(30000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('derives the wait after a 429: Retry-After, else the daily reset when the day is spent, else the burst interval', () => {
    const at = (retryAfterMs: number | undefined, dailyRemaining: number) =>
      new HighLevelError(429, 'Too Many Requests', { retryAfterMs, rateLimit: { dailyRemaining, dailyResetMs: 3_600_000, intervalMs: 10_000 } });
    expect(retryHintMs(at(2000, 5))).toBe(2000);
    expect(retryHintMs(at(undefined, 0))).toBe(3_600_000);
    expect(retryHintMs(at(undefined, 5))).toBe(10_000);
    expect(retryHintMs(http(500, 'x'))).toBeUndefined();
  });
});

describe('resolveUrl', () => {
  it('stays on the configured origin', () => {
    expect(resolveUrl('https://services.leadconnectorhq.com', '/locations/abc', { a: 1, b: undefined }).href).toBe(
      'https://services.leadconnectorhq.com/locations/abc?a=1',
    );
    expect(resolveUrl('http://127.0.0.1:3001/', '/oauth/token').href).toBe('http://127.0.0.1:3001/oauth/token');
  });

  it.each(['https://evil.example/x', '//evil.example/x', 'locations/abc', '/\\evil.example', '@evil.example/x'])('refuses %s', (path) => {
    expect(() => resolveUrl('https://services.leadconnectorhq.com', path)).toThrow(/refusing/);
  });
});

describe('parseTokenResponse', () => {
  const now = Date.parse('2026-01-15T12:00:00Z');
  const location = {
    access_token: 'at-secret',
    token_type: 'Bearer',
    expires_in: 86399,
    refresh_token: 'rt-secret',
    scope: 'contacts.readonly contacts.write',
    userType: 'Location',
    locationId: 'L1',
    companyId: 'C1',
    userId: 'U1',
    isBulkInstallation: false,
    planId: 'extra fields are fine',
    traceId: 't',
  };

  it('normalises a Location token response', () => {
    expect(parseTokenResponse(location, now)).toEqual({
      accessToken: 'at-secret',
      refreshToken: 'rt-secret',
      expiresAt: now + 86_399_000,
      scopes: ['contacts.readonly', 'contacts.write'],
      userType: 'Location',
      locationId: 'L1',
      companyId: 'C1',
      approvedLocations: [],
      userId: 'U1',
      installToFutureLocations: false,
      isBulkInstallation: false,
    });
  });

  it('normalises a Company token response with nulls for absent fields', () => {
    const grant = parseTokenResponse(
      { ...location, userType: 'Company', locationId: null, approvedLocations: ['L1', 'L2'], installToFutureLocations: true, isBulkInstallation: true },
      now,
    );
    expect(grant).toMatchObject({ userType: 'Company', companyId: 'C1', approvedLocations: ['L1', 'L2'], installToFutureLocations: true });
    expect(grant.locationId).toBeUndefined();
  });

  it('rejects a shape Tandem cannot use, naming fields but never their values', () => {
    const cases = [
      { ...location, access_token: '' },
      { ...location, expires_in: 'soon' },
      { ...location, userType: 'Agency' },
      { ...location, locationId: undefined },
      { ...location, companyId: undefined },
      'not an object',
    ];
    for (const raw of cases) {
      let caught: unknown;
      try {
        parseTokenResponse(raw, now);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(HighLevelError);
      expect((caught as HighLevelError).kind).toBe('invalid_response');
      expect((caught as Error).message).not.toContain('secret');
    }
  });
});

describe('token policy', () => {
  const issued = Date.parse('2026-01-15T12:00:00Z');
  it('refreshes a day-long token one hour before expiry', () => {
    const expires = issued + 86_399_000;
    expect(refreshDueAt(issued, expires)).toBe(expires - 3_600_000);
    expect(needsRefresh({ issuedAt: issued, expiresAt: expires }, expires - 3_600_001)).toBe(false);
    expect(needsRefresh({ issuedAt: issued, expiresAt: expires }, expires - 3_600_000)).toBe(true);
  });

  it('refreshes a short-lived token when a tenth of its life remains', () => {
    expect(refreshDueAt(issued, issued + 600_000)).toBe(issued + 540_000);
    expect(needsRefresh({ issuedAt: issued, expiresAt: issued - 1 }, issued)).toBe(true);
  });

  it('backs off exponentially with jitter, capped, never below the server hint', () => {
    expect(backoffMs(1, () => 0)).toBe(2_500);
    expect(backoffMs(1, () => 1)).toBe(5_000);
    expect(backoffMs(3, () => 1)).toBe(20_000);
    expect(backoffMs(30, () => 1)).toBe(BACKOFF_MAX_MS);
    expect(backoffMs(1, () => 0.5, 3_600_000)).toBe(3_600_000);
    const spread = new Set([0, 0.25, 0.5, 0.75].map((r) => backoffMs(2, () => r)));
    expect(spread.size).toBe(4);
  });
});
