// HighLevel webhook bodies (CONTRACT §5): the envelope every event shares, the INSTALL/UNINSTALL
// payloads, and the pure checks the webhook route applies before storing an event.
import { z } from 'zod';

/**
 * How old an event may be. HighLevel redelivers only after a 429, every ~10 minutes, six times
 * (~70 minutes in all), and a redelivery keeps its original timestamp; two hours covers that span
 * with margin, while a replay of a captured request from yesterday is refused.
 */
export const WEBHOOK_MAX_AGE_MS = 2 * 60 * 60_000;
/** Clock skew tolerated for timestamps in the future. */
export const WEBHOOK_MAX_SKEW_MS = 5 * 60_000;
/** Largest body accepted; HighLevel's events are a few KiB (a contact with custom fields). */
export const WEBHOOK_BODY_LIMIT = 256 * 1024;

const id = z.string().min(1);

/** What every event carries; the rest of the body is left for the event's own schema. */
export const webhookEnvelopeSchema = z.looseObject({
  type: id,
  webhookId: id,
  timestamp: z.string().refine((s) => Number.isFinite(Date.parse(s)), 'timestamp is not a date'),
  appId: z.string().optional(),
  locationId: id.nullish(),
  companyId: id.nullish(),
});
export type WebhookEnvelope = z.infer<typeof webhookEnvelopeSchema>;

export type TimestampCheck = 'ok' | 'stale' | 'future';

export function checkWebhookTimestamp(timestamp: string, now: number): TimestampCheck {
  const at = Date.parse(timestamp);
  if (at < now - WEBHOOK_MAX_AGE_MS) return 'stale';
  if (at > now + WEBHOOK_MAX_SKEW_MS) return 'future';
  return 'ok';
}

/** The 24-hex app id is the client id's part before the first '-' (as the official SDK derives it). */
export function appIdOf(clientId: string): string {
  return clientId.split('-')[0] ?? clientId;
}

export const installEventSchema = z.looseObject({
  type: z.literal('INSTALL'),
  // Both may be missing for installs to future locations (CONTRACT §5.3).
  companyId: id.optional(),
  locationId: id.optional(),
  userId: z.string().optional(),
  installType: z.string().optional(),
  // `{}` when the agency has no white label; tolerate anything else as "unknown".
  whitelabelDetails: z.looseObject({ domain: z.string().nullish() }).optional().catch(undefined),
});
export type InstallEvent = z.infer<typeof installEventSchema>;

export const uninstallEventSchema = z.looseObject({
  type: z.literal('UNINSTALL'),
  companyId: id.optional(),
  locationId: id.optional(),
});
export type UninstallEvent = z.infer<typeof uninstallEventSchema>;

/**
 * LocationUpdate (CONTRACT §5.3): the location is `id`, not `locationId`. Sent when a sub-account
 * changes (which changes is not documented; the emulator sends it on every one, a reactivation
 * included). Its body does not say whether the location is active, so it is a reason to ask
 * HighLevel, not an answer.
 */
export const locationUpdateSchema = z.looseObject({
  type: z.literal('LocationUpdate'),
  id: z.string().min(1),
  companyId: z.string().min(1).nullish(),
});

/**
 * The agency's white-label domain as a bare host name, or null when it has none. `undefined` when
 * the event says nothing (keep what we know). The value ends up in a CSP header, so anything that
 * is not a plain host name is dropped rather than passed on.
 */
export function whitelabelDomainOf(event: InstallEvent): string | null | undefined {
  const details = event.whitelabelDetails;
  if (!details) return undefined;
  const raw = details.domain?.trim().toLowerCase();
  if (!raw) return null;
  let host = raw;
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//.test(raw)) host = new URL(raw).hostname;
  } catch {
    return null;
  }
  host = host.replace(/\/.*$/, '').replace(/\.$/, '');
  return /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/.test(host) ? host : null;
}
