// Which X-Forwarded-For hops Tandem believes (TRUST_PROXY), alone and behind its own front thread,
// which always appends the address it saw: only that first hop is added to what TRUST_PROXY trusts.
import { describe, expect, it } from 'vitest';
import { trustFunction } from '../../server/app.ts';

const hops = (trust: (address: string, hop: number) => boolean, chain: string[]) => chain.map((address, hop) => trust(address, hop));

describe('trustFunction', () => {
  const chain = ['127.0.0.1', '10.0.0.5', '203.0.113.9'];

  it('trusts nothing, everything or a number of hops, as TRUST_PROXY says', () => {
    expect(hops(trustFunction(false, false), chain)).toEqual([false, false, false]);
    expect(hops(trustFunction(true, false), chain)).toEqual([true, true, true]);
    expect(hops(trustFunction(1, false), chain)).toEqual([true, false, false]);
    expect(hops(trustFunction('10.0.0.0/8', false), chain)).toEqual([false, true, false]);
  });

  it('behind the front, trusts the front and then what TRUST_PROXY trusts, one hop further', () => {
    expect(hops(trustFunction(false, true), chain)).toEqual([true, false, false]);
    expect(hops(trustFunction(1, true), chain)).toEqual([true, true, false]);
    expect(hops(trustFunction(true, true), chain)).toEqual([true, true, true]);
    // The CIDR list applies to the addresses beyond the front, never to the front's own.
    expect(hops(trustFunction('10.0.0.0/8', true), ['10.0.0.5', '10.0.0.6', '203.0.113.9'])).toEqual([true, true, false]);
    expect(hops(trustFunction('10.0.0.0/8', true), ['127.0.0.1', '203.0.113.9', '10.0.0.6'])).toEqual([true, false, true]);
  });
});
