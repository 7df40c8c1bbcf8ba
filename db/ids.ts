// Record ids for Tandem's own tables: a type prefix ("c_", "u_", "k_") and 20 base62 characters,
// the first 8 the creation time in milliseconds and 12 random (~71 bits), so ids say what they name,
// cannot be guessed, and are created in about increasing order: the primary keys (and the link
// table's, keyed by contact id) then grow at their right edge instead of at a random leaf, which a
// bulk import had to write back to the WAL on every commit.
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

/** `value` (a non-negative integer) as `width` base62 digits, most significant first. */
function fixedBase62(value: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/**
 * Wall-clock time, not the injected clock: it only orders ids for the storage's sake (62^8 ms
 * lasts until the year 8900) and decides nothing; ids made in the same millisecond differ by their
 * random part.
 */
export function newId(prefix: 'c' | 'u' | 'k', now = Date.now()): string {
  return `${prefix}_${fixedBase62(now, 8)}${randomBase62(12)}`;
}
