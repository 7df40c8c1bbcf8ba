// T18 at the sync loop's level: the app is uninstalled while a location syncs, people keep working
// on both sides meanwhile, and the app is installed again. The loop must stop for the location at
// once (no call with a deleted token), start over with a full sweep after the reinstall, and end
// with both sides equal and nobody duplicated: every HighLevel contact linked to one Tandem contact
// with HighLevel's values, Tandem's contacts made meanwhile created in HighLevel once, a contact
// deleted in HighLevel meanwhile archived in Tandem (HighLevel sent no webhooks to an uninstalled
// app, so only a full sweep sees deletions, and a sweep cut short had read pages that may have
// changed since), nothing pending.
// Passes are driven by hand on a manual clock; both directions are Bi-directional.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createContact, findContactsByEmail, getContact, listContacts, type Contact } from '../../db/contacts.ts';
import { getLinkByContact, getLinkByRemote } from '../../db/links.ts';
import { outboxCounts } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import type { PassResult } from '../../server/sync/supervisor.ts';
import { call, control, ManualClock } from '../helpers/emulator.ts';
import { installedTandem, installLocation, waitForInstallation, type TestAgency, type TestTandem, passesUntilQuiet } from '../helpers/tandem.ts';

const PAGE = 5;
const SYNC = { start: false, pageLimit: PAGE, pagesPerPass: 1 };

let t: TestTandem & { agency: TestAgency; location: { id: string } };
let clock: ManualClock;
let loc: string;

function hl(method: string, path: string, body?: unknown) {
  return call(t.highlevelUrl, method, path, { token: t.emulator.emu.world.locations[loc]!.privateToken, body });
}

async function hlCreate(firstName: string): Promise<{ id: string; email: string }> {
  const email = `${firstName.toLowerCase()}.${randomUUID().slice(0, 6)}@example.com`;
  const res = await hl('POST', '/contacts/', { locationId: loc, firstName, lastName: 'HighLevel', email });
  expect(res.status).toBe(201);
  return { id: res.body.contact.id as string, email };
}

function localCreate(firstName: string): Contact {
  const email = `${firstName.toLowerCase()}.${randomUUID().slice(0, 6)}@example.com`;
  return createContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName, lastName: 'Tandem', email }, now: clock.now(), origin: 'local' });
}

/** HighLevel's webhooks delivered and stored, and its search caught up with its writes (it lags). */
async function highLevelSettled(): Promise<void> {
  await t.emulator.emu.webhooks.idle();
  await t.services.inbox.runOnce();
  clock.advance(t.emulator.emu.config.searchLagMs + 1000);
}

/** Passes until the location has nothing more to do now (the manual clock follows deferrals). */
function syncAll(): Promise<PassResult[]> {
  return passesUntilQuiet(t, loc, clock, 60);
}

/** Both sides equal: live HighLevel contacts and live Tandem contacts paired one to one by links, same names and emails. */
function expectBothSidesEqual(when: string): void {
  const remote = [...t.emulator.emu.contactIds(loc)].map((id) => t.emulator.emu.contact(id)).filter((c) => c !== null);
  const local = listContacts(t.db, loc, { limit: 1000 }).contacts;
  expect(local, when).toHaveLength(remote.length);
  for (const doc of remote) {
    const link = getLinkByRemote(t.db, loc, doc.id as string);
    const contact = link ? getContact(t.db, loc, link.contactId) : undefined;
    expect(contact === undefined ? 'missing' : contact.archivedAt, `${when}: HighLevel ${doc.id as string} in Tandem`).toBeNull();
    expect({ firstName: contact?.fields.firstName, lastName: contact?.fields.lastName, email: contact?.fields.email }).toEqual({
      firstName: doc.firstName,
      lastName: doc.lastName,
      email: doc.email,
    });
  }
  for (const contact of local) expect(getLinkByContact(t.db, loc, contact.id), `${when}: Tandem ${contact.id} linked`).toMatchObject({ remoteDeletedAt: null });
  expect(outboxCounts(t.db, loc).pending).toBe(0);
}

