// Pure pieces of the install flow: webhook envelope and time window, the app id, white-label domain
// hygiene (it ends up in a CSP header), inbox backoff, the per-location lock and the CLI's times.
import { describe, expect, it } from 'vitest';
import {
  appIdOf,
  checkWebhookTimestamp,
  installEventSchema,
  webhookEnvelopeSchema,
  whitelabelDomainOf,
  WEBHOOK_MAX_AGE_MS,
  WEBHOOK_MAX_SKEW_MS,
} from '../../server/highlevel/webhook-events.ts';
import { INBOX_RETENTION_MS, MAX_ATTEMPTS, retryDelayMs } from '../../server/installs/inbox-processor.ts';
import { keyedLock } from '../../server/installs/keyed-lock.ts';
import { relative } from '../../server/installs/report.ts';

const NOW = Date.parse('2026-01-15T12:00:00.000Z');

describe('webhook envelope', () => {
  it('needs type, webhookId and a date, and keeps every other field', () => {
    const ok = webhookEnvelopeSchema.parse({ type: 'INSTALL', webhookId: 'w1', timestamp: '2025-01-28T14:35:00Z', extra: { a: 1 } });
    expect(ok.extra).toEqual({ a: 1 });
    for (const bad of [
      { webhookId: 'w1', timestamp: '2025-01-28T14:35:00Z' },
      { type: 'INSTALL', timestamp: '2025-01-28T14:35:00Z' },
      { type: 'INSTALL', webhookId: 'w1', timestamp: 'yesterday' },
      { type: 'INSTALL', webhookId: '', timestamp: '2025-01-28T14:35:00Z' },
      { type: 'INSTALL', webhookId: 'w1', timestamp: '2025-01-28T14:35:00Z', appId: 42 },
    ]) {
      expect(webhookEnvelopeSchema.safeParse(bad).success).toBe(false);
    }
  });

  it('accepts HighLevel retries for two hours and five minutes of clock skew', () => {
    const at = (ms: number) => new Date(ms).toISOString();
    expect(checkWebhookTimestamp(at(NOW), NOW)).toBe('ok');
    expect(checkWebhookTimestamp(at(NOW - 70 * 60_000), NOW)).toBe('ok');
    expect(checkWebhookTimestamp(at(NOW - WEBHOOK_MAX_AGE_MS), NOW)).toBe('ok');
    expect(checkWebhookTimestamp(at(NOW - WEBHOOK_MAX_AGE_MS - 1), NOW)).toBe('stale');
    expect(checkWebhookTimestamp(at(NOW + WEBHOOK_MAX_SKEW_MS), NOW)).toBe('ok');
    expect(checkWebhookTimestamp(at(NOW + WEBHOOK_MAX_SKEW_MS + 1), NOW)).toBe('future');
  });

  it("derives the app id from the client id as HighLevel's SDK does", () => {
    expect(appIdOf('6835011c08f18f1088f92f9f-mcnl7omh')).toBe('6835011c08f18f1088f92f9f');
    expect(appIdOf('nodash')).toBe('nodash');
  });
});

describe('white-label domain from INSTALL', () => {
  const domain = (details: unknown) => whitelabelDomainOf(installEventSchema.parse({ type: 'INSTALL', whitelabelDetails: details }));

  it('keeps a bare host name, lower-cased', () => {
    expect(domain({ domain: 'App.Bluebird.example', logoUrl: 'x' })).toBe('app.bluebird.example');
    expect(domain({ domain: 'https://crm.agency.example/login' })).toBe('crm.agency.example');
  });

  it('says "none" for an agency without white label and "unknown" when the event is silent', () => {
    expect(domain({})).toBeNull();
    expect(domain({ domain: '' })).toBeNull();
    expect(whitelabelDomainOf(installEventSchema.parse({ type: 'INSTALL' }))).toBeUndefined();
    expect(domain('not an object')).toBeUndefined();
  });

  it('drops anything that could smuggle a directive into a CSP header', () => {
    for (const bad of ["evil.example; script-src 'unsafe-inline'", 'a b.example', '*.example.com', 'localhost', 'ex ample.com', '<x>.com']) {
      expect(domain({ domain: bad })).toBeNull();
    }
  });
});

describe('inbox backoff', () => {
  it('doubles from 30 s and stays under an hour', () => {
    expect([1, 2, 3, 4].map(retryDelayMs)).toEqual([30_000, 60_000, 120_000, 240_000]);
    expect(retryDelayMs(20)).toBe(3_600_000);
    // The total time before giving up outlasts a HighLevel hiccup of several minutes.
    const total = Array.from({ length: MAX_ATTEMPTS - 1 }, (_, i) => retryDelayMs(i + 1)).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(30 * 60_000);
  });

  it('keeps processed events longer than any redelivery is accepted, so dedupe never forgets too early', () => {
    expect(INBOX_RETENTION_MS).toBeGreaterThan(WEBHOOK_MAX_AGE_MS + WEBHOOK_MAX_SKEW_MS);
  });
});

describe('keyed lock', () => {
  it('runs work for one key in order and different keys side by side', async () => {
    const lock = keyedLock();
    const log: string[] = [];
    let releaseA!: () => void;
    const gateA = new Promise<void>((r) => (releaseA = r));
    const first = lock('a', async () => {
      log.push('a1 start');
      await gateA;
      log.push('a1 end');
      throw new Error('a1 failed');
    });
    const second = lock('a', async () => {
      log.push('a2');
      return 2;
    });
    const other = lock('b', async () => {
      log.push('b1');
      return 'b';
    });
    expect(await other).toBe('b');
    expect(log).toEqual(['a1 start', 'b1']);
    releaseA();
    await expect(first).rejects.toThrow('a1 failed');
    expect(await second).toBe(2);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
  });
});

describe('relative times for the CLI', () => {
  it('reads like a person would say it', () => {
    expect(relative(NOW + 30_000, NOW)).toBe('just now');
    expect(relative(NOW - 5 * 60_000, NOW)).toBe('5m ago');
    expect(relative(NOW + (23 * 60 + 59) * 60_000, NOW)).toBe('in 23h 59m');
    expect(relative(NOW - (3 * 24 + 2) * 3_600_000, NOW)).toBe('3d 2h ago');
  });
});
