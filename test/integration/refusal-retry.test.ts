// A contact HighLevel (or Tandem) refused because another contact holds its email or phone is sent
// again by itself once that holder goes away or stops colliding: archived in Tandem, deleted in
// HighLevel, its email or phone changed. A refusal that still holds costs one retry per change of
// its holder, never one per pass, and a refusal given again is worded from the new attempt. The
// status strip counts the refused contacts the Contacts tab's Refused filter lists. Real Tandem
// (passes driven by hand, manual clock) against the emulator; each test has its own location.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { getContact, listRecentContacts } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { getOutbox } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { syncStatus } from '../../db/sync-status.ts';
import { FULL_SWEEP_INTERVAL_MS, PULL_INTERVAL_MS } from '../../server/sync/reconcile.ts';
import { call, control, ManualClock } from '../helpers/emulator.ts';
import { restCall } from '../helpers/rest.ts';
import { installedTandem, syncLocation, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem & { location: { id: string } };
let loc: string;
let clock: ManualClock;
let key: string;

beforeEach(async () => {
  clock = new ManualClock();
  t = await installedTandem({ clock, sync: { start: false } });
  loc = t.location.id;
  key = createApiKey(t.db, { locationId: loc, name: 'test', createdBy: null, now: clock.now() }).key;
  await syncAll();
}, 30_000);

afterEach(async () => {
  await t?.close();
});

/** HighLevel's API as someone working in HighLevel (the location's own token): its webhooks reach Tandem. */
async function hl(method: string, path: string, body?: unknown) {
  const res = await call(t.highlevelUrl, method, path, { token: t.emulator.emu.world.locations[loc]!.privateToken, body });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return res.body;
}

async function rest(method: string, path: string, body?: unknown) {
  const res = await restCall(t.url, method, path, { key, ...(body !== undefined ? { body } : {}) });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return res.body;
}

/** A contact made through Tandem's REST API. */
async function tandemContact(body: Record<string, unknown>): Promise<string> {
  return (await rest('POST', '/api/v1/contacts', body)).id as string;
}

function setDirections(patch: { creationDirection?: 'bidirectional' | 'inbound'; updateDirection?: 'bidirectional' | 'inbound' }) {
  updateSyncSettings(t.db, { locationId: loc, patch, user: { id: 'admin', name: 'Admin' }, now: clock.now() });
}

/** Webhooks delivered and stored, then passes of the location's loop until it has nothing to do now. */
const syncAll = () => syncLocation(t, loc, clock);

const highlevelIdOf = (contactId: string) => getLinkByContact(t.db, loc, contactId)?.highlevelId;
const rowOf = (contactId: string) => getOutbox(t.db, loc, contactId);
const lastSeq = () => t.emulator.emu.requestLog.at(-1)?.seq ?? 0;
/** Tandem's requests to HighLevel since `seq`, as "METHOD path". */
const requestsSince = (seq: number) =>
  t.emulator.emu.requestLog.filter((r) => r.seq > seq && r.appId === t.app.appId).map((r) => `${r.method} ${r.path.split('?')[0]}`);

/** Ada Byron, in Tandem and HighLevel, holding the phone (and email) a second contact will want. */
async function holder(extra: Record<string, unknown> = {}): Promise<{ id: string; highlevelId: string }> {
  const id = await tandemContact({ firstName: 'Ada', lastName: 'Byron', phone: '+14155550170', ...extra });
  await syncAll();
  const highlevelId = highlevelIdOf(id);
  expect(highlevelId).toBeDefined();
  return { id, highlevelId: highlevelId! };
}

/** Bea Stone, made in Tandem with the holder's phone: HighLevel cannot take her. */
async function refused(extra: Record<string, unknown> = {}): Promise<string> {
  const id = await tandemContact({ firstName: 'Bea', lastName: 'Stone', phone: '+14155550170', ...extra });
  await syncAll();
  expect(rowOf(id)).toMatchObject({ status: 'failed' });
  expect(rowOf(id)!.lastError).toContain('Ada Byron');
  return id;
}

describe('a refused contact goes out by itself once its holder is gone', () => {
  it('when the holder is archived in Tandem (REST API)', async () => {
    const ada = await holder();
    const bea = await refused();
    await rest('DELETE', `/api/v1/contacts/${ada.id}`);
    await syncAll();
    // HighLevel still has Ada's contact (updates are Inbound: the deletion is not sent); Bea takes it over.
    expect(rowOf(bea)).toBeUndefined();
    expect(highlevelIdOf(bea)).toBe(ada.highlevelId);
    expect(syncStatus(t.db, loc).failedOutbound).toBe(0);
  });

  it('when the holder is archived in Tandem and its deletion goes out (both Bi-directional): it never takes over the contact being deleted', async () => {
    // QA: Bea took Ada's HighLevel contact over (Ada archived: free to take), then Ada's deletion
    // deleted it, leaving Bea live in Tandem with no HighLevel contact and nothing queued.
    setDirections({ creationDirection: 'bidirectional', updateDirection: 'bidirectional' });
    const ada = await holder();
    const bea = await refused();
    await rest('DELETE', `/api/v1/contacts/${ada.id}`);
    await syncAll();
    // Bea may have waited for Ada's deletion to go out: her retry comes after a backoff.
    clock.advance(15 * 60_000);
    await syncAll();
    expect(t.emulator.emu.contact(ada.highlevelId)).toBeNull();
    expect(rowOf(bea)).toBeUndefined();
    const created = highlevelIdOf(bea);
    expect(created).toBeDefined();
    expect(created).not.toBe(ada.highlevelId);
    expect(getLinkByContact(t.db, loc, bea)!.remoteDeletedAt).toBeNull();
    expect(t.emulator.emu.contact(created!)).toMatchObject({ firstName: 'Bea', lastName: 'Stone', phone: '+14155550170' });
    expect(getContact(t.db, loc, bea)!.fields).toMatchObject({ firstName: 'Bea', lastName: 'Stone' });
  });

  it('when the holder is deleted in HighLevel (its webhook)', async () => {
    const ada = await holder();
    const bea = await refused();
    await hl('DELETE', `/contacts/${ada.highlevelId}`);
    await syncAll();
    expect(getContact(t.db, loc, ada.id)!.archivedAt).not.toBeNull();
    expect(rowOf(bea)).toBeUndefined();
    const created = highlevelIdOf(bea);
    expect(created).toBeDefined();
    expect(created).not.toBe(ada.highlevelId);
    expect(t.emulator.emu.contact(created!)).toMatchObject({ firstName: 'Bea', phone: '+14155550170' });
  });

  it('when the holder’s email changes in HighLevel', async () => {
    const ada = await holder({ phone: null, email: 'ada@example.com' });
    const bea = await tandemContact({ firstName: 'Bea', email: 'ada@example.com', allowDuplicate: true });
    await syncAll();
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    await hl('PUT', `/contacts/${ada.highlevelId}`, { email: 'ada.byron@example.com' });
    await syncAll();
    expect(getContact(t.db, loc, ada.id)!.fields.email).toBe('ada.byron@example.com');
    expect(rowOf(bea)).toBeUndefined();
    expect(t.emulator.emu.contact(highlevelIdOf(bea)!)).toMatchObject({ firstName: 'Bea', email: 'ada@example.com' });
  });

  it('when the holder’s email is changed in Tandem and sent (updates Bi-directional)', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const ada = await holder({ phone: null, email: 'ada@example.com' });
    const bea = await tandemContact({ firstName: 'Bea', email: 'ada@example.com', allowDuplicate: true });
    await syncAll();
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    await rest('PATCH', `/api/v1/contacts/${ada.id}`, { email: 'ada.byron@example.com' });
    await syncAll();
    expect(t.emulator.emu.contact(ada.highlevelId)).toMatchObject({ email: 'ada.byron@example.com' });
    expect(rowOf(bea)).toBeUndefined();
    expect(t.emulator.emu.contact(highlevelIdOf(bea)!)).toMatchObject({ firstName: 'Bea', email: 'ada@example.com' });
  });

  it('when HighLevel’s refusal arrives after the holder changed in the same pass', async () => {
    // Ada and Bea swap emails in Tandem; HighLevel took Bea's edit before Ada's (it refused it), and
    // its answer arrives after Ada's went through and was recorded.
    setDirections({ updateDirection: 'bidirectional' });
    const ada = await holder({ phone: null, email: 'ada@example.com' });
    const bea = await tandemContact({ firstName: 'Bea', email: 'bea@example.com' });
    await syncAll();
    const beaHighLevel = highlevelIdOf(bea)!;
    await rest('PATCH', `/api/v1/contacts/${ada.id}`, { email: 'ada.byron@example.com' });
    await rest('PATCH', `/api/v1/contacts/${bea}`, { email: 'ada@example.com' });
    await control(t.highlevelUrl, 'POST', '/faults', {
      method: 'PUT', path: `/contacts/${beaHighLevel}`, status: 400, delayMs: 300, times: 1,
      body: { statusCode: 400, message: 'This location does not allow duplicated contacts.', meta: { contactId: ada.highlevelId, contactName: 'Ada Byron', matchingField: 'email' } },
    });
    await t.services.sync.runOnce(loc);
    expect(t.emulator.emu.contact(ada.highlevelId)).toMatchObject({ email: 'ada.byron@example.com' });
    // Not refused for good: Ada no longer holds the email. Tried again after a short wait (or at
    // once, had HighLevel's answer come before Ada's change was recorded).
    expect(rowOf(bea)?.status).not.toBe('failed');
    clock.advance(10 * 60_000);
    await syncAll();
    expect(rowOf(bea)).toBeUndefined();
    expect(t.emulator.emu.contact(beaHighLevel)).toMatchObject({ email: 'ada@example.com' });
  });

  it('when Tandem’s own refusal follows a duplicate answer HighLevel gave before the holder changed', async () => {
    // QA: Bea was refused (Tandem's own refusal: Ada, live, is linked to the contact HighLevel
    // named) after Ada's change went out, releasing refusals while Bea's row was still on its way;
    // Bea stayed refused for good though HighLevel no longer held the email.
    setDirections({ updateDirection: 'bidirectional' });
    const ada = await holder({ phone: null, email: 'ada@example.com' });
    await rest('PATCH', `/api/v1/contacts/${ada.id}`, { email: 'ada.byron@example.com' });
    const bea = await tandemContact({ firstName: 'Bea', email: 'ada@example.com', allowDuplicate: true });
    // HighLevel refuses Bea's create as a duplicate of Ada's contact, answering after Ada's change went through.
    await control(t.highlevelUrl, 'POST', '/faults', {
      method: 'POST', path: '^/contacts/?$', status: 400, delayMs: 300, times: 1,
      body: { statusCode: 400, message: 'This location does not allow duplicated contacts.', meta: { contactId: ada.highlevelId, contactName: 'Ada Byron', matchingField: 'email' } },
    });
    await t.services.sync.runOnce(loc);
    expect(t.emulator.emu.contact(ada.highlevelId)).toMatchObject({ email: 'ada.byron@example.com' });
    expect(rowOf(bea)?.status).not.toBe('failed');
    clock.advance(10 * 60_000);
    await syncAll();
    expect(rowOf(bea)).toBeUndefined();
    expect(t.emulator.emu.contact(highlevelIdOf(bea)!)).toMatchObject({ firstName: 'Bea', email: 'ada@example.com' });
  });
});

