// Tokens at rest: AES-256-GCM under a key from the environment, bound to their row through the
// additional authenticated data, so a ciphertext copied to another row or column fails to open.
// Several keys may be configured: the first encrypts, all decrypt (rotation), each ciphertext
// names the key it was sealed with.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export interface TokenCipher {
  /** Seals `plain` for the given binding (e.g. "tokens:location:<id>:access"). */
  seal(plain: string, binding: string): string;
  open(sealed: string, binding: string): string;
  /** True when the value was sealed with an older key and should be rewritten. */
  isStale(sealed: string): boolean;
}

export class TokenCipherError extends Error {}

/** Parses a base64 key of exactly 32 bytes. */
export function parseKey(text: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32 || key.toString('base64') !== text.trim()) {
    throw new TokenCipherError('a token encryption key must be 32 random bytes in base64 (44 characters)');
  }
  return key;
}

function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export function createTokenCipher(current: Buffer, older: Buffer[] = []): TokenCipher {
  const currentId = keyId(current);
  const keys = new Map<string, Buffer>([[currentId, current], ...older.map((k) => [keyId(k), k] as const)]);
  return {
    seal(plain, binding) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      cipher.setAAD(Buffer.from(binding, 'utf8'));
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return ['v1', currentId, iv.toString('base64url'), ct.toString('base64url'), tag.toString('base64url')].join('.');
    },
    open(sealed, binding) {
      const [version, id, iv, ct, tag] = sealed.split('.');
      const key = id ? keys.get(id) : undefined;
      if (version !== 'v1' || !key || !iv || ct === undefined || !tag) throw new TokenCipherError('token cannot be decrypted with the configured keys');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(binding, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw new TokenCipherError('token failed authentication (wrong key or moved ciphertext)');
      }
    },
    isStale(sealed) {
      return sealed.split('.')[1] !== currentId;
    },
  };
}
