// Where a contact stands with HighLevel, as the REST API says it (QA: a contact HighLevel refused
// answered like a synced one): `highlevelId` (its live link) and `outbound` (a change not yet in
// HighLevel, pending or refused with the reason), on every answer that carries a contact. A body
// sent back from a read made before the contact or its standing changed is a 412 with the current
// version, as a stale If-Match is, not a 400. Real Tandem against the emulator, passes driven by
// hand on a manual clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { getLinkByContact } from '../../db/links.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { call, ManualClock } from '../helpers/emulator.ts';
import { restCall, type RestRequest } from '../helpers/rest.ts';
import { installedTandem, syncLocation, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem & { location: { id: string } };
let loc: string;
let key: string;
const clock = new ManualClock();

beforeAll(async () => {
  t = await installedTandem({ clock, sync: { start: false } });
  loc = t.location.id;
  key = createApiKey(t.db, { locationId: loc, name: 'sync state', createdBy: null, now: clock.now() }).key;
  await syncAll();
}, 30_000);
afterAll(async () => {
  await t?.close();
});

const api = (method: string, path: string, opts: RestRequest = {}) => restCall(t.url, method, path, { key, ...opts });

/** Webhooks delivered and stored, then passes of the location's loop until it has nothing to do now. */
const syncAll = () => syncLocation(t, loc, clock);

async function created(body: Record<string, unknown>) {
  const res = await api('POST', '/api/v1/contacts', { body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

describe('highlevelId and outbound', () => {
  let ada: { id: string; highlevelId: string };
  let bea: string;

  it('say a new contact waits to go, a synced one is in HighLevel, and one HighLevel refused is refused, with why', async () => {
    const made = await created({ firstName: 'Ada', lastName: 'Byron', phone: '+14155550170' });
    expect(made).toMatchObject({ highlevelId: null, outbound: { status: 'pending', reason: null } });
    await syncAll();
    ada = { id: made.id, highlevelId: getLinkByContact(t.db, loc, made.id)!.highlevelId };
    expect((await api('GET', `/api/v1/contacts/${ada.id}`)).body).toMatchObject({ highlevelId: ada.highlevelId, outbound: null });

    // Bea has Ada's phone: HighLevel refuses her (a 422 for a duplicate), for good.
    bea = (await created({ firstName: 'Bea', lastName: 'Stone', phone: '+14155550170' })).id;
    expect((await api('GET', `/api/v1/contacts/${bea}`)).body.outbound).toEqual({ status: 'pending', reason: null });
    await syncAll();
    const refused = (await api('GET', `/api/v1/contacts/${bea}`)).body;
    expect(refused).toMatchObject({ highlevelId: null, outbound: { status: 'failed', reason: expect.stringContaining('Ada Byron') } });

    // The same on every page of a list, read for the page at once.
    const page = (await api('GET', '/api/v1/contacts?phone=%2B14155550170')).body.contacts;
    expect(page).toEqual([
      expect.objectContaining({ id: ada.id, highlevelId: ada.highlevelId, outbound: null }),
      expect.objectContaining({ id: bea, highlevelId: null, outbound: refused.outbound }),
    ]);
  });

  it('a PATCH answers with the change it queued, which waits while updates are Inbound', async () => {
    const res = await api('PATCH', `/api/v1/contacts/${ada.id}`, { body: { companyName: 'Analytical Engines' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ highlevelId: ada.highlevelId, outbound: { status: 'pending', reason: null } });
    await syncAll();
    // Held by the setting (the default): still pending, with no reason but the setting.
    expect((await api('GET', `/api/v1/contacts/${ada.id}`)).body.outbound).toEqual({ status: 'pending', reason: null });
    updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: { id: 'admin', name: 'Admin' }, now: clock.now() });
    await syncAll();
    expect((await api('GET', `/api/v1/contacts/${ada.id}`)).body.outbound).toBeNull();
  });

  it('are ignored in a PATCH whatever they say, since they change without the version: a read made before the contact went to HighLevel goes back fine', async () => {
    const read = (await api('GET', `/api/v1/contacts/${ada.id}`)).body;
    const same = await api('PATCH', `/api/v1/contacts/${ada.id}`, { body: { ...read, lastName: 'King' } });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    await syncAll();

    // Read while waiting to go; sent back once it has gone, with an If-Match of that read.
    const waiting = await created({ firstName: 'Cal', email: 'cal@example.com' });
    expect(waiting).toMatchObject({ highlevelId: null, outbound: { status: 'pending' } });
    await syncAll();
    const later = await api('PATCH', `/api/v1/contacts/${waiting.id}`, { body: { ...waiting, lastName: 'Later' }, headers: { 'if-match': `"${waiting.version}"` } });
    expect(later.status, JSON.stringify(later.body)).toBe(200);
    expect(later.body).toMatchObject({ lastName: 'Later', highlevelId: getLinkByContact(t.db, loc, waiting.id)!.highlevelId });
    // Set by hand, they change nothing either.
    const steered = await api('PATCH', `/api/v1/contacts/${waiting.id}`, { body: { highlevelId: 'hl-other', outbound: null, companyName: 'Oslo Co' } });
    expect(steered.status, JSON.stringify(steered.body)).toBe(200);
    expect(steered.body).toMatchObject({ companyName: 'Oslo Co', highlevelId: getLinkByContact(t.db, loc, waiting.id)!.highlevelId });
  });

  it('a contact whose HighLevel contact was deleted has no HighLevel id once restored, and waits to go again', async () => {
    const res = await call(t.highlevelUrl, 'DELETE', `/contacts/${ada.highlevelId}`, { token: t.emulator.emu.world.locations[loc]!.privateToken });
    expect(res.status).toBeLessThan(300);
    await syncAll();
    const archived = (await api('GET', `/api/v1/contacts/${ada.id}`)).body;
    expect(archived.archivedAt).not.toBeNull();
    expect(archived.highlevelId).toBeNull();
    const restored = await api('POST', `/api/v1/contacts/${ada.id}/restore`);
    expect(restored.status, JSON.stringify(restored.body)).toBe(200);
    expect(restored.body).toMatchObject({ archivedAt: null, highlevelId: null, outbound: { status: 'pending' } });
  });

  it('are documented as read-only properties of a contact', async () => {
    const doc = (await api('GET', '/api/v1/openapi.json', { key: null })).body;
    const contact = doc.components.schemas.Contact;
    expect(contact.required).toEqual(expect.arrayContaining(['highlevelId', 'outbound']));
    expect(contact.properties.highlevelId.description).toContain('HighLevel contact');
    expect(JSON.stringify(contact.properties.outbound)).toContain('"pending","failed"');
    expect(contact.properties.outbound.description).toContain('not yet in HighLevel');
    expect(doc.components.schemas.Error.properties.error.properties.currentVersion).toMatchObject({ type: 'integer' });
  });
});