describe('a refusal that still holds', () => {
  it('is tried once per change of its holder, never once per pass', async () => {
    const ada = await holder({ email: 'ada@example.com' });
    const bea = await refused({ email: 'ada@example.com', allowDuplicate: true });
    const reason = rowOf(bea)!.lastError;

    // Passes, pulls and a full sweep, and a change of Ada that frees nothing (her name): Bea waits.
    let seq = lastSeq();
    await hl('PUT', `/contacts/${ada.highlevelId}`, { firstName: 'Adah' });
    for (const step of [PULL_INTERVAL_MS, PULL_INTERVAL_MS, FULL_SWEEP_INTERVAL_MS]) {
      clock.advance(step);
      await syncAll();
    }
    expect(getContact(t.db, loc, ada.id)!.fields.firstName).toBe('Adah');
    const creates = (log: string[]) => log.filter((r) => r === 'POST /contacts/' || r === 'GET /contacts/search/duplicate');
    expect(creates(requestsSince(seq))).toEqual([]);
    expect(rowOf(bea)).toMatchObject({ status: 'failed', lastError: reason });

    // Ada's phone changes in HighLevel: Bea is tried once more, and refused again (Ada still has the email).
    seq = lastSeq();
    await hl('PUT', `/contacts/${ada.highlevelId}`, { phone: '+14155550199' });
    await syncAll();
    for (const step of [PULL_INTERVAL_MS, FULL_SWEEP_INTERVAL_MS]) {
      clock.advance(step);
      await syncAll();
    }
    expect(creates(requestsSince(seq))).toEqual(['GET /contacts/search/duplicate', 'POST /contacts/']);
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    expect(rowOf(bea)!.lastError).toContain('Adah Byron');
  });

  it('is worded again when given again: a third contact holds its email now', async () => {
    const cleo = await holder({ firstName: 'Cleo', lastName: 'Park', phone: null, email: 'cleo@example.com' });
    const ada = await holder();
    const bea = await refused({ email: 'bea@example.com' });
    // In HighLevel, Ada's contact is deleted and Cleo's takes Bea's email.
    await hl('DELETE', `/contacts/${ada.highlevelId}`);
    await hl('PUT', `/contacts/${cleo.highlevelId}`, { email: 'bea@example.com' });
    await syncAll();
    expect(getContact(t.db, loc, ada.id)!.archivedAt).not.toBeNull();
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    expect(rowOf(bea)!.lastError).toBe(
      'this contact’s email is already on a HighLevel contact linked to Cleo Park in Tandem, and the location does not allow duplicates; change the email of one of the two, or delete the other contact in HighLevel',
    );
  });

  it('is worded again when its holder is archived in Tandem but still in HighLevel', async () => {
    // Bea is in HighLevel; an edit gives her Ada's phone. With Contact creation Inbound, archiving
    // Ada in Tandem does not delete her HighLevel contact: Bea's edit is tried once, and refused again.
    setDirections({ updateDirection: 'bidirectional' });
    const ada = await holder();
    const bea = await tandemContact({ firstName: 'Bea', lastName: 'Stone', email: 'bea@example.com' });
    await syncAll();
    const beaHighLevel = highlevelIdOf(bea)!;
    await rest('PATCH', `/api/v1/contacts/${bea}`, { phone: '+14155550170' });
    await syncAll();
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    expect(rowOf(bea)!.lastError).toContain('change the phone of one of the two, or delete the other contact in HighLevel');

    setDirections({ creationDirection: 'inbound' });
    const seq = lastSeq();
    await rest('DELETE', `/api/v1/contacts/${ada.id}`);
    await syncAll();
    clock.advance(PULL_INTERVAL_MS);
    await syncAll();
    expect(requestsSince(seq).filter((r) => r === `PUT /contacts/${beaHighLevel}`)).toHaveLength(1);
    expect(t.emulator.emu.contact(ada.highlevelId)).toBeDefined();
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    expect(rowOf(bea)!.lastError).toBe(
      'this contact’s phone is already on a HighLevel contact still linked to Ada Byron, who is archived in Tandem, and the location does not allow duplicates; change the phone of one of the two, or delete that contact in HighLevel',
    );
  });
});

