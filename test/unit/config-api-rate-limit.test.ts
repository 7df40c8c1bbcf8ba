// API_RATE_LIMIT_BURST and API_RATE_LIMIT_PER_SECOND: the REST API's limit per location
// (server/auth/api-rate-limit.ts), parsed and explained as every other setting is.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadSettings, VARIABLE_HELP } from '../../server/config.ts';

const ENV = {
  HIGHLEVEL_CLIENT_ID: '6835011c08f18f1088f92f9f-mcnl7omh',
  HIGHLEVEL_CLIENT_SECRET: '1d4c3b6e-1b1f-4f57-9b8e-6c1d8f2f6a11',
  HIGHLEVEL_SHARED_SECRET: 'a-shared-secret',
  TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
};

function configError(env: Record<string, string>): ConfigError {
  try {
    loadSettings(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('the REST API rate limit settings', () => {
  it('default to a burst of 300 and 20 a second, in the sandbox and with a real app', () => {
    expect(loadSettings({}).apiRateLimit).toEqual({ burst: 300, perSecond: 20 });
    expect(loadConfig(ENV).apiRateLimit).toEqual({ burst: 300, perSecond: 20 });
  });

  it('are taken as set', () => {
    expect(loadConfig({ ...ENV, API_RATE_LIMIT_BURST: ' 1000 ', API_RATE_LIMIT_PER_SECOND: '50' }).apiRateLimit).toEqual({ burst: 1000, perSecond: 50 });
    // Blank is unset, as for every variable.
    expect(loadSettings({ API_RATE_LIMIT_BURST: '', API_RATE_LIMIT_PER_SECOND: ' ' }).apiRateLimit).toEqual({ burst: 300, perSecond: 20 });
  });

  it('name the variable and what it must be when it is not a whole number from 1 to 1000000', () => {
    for (const value of ['0', '-5', '1.5', 'lots', '2000000']) {
      for (const variable of ['API_RATE_LIMIT_BURST', 'API_RATE_LIMIT_PER_SECOND'] as const) {
        const err = configError({ [variable]: value });
        expect(err.variables, `${variable}=${value}`).toEqual([variable]);
        expect(err.message).toContain(`${variable}=${value} is invalid: must be a whole number from 1 to 1000000. ${VARIABLE_HELP[variable]}`);
      }
    }
    expect(VARIABLE_HELP.API_RATE_LIMIT_BURST).toContain('(default 300)');
    expect(VARIABLE_HELP.API_RATE_LIMIT_PER_SECOND).toContain('(default 20)');
  });
});
