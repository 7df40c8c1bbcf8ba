// Record ids (db/ids.ts): prefix and 20 base62 characters (creation time, then a pooled random
// part), never repeated, in creation order across milliseconds, every random character about
// equally likely (the pool is refilled many times over here).
import { describe, expect, it } from 'vitest';
import { BASE62, newId, randomBase62 } from '../../db/ids.ts';

describe('record ids', () => {
  it('are a type prefix and 20 base62 characters, distinct across many refills of the pool', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('c'));
    for (const id of ids.slice(0, 100)) expect(id).toMatch(/^c_[0-9A-Za-z]{20}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('sort in creation order from one millisecond to the next, as text and whatever the random part', () => {
    const times = [0, 1, 61, 62, 1_700_000_000_000, 1_700_000_000_001, 1_764_000_000_000, 62 ** 8 - 1];
    const ids = times.map((t) => newId('c', t));
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^c_[0-9A-Za-z]{20}$/);
    // The same millisecond: the time part is shared, the random part tells them apart.
    const same = Array.from({ length: 1_000 }, () => newId('c', 1_764_000_000_000));
    expect(new Set(same.map((id) => id.slice(0, 10))).size).toBe(1);
    expect(new Set(same).size).toBe(same.length);
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
