// What the webhook receiver decides about one request before it stores anything: HighLevel's
// Ed25519 signature over the raw bytes, the JSON envelope, the timestamp's age and the app id.
// Shared by the Fastify route (server/routes/webhooks.ts) and the front thread's receiver
// (server/front.ts), so both answer every request alike.
import type { KeyObject } from 'node:crypto';
import type { NewInboxEvent } from '../../db/webhook-inbox.ts';
import { verifyWebhookSignature } from './webhook-signature.ts';
import { checkWebhookTimestamp, webhookEnvelopeSchema } from './webhook-events.ts';

export interface ReceiptDeps {
  webhookKey: KeyObject;
  /** This app's id: events for another app are refused. */
  appId: string;
}

/** A refusal: the HTTP status, the error code and message, and what to log (warn) when anything. */
export interface Refusal {
  status: 400 | 401;
  code: string;
  message: string;
  log?: { fields: Record<string, unknown>; message: string };
}

export type Receipt = { ok: true; event: NewInboxEvent } | { ok: false; refusal: Refusal };

/** Checks one webhook request; `now` is the receiver's clock (ms). */
export function checkWebhook(raw: Buffer, signature: string | string[] | undefined, now: number, deps: ReceiptDeps): Receipt {
  const header = typeof signature === 'string' ? signature : undefined;
  if (!verifyWebhookSignature(raw, header, deps.webhookKey)) {
    return refuse(401, 'invalid_signature', 'Missing or invalid x-ghl-signature.', {
      fields: { signature: signature === undefined ? 'missing' : 'invalid', bytes: raw.length },
      message: 'webhook refused: bad signature',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    return refuse(400, 'invalid_body', 'The webhook body is not JSON.');
  }
  const parsed = webhookEnvelopeSchema.safeParse(json);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ');
    return refuse(400, 'invalid_body', `The webhook body lacks a valid ${fields}.`);
  }
  const event = parsed.data;
  const age = checkWebhookTimestamp(event.timestamp, now);
  if (age !== 'ok') {
    return refuse(400, 'stale_event', `The webhook timestamp is too far in the ${age === 'stale' ? 'past' : 'future'}.`, {
      fields: { webhookId: event.webhookId, type: event.type, timestamp: event.timestamp, age },
      message: 'webhook refused: timestamp',
    });
  }
  if (event.appId !== undefined && event.appId !== deps.appId) {
    // App ids are not secrets. Which form HighLevel sends is inferred (CONTRACT §5.3): if this is
    // Tandem's own app, the operator sets HIGHLEVEL_APP_ID to the id logged here.
    return refuse(401, 'wrong_app', 'This webhook is for another app.', {
      fields: { webhookId: event.webhookId, type: event.type, appId: event.appId, expectedAppId: deps.appId },
      message: 'webhook refused: another app (if appId is this app, set HIGHLEVEL_APP_ID to it)',
    });
  }
  return {
    ok: true,
    event: {
      webhookId: event.webhookId,
      type: event.type,
      locationId: event.locationId ?? null,
      companyId: event.companyId ?? null,
      body: raw.toString('utf8'),
      receivedAt: now,
    },
  };
}

function refuse(status: Refusal['status'], code: string, message: string, log?: Refusal['log']): Receipt {
  return { ok: false, refusal: { status, code, message, ...(log ? { log } : {}) } };
}

/** Not stored means not acknowledged: 429 is the one answer HighLevel redelivers (CONTRACT §5.1). */
export const NOT_STORED = {
  status: 429,
  retryAfterSeconds: 60,
  code: 'try_again',
  message: 'The event could not be stored; please redeliver.',
} as const;
