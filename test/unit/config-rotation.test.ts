// TOKEN_ENCRYPTION_KEYS_OLD: the previous token keys, kept readable during a key rotation.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config.ts';

const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');
const ENV = {
  HIGHLEVEL_CLIENT_ID: '6835011c08f18f1088f92f9f-mcnl7omh',
  HIGHLEVEL_CLIENT_SECRET: '1d4c3b6e-1b1f-4f57-9b8e-6c1d8f2f6a11',
  HIGHLEVEL_SHARED_SECRET: 'a-shared-secret',
  TOKEN_ENCRYPTION_KEY: key(1),
};

describe('TOKEN_ENCRYPTION_KEYS_OLD', () => {
  it('is optional and parses a comma-separated list of keys', () => {
    expect(loadConfig(ENV).tokenEncryptionKeysOld).toEqual([]);
    expect(loadConfig({ ...ENV, TOKEN_ENCRYPTION_KEYS_OLD: ` ${key(2)}, ${key(3)} ` }).tokenEncryptionKeysOld).toEqual([
      Buffer.alloc(32, 2),
      Buffer.alloc(32, 3),
    ]);
  });

  it('names the variable when one of the keys is not 32 bytes of base64', () => {
    let caught: unknown;
    try {
      loadConfig({ ...ENV, TOKEN_ENCRYPTION_KEYS_OLD: `${key(2)},short` });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variables).toEqual(['TOKEN_ENCRYPTION_KEYS_OLD']);
    expect((caught as ConfigError).message).toContain('key rotation');
  });
});