async function uninstall(): Promise<void> {
  await control(t.highlevelUrl, 'DELETE', '/installs', { appId: t.app.appId, locationId: loc });
  await waitForInstallation(t, loc, 'uninstalled');
}

async function reinstall(): Promise<void> {
  expect((await installLocation(t, loc, { userId: t.agency.adminId })).status).toBe(200);
  await waitForInstallation(t, loc, 'active');
}

beforeEach(async () => {
  clock = new ManualClock();
  t = await installedTandem({ clock, sync: SYNC });
  loc = t.location.id;
  updateSyncSettings(t.db, { locationId: loc, patch: { creationDirection: 'bidirectional', updateDirection: 'bidirectional' }, user: { id: 'test', name: 'Test' }, now: clock.now() });
}, 30_000);

afterEach(async () => {
  await t?.close();
});

describe('T18 uninstall during sync, reinstall', () => {
  it('stops in the middle of a sweep, sweeps again after the reinstall, and duplicates nobody', async () => {
    const before = [];
    for (let i = 0; i < 12; i++) before.push(await hlCreate(`Early${i}`));
    const mine = localCreate('Mine');
    await highLevelSettled();
    // One page of the first sweep, then the uninstall.
    expect((await t.services.sync.runOnce(loc)).more).toBe(true);
    expect(getSyncState(t.db, loc).cursor.run).not.toBeNull();
    await uninstall();

    // Both sides go on meanwhile; HighLevel tells an uninstalled app nothing.
    clock.advance(60_000);
    await control(t.highlevelUrl, 'DELETE', '/requests');
    const gone = before[11]!;
    expect((await hl('DELETE', `/contacts/${gone.id}`)).status).toBe(200);
    expect((await hl('PUT', `/contacts/${before[0]!.id}`, { lastName: 'Renamed while uninstalled' })).status).toBe(200);
    const late = await hlCreate('Late');
    const meanwhile = localCreate('Meanwhile');
    await highLevelSettled();
    expect(await t.services.sync.runOnce(loc)).toMatchObject({ skipped: 'inactive' });
    const { requests } = await control<{ requests: { tokenKind?: string }[] }>(t.highlevelUrl, 'GET', `/requests?locationId=${loc}`);
    expect(requests.filter((r) => r.tokenKind === 'oauth'), 'calls made by Tandem while uninstalled').toEqual([]);

    await reinstall();
    await highLevelSettled();
    await syncAll();

    expectBothSidesEqual('after the reinstall');
    expect(findContactsByEmail(t.db, loc, late.email)).toHaveLength(1);
    expect(findContactsByEmail(t.db, loc, gone.email, { includeArchived: true }).map((c) => c.archivedAt !== null)).toEqual([true]);
    for (const c of [mine, meanwhile]) {
      const found = await hl('POST', '/contacts/search', { locationId: loc, pageLimit: 10, filters: [{ field: 'email', operator: 'eq', value: c.fields.email }] });
      expect(found.body.contacts, `${c.fields.firstName} in HighLevel once`).toHaveLength(1);
    }
  });

  it('sweeps after a reinstall, so a deletion made while uninstalled does not wait for the daily sweep', async () => {
    const people = [];
    for (let i = 0; i < 4; i++) people.push(await hlCreate(`Quiet${i}`));
    await highLevelSettled();
    await syncAll();
    expectBothSidesEqual('before the uninstall');
    await uninstall();

    clock.advance(60_000);
    expect((await hl('DELETE', `/contacts/${people[0]!.id}`)).status).toBe(200);
    await reinstall();
    await highLevelSettled();
    await syncAll();

    expect(findContactsByEmail(t.db, loc, people[0]!.email, { includeArchived: true }).map((c) => c.archivedAt !== null)).toEqual([true]);
    expectBothSidesEqual('after the reinstall');
  });
});
