import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseWebhookPublicKey, verifyWebhookSignature } from '../../server/highlevel/webhook-signature.ts';
import { HIGHLEVEL_WEBHOOK_PUBLIC_KEY } from '../../server/config.ts';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const body = Buffer.from('{"type":"ContactCreate","id":"abc","timestamp":"2026-01-01T00:00:00.000Z","webhookId":"w1"}');
const signature = sign(null, body, privateKey).toString('base64');

describe('webhook signature', () => {
  it('accepts the exact signed bytes', () => {
    expect(verifyWebhookSignature(body, signature, parseWebhookPublicKey(pem))).toBe(true);
  });

  it('rejects a missing, placeholder, malformed or foreign signature', () => {
    const key = parseWebhookPublicKey(pem);
    expect(verifyWebhookSignature(body, undefined, key)).toBe(false);
    expect(verifyWebhookSignature(body, 'N/A', key)).toBe(false);
    expect(verifyWebhookSignature(body, 'not-base64!', key)).toBe(false);
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(verifyWebhookSignature(body, sign(null, body, other).toString('base64'), key)).toBe(false);
  });

  it('rejects one changed byte and re-serialised JSON', () => {
    const key = parseWebhookPublicKey(pem);
    const changed = Buffer.from(body);
    changed[10] = changed[10]! ^ 1;
    expect(verifyWebhookSignature(changed, signature, key)).toBe(false);
    const pretty = Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 2));
    expect(verifyWebhookSignature(pretty, signature, key)).toBe(false);
  });

  it("parses HighLevel's published key and raw 32-byte keys", () => {
    expect(parseWebhookPublicKey(HIGHLEVEL_WEBHOOK_PUBLIC_KEY).asymmetricKeyType).toBe('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
    expect(verifyWebhookSignature(body, signature, parseWebhookPublicKey(raw.toString('base64')))).toBe(true);
    expect(verifyWebhookSignature(body, signature, parseWebhookPublicKey(raw.toString('hex')))).toBe(true);
    expect(() => parseWebhookPublicKey('abcd')).toThrow();
  });
});
