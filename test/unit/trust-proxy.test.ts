// Which X-Forwarded-For hops Tandem believes (TRUST_PROXY), alone and behind its own front thread,
// which always appends the address it saw: only that first hop is added to what TRUST_PROXY trusts,
// and only on requests that bear the front's secret (server/security/front-secret.ts).
import { describe, expect, it } from 'vitest';
import { trustFunction } from '../../server/app.ts';
import { acceptForwardedOnlyFromFront, FRONT_SECRET_HEADER, newFrontSecret } from '../../server/security/front-secret.ts';

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

describe('acceptForwardedOnlyFromFront', () => {
  const secret = newFrontSecret();
  const forwarded = { 'x-forwarded-for': '203.0.113.9, 127.0.0.1', 'x-forwarded-host': 'tandem.example', 'x-forwarded-proto': 'https' };

  it("keeps the forwarded headers of the front's requests, and drops the secret before anyone reads it", () => {
    const headers = { host: 'a', ...forwarded, [FRONT_SECRET_HEADER]: secret };
    expect(acceptForwardedOnlyFromFront(headers, secret)).toBe(true);
    expect(headers).toEqual({ host: 'a', ...forwarded });
  });

  it('drops the forwarded headers of any other request: no secret, a wrong one, or one given twice', () => {
    for (const given of [undefined, '', 'guess', secret.slice(1), `${secret}x`, [secret, secret]]) {
      const headers: Record<string, string | string[]> = { host: 'a', ...forwarded, ...(given === undefined ? {} : { [FRONT_SECRET_HEADER]: given }) };
      expect(acceptForwardedOnlyFromFront(headers, secret), String(given)).toBe(false);
      expect(headers).toEqual({ host: 'a' });
    }
  });

  it('makes a new secret at each start', () => {
    expect(newFrontSecret()).not.toBe(newFrontSecret());
    expect(newFrontSecret().length).toBeGreaterThanOrEqual(43);
  });
});
