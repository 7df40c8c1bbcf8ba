// HighLevel signs each webhook body with Ed25519 in `x-ghl-signature` (base64, CONTRACT §5.2).
// Verification runs over the exact bytes received: re-serialised JSON would not match.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

/** Accepts a PEM (SPKI) public key, or a raw 32-byte key as base64 or hex. */
export function parseWebhookPublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) return createPublicKey(trimmed);
  const raw = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (raw.length !== 32) throw new Error('webhook public key must be a PEM or a raw 32-byte Ed25519 key');
  // SPKI DER prefix for an Ed25519 public key.
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]);
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/**
 * On the event loop, synchronously: it was on libuv's thread pool (crypto.verify with a callback),
 * but at 1,000 webhooks a second the hand-over (the job, the pool thread's wake-up, the callback)
 * cost more CPU than the check itself: 740-850 µs of Tandem's CPU per webhook against 615-750 on
 * the loop (bench/webhook-ack.ts, paired runs on 2 cores), with lower acknowledgement p99s.
 */
export function verifyWebhookSignature(body: Buffer, signature: string | undefined, key: KeyObject): boolean {
  if (!signature || signature === 'N/A') return false;
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, body, key, sig);
  } catch {
    return false;
  }
}