describe('an edit refused for its email or phone', () => {
  it('still sends its other fields and tags; the refusal holds the phone alone, and it goes once the holder lets go (QA)', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const ada = await holder();
    const bea = await tandemContact({ firstName: 'Bea', lastName: 'Stone', email: 'bea@example.com' });
    await syncAll();
    const beaHighLevel = highlevelIdOf(bea)!;
    // One edit: Ada's phone (refused) and a new company and tag (nothing to do with the phone).
    await rest('PATCH', `/api/v1/contacts/${bea}`, { phone: '+14155550170', companyName: 'After Refusal', addTags: ['kept'] });
    await syncAll();
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    expect(rowOf(bea)!.lastError).toContain('this contact’s phone is already on a HighLevel contact linked to Ada Byron');
    const inHighLevel = t.emulator.emu.contact(beaHighLevel)!;
    expect(inHighLevel.companyName).toBe('After Refusal');
    expect(inHighLevel.tags).toContain('kept');
    expect(inHighLevel.phone ?? null).toBeNull();
    // The ledger took what went; Tandem keeps the phone, still waiting.
    expect(getLinkByContact(t.db, loc, bea)!.base).toMatchObject({ companyName: 'After Refusal', phone: null });
    expect(getContact(t.db, loc, bea)!.fields).toMatchObject({ companyName: 'After Refusal', phone: '+14155550170' });
    // A later edit of another field goes out too, the phone still refused.
    await rest('PATCH', `/api/v1/contacts/${bea}`, { website: 'https://bea.example' });
    await syncAll();
    expect(t.emulator.emu.contact(beaHighLevel)!.website).toBe('https://bea.example');
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    // Ada lets go of the phone: Bea's goes out by itself.
    await rest('PATCH', `/api/v1/contacts/${ada.id}`, { phone: '+14155550171' });
    await syncAll();
    expect(t.emulator.emu.contact(beaHighLevel)!.phone).toBe('+14155550170');
    expect(rowOf(bea)).toBeUndefined();
  });
});

