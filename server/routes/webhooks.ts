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
import { verifyWebhookSignature } from '../highlevel/webhook-signature.ts';
import { checkWebhookTimestamp, WEBHOOK_BODY_LIMIT, webhookEnvelopeSchema } from '../highlevel/webhook-events.ts';
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
      const header = req.headers['x-ghl-signature'];
      if (!verifyWebhookSignature(raw, typeof header === 'string' ? header : undefined, deps.webhookKey)) {
        req.log.warn({ signature: header === undefined ? 'missing' : 'invalid', bytes: raw.length }, 'webhook refused: bad signature');
        throw new AppError(401, 'invalid_signature', 'Missing or invalid x-ghl-signature.');
      }

      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new AppError(400, 'invalid_body', 'The webhook body is not JSON.');
      }
      const parsed = webhookEnvelopeSchema.safeParse(json);
      if (!parsed.success) {
        const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ');
        throw new AppError(400, 'invalid_body', `The webhook body lacks a valid ${fields}.`);
      }
      const event = parsed.data;

      const age = checkWebhookTimestamp(event.timestamp, deps.clock.now());
      if (age !== 'ok') {
        req.log.warn({ webhookId: event.webhookId, type: event.type, timestamp: event.timestamp, age }, 'webhook refused: timestamp');
        throw new AppError(400, 'stale_event', `The webhook timestamp is too far in the ${age === 'stale' ? 'past' : 'future'}.`);
      }
      if (event.appId !== undefined && event.appId !== deps.appId) {
        req.log.warn({ webhookId: event.webhookId, type: event.type }, 'webhook refused: another app');
        throw new AppError(401, 'wrong_app', 'This webhook is for another app.');
      }

      let stored: boolean;
      try {
        stored = await inbox.store({
          webhookId: event.webhookId,
          type: event.type,
          locationId: event.locationId ?? null,
          companyId: event.companyId ?? null,
          body: raw.toString('utf8'),
          receivedAt: deps.clock.now(),
        });
      } catch (err) {
        // Not stored means not acknowledged: 429 is the one answer HighLevel redelivers.
        req.log.error({ err, webhookId: event.webhookId, type: event.type }, 'webhook not stored; asking HighLevel to redeliver');
        reply.header('retry-after', '60');
        throw new AppError(429, 'try_again', 'The event could not be stored; please redeliver.');
      }
      return reply.code(200).send({ received: true, duplicate: !stored });
    });
  });
}
