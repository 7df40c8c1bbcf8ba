// The API keys tab's name field (web/lib/api-keys.svelte.ts): the limit Tandem accepts, counted as
// the server counts it (trimmed), said in the help, and a longer name refused with the same words
// however long it is (an alert announced once), never cut.
import { describe, expect, it } from 'vitest';
import { KEY_NAME_MAX, KEY_NAME_TOO_LONG, keyNameHelp, keyNameProblem } from '../../web/lib/api-keys.svelte.ts';

describe('an API key name', () => {
  it('needs a name, and at most the characters Tandem accepts, spaces around it not counted', () => {
    expect(KEY_NAME_MAX).toBe(80);
    expect(keyNameProblem('')).toBe('missing');
    expect(keyNameProblem('   ')).toBe('missing');
    expect(keyNameProblem('Billing system')).toBeUndefined();
    expect(keyNameProblem('x'.repeat(80))).toBeUndefined();
    expect(keyNameProblem(`  ${'x'.repeat(80)}  `)).toBeUndefined();
    expect(keyNameProblem('x'.repeat(81))).toBe('long');
  });

  it('says the limit in the help, and how long the name is once it comes near it', () => {
    expect(keyNameHelp('')).toBe('Name it after the system that will use it; up to 80 characters.');
    expect(keyNameHelp('x'.repeat(60))).toBe('Name it after the system that will use it; up to 80 characters.');
    expect(keyNameHelp('x'.repeat(61))).toBe('Name it after the system that will use it; up to 80 characters. This one has 61.');
    expect(keyNameHelp('x'.repeat(95))).toBe('Name it after the system that will use it; up to 80 characters. This one has 95.');
  });

  it('refuses a long name in words that do not change with its length', () => {
    expect(KEY_NAME_TOO_LONG).toBe('Too long: a key name can have up to 80 characters. Shorten it to create the key.');
  });
});