describe('an edit refused for both its email and its phone', () => {
  it('still sends its other fields: each refused key is withheld in turn (QA)', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    await holder();
    // Cal is in HighLevel alone (his webhook lost): Tandem takes the email, HighLevel not.
    await control(t.highlevelUrl, 'POST', '/webhooks/faults', { mode: 'drop', count: 1 });
    await hl('POST', '/contacts/', { locationId: loc, firstName: 'Cal', email: 'cal@example.com' });
    const bea = await tandemContact({ firstName: 'Bea', lastName: 'Stone', email: 'bea@example.com' });
    await syncAll();
    const beaHighLevel = highlevelIdOf(bea)!;
    // Ada's phone and Cal's email in one edit, with a new company.
    await rest('PATCH', `/api/v1/contacts/${bea}`, { email: 'cal@example.com', phone: '+14155550170', companyName: 'Both Refused' });
    await syncAll();
    expect(rowOf(bea)).toMatchObject({ status: 'failed' });
    const inHighLevel = t.emulator.emu.contact(beaHighLevel)!;
    expect(inHighLevel).toMatchObject({ companyName: 'Both Refused', email: 'bea@example.com' });
    expect(inHighLevel.phone ?? null).toBeNull();
    expect(getLinkByContact(t.db, loc, bea)!.base).toMatchObject({ companyName: 'Both Refused', email: 'bea@example.com', phone: null });
  });
});

describe('the status strip and the Refused filter', () => {
  it('count the same contacts: a refused deletion of an archived contact is in neither', async () => {
    setDirections({ updateDirection: 'bidirectional' });
    const gone = await holder({ firstName: 'Gus', lastName: 'Hale', phone: '+14155550111' });
    await holder();
    const bea = await refused();
    await control(t.highlevelUrl, 'POST', '/faults', {
      method: 'DELETE', path: `/contacts/${gone.highlevelId}`, status: 422, times: 1,
      body: { statusCode: 422, message: 'This contact cannot be deleted', error: 'Unprocessable Entity' },
    });
    await rest('DELETE', `/api/v1/contacts/${gone.id}`);
    await syncAll();
    expect(rowOf(gone.id)).toMatchObject({ status: 'failed', kind: 'archive' });

    const listed = listRecentContacts(t.db, loc, { outbound: 'failed', limit: 50 }).contacts.map((c) => c.id);
    expect(listed).toEqual([bea]);
    const status = syncStatus(t.db, loc);
    expect(status.failedOutbound).toBe(listed.length);
    expect(status.lastFailure?.contactId).toBe(bea);
  });
});
