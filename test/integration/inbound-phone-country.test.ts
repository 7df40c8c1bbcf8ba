// A phone HighLevel holds without +prefix, over real HTTP with webhooks: its meaning depends on the
// country it is read in, and a change of the contact's country alone must not make it another
// number in Tandem (QA: "(415) 555-0123" with US, then DE, came in as +494155550123 and replaced
// Tandem's +14155550123). Changed from HighLevel, and changed through Tandem's REST API (the change
// goes out, and HighLevel's record comes back with the new country and the typed phone). A phone
// HighLevel holds with an extension comes in as the number, and HighLevel keeps the extension.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { getContact, type Contact } from '../../db/contacts.ts';
import { getLinkByRemote } from '../../db/links.ts';
import { getOutbox } from '../../db/outbox.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { listInboxEvents } from '../../db/webhook-inbox.ts';
import { call, until } from '../helpers/emulator.ts';
import { restCall } from '../helpers/rest.ts';
import { installedTandem, settle, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem & { location: { id: string } };
let loc: string;
let key: string;

/** HighLevel as a person uses it: the location's private integration token. */
function hl(method: string, path: string, body?: unknown) {
  const token = t.emulator.emu.world.locations[loc]!.privateToken;
  return call(t.highlevelUrl, method, path, { token, body });
}

async function hlCreate(body: Record<string, unknown>): Promise<string> {
  const res = await hl('POST', '/contacts/', { locationId: loc, ...body });
  expect(res.status).toBe(201);
  return res.body.contact.id as string;
}

const unique = (name: string) => `${name}.${randomUUID().slice(0, 8)}@example.com`;

function linked(highlevelId: string): Contact | undefined {
  const link = getLinkByRemote(t.db, loc, highlevelId);
  return link ? getContact(t.db, loc, link.contactId) : undefined;
}

/** Every ContactUpdate webhook of this HighLevel contact received so far is applied. */
async function updatesApplied(highlevelId: string, count: number): Promise<void> {
  await settle(t);
  await until(
    () => listInboxEvents(t.db).filter((e) => e.type === 'ContactUpdate' && JSON.parse(e.body).id === highlevelId && e.processedAt !== null).length >= count || undefined,
    `${count} update(s) of ${highlevelId} applied`,
  );
}

beforeAll(async () => {
  t = await installedTandem();
  loc = t.location.id;
  key = createApiKey(t.db, { locationId: loc, name: 'vendor', createdBy: null, now: Date.now() }).key;
  await until(() => getSyncState(t.db, loc).lastFullSweepAt !== null, 'the first pull', 10_000);
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('a phone HighLevel holds without +prefix', () => {
  it('keeps meaning the same number when only the country changes in HighLevel; other digits still come in', async () => {
    const id = await hlCreate({ firstName: 'Pia', email: unique('pia'), phone: '(415) 555-0123', country: 'US' });
    const created = await until(() => linked(id), 'the contact in Tandem');
    expect(created.fields).toMatchObject({ phone: '+14155550123', country: 'US' });

    for (const [n, country] of [[1, 'DE'], [2, 'GB']] as const) {
      expect((await hl('PUT', `/contacts/${id}`, { country })).status).toBe(200);
      await updatesApplied(id, n);
      const now = linked(id)!;
      // The country came in; HighLevel's phone text did not change, and neither did the number.
      expect(now.fields).toMatchObject({ country, phone: '+14155550123' });
      expect(getLinkByRemote(t.db, loc, id)!.base).toMatchObject({ country, phone: '+14155550123' });
      expect(getOutbox(t.db, loc, now.id)).toBeUndefined();
    }
    expect(t.emulator.emu.contact(id)?.phone).toBe('(415) 555-0123');

    // A phone HighLevel changes is a change, read in the contact's country (GB now).
    expect((await hl('PUT', `/contacts/${id}`, { phone: '020 7946 0958' })).status).toBe(200);
    await until(() => linked(id)?.fields.phone === '+442079460958' || undefined, 'the new phone in Tandem');
    expect(getLinkByRemote(t.db, loc, id)!.base.phone).toBe('+442079460958');
  });

  it('keeps meaning the same number when the country is changed through Tandem’s REST API and HighLevel’s record comes back', async () => {
    updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: { id: 'admin', name: 'Ada Admin' }, now: Date.now() });
    try {
      const id = await hlCreate({ firstName: 'Rui', email: unique('rui'), phone: '(415) 555-0124', country: 'US' });
      const contact = await until(() => linked(id), 'the contact in Tandem');
      expect(contact.fields.phone).toBe('+14155550124');

      const res = await restCall(t.url, 'PATCH', `/api/v1/contacts/${contact.id}`, { key, body: { address: { country: 'DE' } } });
      expect(res.status).toBe(200);
      expect(res.body.phone).toBe('+14155550124');
      await until(() => t.emulator.emu.contact(id)?.country === 'DE' || undefined, 'the country in HighLevel');
      // HighLevel's webhook of that write carries the new country and the phone as typed there.
      await updatesApplied(id, 1);
      await until(() => getOutbox(t.db, loc, contact.id) === undefined || undefined, 'nothing left to send');
      expect(linked(id)!.fields).toMatchObject({ country: 'DE', phone: '+14155550124' });
      expect(getLinkByRemote(t.db, loc, id)!.base).toMatchObject({ country: 'DE', phone: '+14155550124' });
      expect(t.emulator.emu.contact(id)?.phone).toBe('(415) 555-0124');

      // A later Tandem edit reads HighLevel again before merging: the phone stays, and stays unsent.
      expect((await restCall(t.url, 'PATCH', `/api/v1/contacts/${contact.id}`, { key, body: { firstName: 'Rúben' } })).status).toBe(200);
      await until(() => t.emulator.emu.contact(id)?.firstName === 'Rúben' || undefined, 'the edit in HighLevel');
      await updatesApplied(id, 2);
      expect(linked(id)!.fields).toMatchObject({ firstName: 'Rúben', country: 'DE', phone: '+14155550124' });
      expect(t.emulator.emu.contact(id)?.phone).toBe('(415) 555-0124');
    } finally {
      updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'inbound' }, user: { id: 'admin', name: 'Ada Admin' }, now: Date.now() });
    }
  });
});

describe('a phone HighLevel holds with an extension', () => {
  it('comes into Tandem as the number, and HighLevel keeps its extension while Tandem edits other fields', async () => {
    updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: { id: 'admin', name: 'Ada Admin' }, now: Date.now() });
    try {
      const id = await hlCreate({ firstName: 'Ext', email: unique('ext'), phone: '+1 415 555 0188 ext 12' });
      const contact = await until(() => linked(id), 'the contact in Tandem');
      expect(contact.fields.phone).toBe('+14155550188');
      const res = await restCall(t.url, 'PATCH', `/api/v1/contacts/${contact.id}`, { key, body: { companyName: 'Ext Co' } });
      expect(res.status).toBe(200);
      await until(() => t.emulator.emu.contact(id)?.companyName === 'Ext Co' || undefined, 'the edit in HighLevel');
      await updatesApplied(id, 1);
      expect(t.emulator.emu.contact(id)?.phone).toBe('+1 415 555 0188 ext 12');
      expect(linked(id)!.fields.phone).toBe('+14155550188');
    } finally {
      updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'inbound' }, user: { id: 'admin', name: 'Ada Admin' }, now: Date.now() });
    }
  });
});
