// Random record ids for Tandem's own tables: a type prefix ("c_", "u_", "k_") and 20 base62
// characters (~119 bits), so ids are unguessable and say what they name.
import { randomFillSync } from 'node:crypto';

export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Random bytes drawn 4 KB at a time: asking the system for 40 bytes per id was about 5% of a
 * pull's time (one id per imported contact). Each byte is used once.
 */
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomByte(): number {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  return pool[used++]!;
}

/** `length` uniform base62 characters (rejection sampling: no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    // 248 = 62 * 4: bytes at or above it would favour the first characters.
    if (byte < 248) out += BASE62[byte % 62];
  }
  return out;
}

export function newId(prefix: 'c' | 'u' | 'k'): string {
  return `${prefix}_${randomBase62(20)}`;
}
