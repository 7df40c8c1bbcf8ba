// Tandem's own writes (the REST API) to a contact holding a value under a custom field id HighLevel
// does not define: once the location's fields are listed, a write whose only change is such a value
// queues nothing for HighLevel (no push sends it), and one that leaves only such a value differing
// from HighLevel drops the row queued before; a change of a defined field is still queued. While
// the fields have never been listed, every value counts and is sent, as before. Over real HTTP: the
// REST API, the sync loop's passes and the emulated HighLevel (which stores any id it is sent).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { updateContact } from '../../db/contacts.ts';
import { listedCustomFieldIds } from '../../db/custom-fields.ts';
import { getLinkByContact } from '../../db/links.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { syncStatus } from '../../db/sync-status.ts';
import { control, ManualClock } from '../helpers/emulator.ts';
import { restCall, type RestRequest } from '../helpers/rest.ts';
import { createAgency, installLocation, startTestTandem, waitForInstallation, type TestTandem } from '../helpers/tandem.ts';

/** An id HighLevel has no field for: a value written before Tandem checked writes, or of a field deleted since. */
const GONE = 'cfGone00000000000001';

let t: TestTandem;
const clock = new ManualClock(Date.parse('2026-12-07T09:00:00.000Z'));
let A: string;
let key: string;
let score: string;

beforeAll(async () => {
  t = await startTestTandem({ sync: { start: false }, clock });
  const agency = await createAgency(t, { name: 'Fieldwork Agency', locations: ['Cedar Dental'] });
  A = agency.locations[0]!.id;
  expect((await installLocation(t, A, { userId: agency.adminId })).status).toBe(200);
  await waitForInstallation(t, A, 'active');
  key = createApiKey(t.db, { locationId: A, name: 'A', createdBy: null, now: clock.now() }).key;
  updateSyncSettings(t.db, { locationId: A, patch: { updateDirection: 'bidirectional' }, user: { id: 'test', name: 'Test' }, now: clock.now() });
  const defined = await control<{ customFields: { id: string; name: string }[] }>(t.highlevelUrl, 'POST', `/locations/${A}/custom-fields`, {
    customFields: [{ name: 'Lead score', dataType: 'NUMERICAL' }],
  });
  score = defined.customFields.find((f) => f.name === 'Lead score')!.id;
});
afterAll(async () => {
  await t?.close();
});

const api = (method: string, path: string, opts: RestRequest = {}) => restCall(t.url, method, path, { key, ...opts });

async function patch(id: string, body: Record<string, unknown>) {
  clock.advance(1000);
  const res = await api('PATCH', `/api/v1/contacts/${id}`, { body });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

async function pass() {
  const r = await t.services.sync.runOnce(A);
  expect(r.error, r.error).toBeUndefined();
  return r;
}

/** What the panel counts as waiting to go out to HighLevel. */
const waiting = () => syncStatus(t.db, A).pendingOutbound;

/** The contact writes Tandem sent HighLevel since `from` (an index into the emulator's log). */
const writesSince = (from: number) => t.emulator.emu.requestLog.slice(from).filter((r) => r.method === 'PUT' || r.method === 'POST').map((r) => `${r.method} ${r.path}`);

describe('a Tandem write of a contact holding a value under an id HighLevel does not define', () => {
  let ana: string;
  let ben: string;

  it('counts while the fields have never been listed: the write is queued and sent', async () => {
    // Not listed yet: the REST API takes any id, and the first pass cannot list (HighLevel refuses the scope).
    await control(t.highlevelUrl, 'POST', '/faults', {
      path: `/locations/${A}/customFields`,
      status: 401,
      body: { statusCode: 401, message: 'The token is not authorized for this scope.' },
      times: 1000,
    });
    try {
      for (const [name, value] of [['Ana', 'old'], ['Ben', 'kept']] as const) {
        const res = await api('POST', '/api/v1/contacts', { body: { firstName: name, email: `${name.toLowerCase()}@example.com`, customFields: { [GONE]: value } } });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        if (name === 'Ana') ana = res.body.id;
        else ben = res.body.id;
      }
      await pass();
      expect(listedCustomFieldIds(t.db, A)).toBeNull();
      // Sent as every value is; HighLevel's copy, as the ledger says, holds it.
      expect(getLinkByContact(t.db, A, ana)!.base.customFields).toEqual({ [GONE]: 'old' });
      expect(getLinkByContact(t.db, A, ben)!.base.customFields).toEqual({ [GONE]: 'kept' });
      expect(waiting()).toBe(0);

      await patch(ana, { customFields: { [GONE]: null } });
      expect(waiting()).toBe(1);
      const from = t.emulator.emu.requestLog.length;
      await pass();
      expect(writesSince(from)).toEqual([`PUT /contacts/${getLinkByContact(t.db, A, ana)!.highlevelId}`]);
      expect(getLinkByContact(t.db, A, ana)!.base.customFields).toEqual({});
      expect(waiting()).toBe(0);
    } finally {
      await control(t.highlevelUrl, 'DELETE', '/faults');
    }
  });

  it('once listed, queues nothing when such a value is its only change', async () => {
    t.services.sync.customFieldsChanged(A);
    await pass();
    expect([...listedCustomFieldIds(t.db, A)!]).toEqual([score]);

    const cleared = await patch(ben, { customFields: { [GONE]: null } });
    expect(cleared.customFields).toEqual({});
    expect(waiting()).toBe(0);
    const from = t.emulator.emu.requestLog.length;
    await pass();
    expect(writesSince(from)).toEqual([]);
  });

  it('drops the row queued before when a write leaves only such a value differing', async () => {
    // A value HighLevel gave for a field it has deleted since: Tandem's, never sent.
    clock.advance(1000);
    updateContact(t.db, { locationId: A, id: ana, patch: { customFields: { [GONE]: 'from HighLevel' } }, now: clock.now(), origin: 'remote' });
    expect(waiting()).toBe(0);

    await patch(ana, { firstName: 'Anna' });
    expect(waiting()).toBe(1);
    await patch(ana, { firstName: 'Ana' });
    expect(waiting()).toBe(0);

    // A value of a defined field is still queued, and goes when undone.
    await patch(ana, { customFields: { [score]: 5 } });
    expect(waiting()).toBe(1);
    await patch(ana, { customFields: { [score]: null } });
    expect(waiting()).toBe(0);

    const from = t.emulator.emu.requestLog.length;
    await pass();
    expect(writesSince(from)).toEqual([]);
    expect((await api('GET', `/api/v1/contacts/${ana}`)).body.customFields).toEqual({ [GONE]: 'from HighLevel' });
  });
});
