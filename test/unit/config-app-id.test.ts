// HIGHLEVEL_APP_ID: the app id INSTALL and UNINSTALL webhooks are checked against. Derived from the
// client id by default (as HighLevel's SDK does); settable for when HighLevel sends another form.
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config.ts';
import { checkWebhook } from '../../server/highlevel/webhook-receipt.ts';

const ENV = {
  HIGHLEVEL_CLIENT_ID: '6835011c08f18f1088f92f9f-mcnl7omh',
  HIGHLEVEL_CLIENT_SECRET: '1d4c3b6e-1b1f-4f57-9b8e-6c1d8f2f6a11',
  HIGHLEVEL_SHARED_SECRET: 'a-shared-secret',
  TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
};

describe('HIGHLEVEL_APP_ID', () => {
  it('defaults to the part of the client id before its first dash', () => {
    expect(loadConfig(ENV).highlevel.appId).toBe('6835011c08f18f1088f92f9f');
  });

  it('is taken as given, trimmed, when set, a whole Client ID included', () => {
    expect(loadConfig({ ...ENV, HIGHLEVEL_APP_ID: ' 6835011c08f18f1088f9 ' }).highlevel.appId).toBe('6835011c08f18f1088f9');
    expect(loadConfig({ ...ENV, HIGHLEVEL_APP_ID: '0467950cf04bf3d2d9354dfe-0dfo6vze' }).highlevel.appId).toBe('0467950cf04bf3d2d9354dfe-0dfo6vze');
  });

  it('names the variable when it is not an id', () => {
    let caught: unknown;
    try {
      loadConfig({ ...ENV, HIGHLEVEL_APP_ID: 'not an id' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variables).toEqual(['HIGHLEVEL_APP_ID']);
  });

  it('decides which INSTALL webhooks are this app’s, and a refusal logs both ids for the operator', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const now = Date.parse('2026-12-07T10:00:00.000Z');
    const install = (appId: string) => {
      const raw = Buffer.from(JSON.stringify({ type: 'INSTALL', appId, locationId: 'loc-1', companyId: 'co-1', timestamp: new Date(now).toISOString(), webhookId: `wh-${appId}` }));
      return { raw, signature: sign(null, raw, privateKey).toString('base64') };
    };
    const appId = loadConfig({ ...ENV, HIGHLEVEL_APP_ID: '6835011c08f18f1088f9' }).highlevel.appId;
    const ours = install('6835011c08f18f1088f9');
    expect(checkWebhook(ours.raw, ours.signature, now, { webhookKey: publicKey, appId }).ok).toBe(true);
    const derived = install('6835011c08f18f1088f92f9f');
    const refused = checkWebhook(derived.raw, derived.signature, now, { webhookKey: publicKey, appId });
    expect(refused).toMatchObject({
      ok: false,
      refusal: { status: 401, code: 'wrong_app', log: { fields: { appId: '6835011c08f18f1088f92f9f', expectedAppId: '6835011c08f18f1088f9' } } },
    });
    if (!refused.ok) expect(refused.refusal.log?.message).toContain('HIGHLEVEL_APP_ID');
  });
});
