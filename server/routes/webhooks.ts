// POST /webhooks/highlevel: verify HighLevel's Ed25519 signature over the raw bytes, check the
// envelope, store the event in the inbox (committed with the others of the same turn) and answer
// once it is committed; the location's sync loop or the inbox processor applies it later
// (server/installs/inbox-writer.ts).
// HighLevel redelivers only after a 429 (CONTRACT §5.1), so 429 is the answer whenever the event
// could not be stored, and every other refusal (401, 400, 413) is for events that must not be kept.
import type { FastifyInstance } from 'fastify';
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { InboxWriter } from '../installs/inbox-writer.ts';
import { WEBHOOK_BODY_LIMIT } from '../highlevel/webhook-events.ts';
import { checkWebhook, NOT_STORED } from '../highlevel/webhook-receipt.ts';
import { tenant } from './tenant.ts';

export interface WebhookRouteDeps {
  /** Stores verified events (group commit); services.ts builds it. */
  inbox: InboxWriter;
  clock: Clock;
  webhookKey: KeyObject;
  /** This app's id: events for another app are refused. */
  appId: string;
}

export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps): void {
  const { inbox } = deps;
  // An encapsulated plugin, so raw-buffer parsing applies to this route only.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // Any content type: the signature, not the header, decides whether the bytes are HighLevel's.
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));

    // Request logging at warn: Fastify's two info lines per request (incoming, completed) cost more
    // than storing the event at hundreds of webhooks a second; the inbox is the record of each
    // event, and refusals and failures are still logged (warn, error).
    scope.post('/webhooks/highlevel', { bodyLimit: WEBHOOK_BODY_LIMIT, logLevel: 'warn', ...tenant('webhook') }, async (req, reply) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const receipt = checkWebhook(raw, req.headers['x-ghl-signature'], deps.clock.now(), deps);
      if (!receipt.ok) {
        const { refusal } = receipt;
        if (refusal.log) req.log.warn(refusal.log.fields, refusal.log.message);
        throw new AppError(refusal.status, refusal.code, refusal.message);
      }
      const { event } = receipt;

      let stored: boolean;
      try {
        stored = await inbox.store(event);
      } catch (err) {
        req.log.error({ err, webhookId: event.webhookId, type: event.type }, 'webhook not stored; asking HighLevel to redeliver');
        reply.header('retry-after', String(NOT_STORED.retryAfterSeconds));
        throw new AppError(NOT_STORED.status, NOT_STORED.code, NOT_STORED.message);
      }
      return reply.code(200).send({ received: true, duplicate: !stored });
    });
  });
}
