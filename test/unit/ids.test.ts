// Record ids (db/ids.ts): prefix and 20 base62 characters from a pooled random source, never
// repeated, every character about equally likely (the pool is refilled many times over here).
import { describe, expect, it } from 'vitest';
import { BASE62, newId, randomBase62 } from '../../db/ids.ts';

describe('record ids', () => {
  it('are a type prefix and 20 base62 characters, distinct across many refills of the pool', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('c'));
    for (const id of ids.slice(0, 100)) expect(id).toMatch(/^c_[0-9A-Za-z]{20}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('use every base62 character about equally often', () => {
    const counts = new Map<string, number>();
    const text = randomBase62(62_000);
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect([...counts.keys()].sort().join('')).toBe([...BASE62].sort().join(''));
    // 1,000 expected each; a modulo bias toward the first characters would show as about 1,250.
    for (const n of counts.values()) expect(n).toBeGreaterThan(850);
    for (const n of counts.values()) expect(n).toBeLessThan(1_150);
  });
});
