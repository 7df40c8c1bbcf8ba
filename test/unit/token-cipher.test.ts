import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTokenCipher, parseKey, TokenCipherError } from '../../server/security/token-cipher.ts';

const k1 = randomBytes(32);
const k2 = randomBytes(32);

describe('token cipher', () => {
  it('round-trips and never contains the plaintext', () => {
    const c = createTokenCipher(k1);
    const sealed = c.seal('secret-access-token', 'tokens:location:L1:access');
    expect(sealed).not.toContain('secret-access-token');
    expect(c.open(sealed, 'tokens:location:L1:access')).toBe('secret-access-token');
  });

  it('refuses a ciphertext moved to another row or column', () => {
    const c = createTokenCipher(k1);
    const sealed = c.seal('t', 'tokens:location:L1:access');
    expect(() => c.open(sealed, 'tokens:location:L2:access')).toThrow(TokenCipherError);
    expect(() => c.open(sealed, 'tokens:location:L1:refresh')).toThrow(TokenCipherError);
  });

  it('refuses a tampered ciphertext', () => {
    const c = createTokenCipher(k1);
    const sealed = c.seal('token-value', 'b');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    parts[3] = ct.toString('base64url');
    expect(() => c.open(parts.join('.'), 'b')).toThrow(TokenCipherError);
  });

  it('reads values sealed with an older key after rotation and flags them stale', () => {
    const old = createTokenCipher(k1);
    const sealed = old.seal('t', 'b');
    const rotated = createTokenCipher(k2, [k1]);
    expect(rotated.open(sealed, 'b')).toBe('t');
    expect(rotated.isStale(sealed)).toBe(true);
    expect(rotated.isStale(rotated.seal('t', 'b'))).toBe(false);
    expect(() => createTokenCipher(k2).open(sealed, 'b')).toThrow(TokenCipherError);
  });

  it('accepts only 32-byte base64 keys', () => {
    expect(parseKey(k1.toString('base64'))).toEqual(k1);
    expect(() => parseKey('short')).toThrow(TokenCipherError);
    expect(() => parseKey(randomBytes(16).toString('base64'))).toThrow(TokenCipherError);
  });
});
