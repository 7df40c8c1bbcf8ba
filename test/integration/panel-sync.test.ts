// The Sync tab's API over real HTTP: defaults, admins save (audited, one row per changed setting),
// plain users are refused, and so are users HighLevel deactivated once Tandem hears of it, the body
// is strict (some of the two settings and the revision the draft began from), a save changes only
// the settings it names and is refused (409) when another admin changed one of them after its
// draft began, pause and resume are audited, the status strip counts what the repositories hold and
// says in plain words when HighLevel no longer accepts Tandem, and the location comes from the
// session only. Before a save that turns a setting Bi-directional, the preview says what it would
// send at once: the held new contacts and edits, counted and sampled with the fields that change,
// for admins only, of the session's location only, from a strict query; a held contact HighLevel
// will refuse as a duplicate of another Tandem contact's is counted apart, and one refused so before
// that a held edit of the other contact frees counts as created. The preview carries a
// fingerprint of what it describes; a save that carries one goes through only while saving sends
// exactly that (409 release_changed otherwise, saving nothing).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { archiveContact, createContact, updateContact } from '../../db/contacts.ts';
import { saveCustomFieldDefinitions } from '../../db/custom-fields.ts';
import { tombstone, upsertLink } from '../../db/links.ts';
import { completeOutbox, enqueueOutbox, failOutbox, getOutbox } from '../../db/outbox.ts';
import { updateSyncState } from '../../db/sync-state.ts';
import { listedHighLevelUser } from '../../db/highlevel-users.ts';
import { getSyncSettings, settingsHistory, updateSyncSettings, type SyncSettingsPatch } from '../../db/sync-settings.ts';
import { insertInboxEvent } from '../../db/webhook-inbox.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { USER_INACTIVE } from '../../server/auth/session.ts';
import { REAUTH_REASON, ReauthRequiredError } from '../../server/highlevel/token-provider.ts';
import type { ReleasePreviewView, SyncSettingsView, SyncView } from '../../server/routes/panel-sync.ts';
import { control, until } from '../helpers/emulator.ts';
import { startTestTandem, type TestAgency, type TestTandem } from '../helpers/tandem.ts';
import { panelApi, panelSignIn, twoInstalledAgencies } from '../helpers/panel.ts';
import { restCall } from '../helpers/rest.ts';

let t: TestTandem;
let agencyA: TestAgency;
let agencyB: TestAgency;
let A: { id: string; name: string };
let B: { id: string; name: string };
let plainUserA: string;

beforeAll(async () => {
  t = await startTestTandem();
  ({ agencyA, agencyB, A, B, plainUserA } = await twoInstalledAgencies(t));
});
afterAll(async () => {
  await t?.close();
});

// One session per user and location for the whole file: the panel's sign-in allows 20 a minute per
// address (server/routes/panel-api.ts EXCHANGE_LIMIT), and this file's tests together sign in more.
const sessions = new Map<string, Promise<string>>();
const signIn = (userId: string, locationId: string): Promise<string> => {
  const key = `${userId} ${locationId}`;
  if (!sessions.has(key)) sessions.set(key, panelSignIn(t, userId, locationId));
  return sessions.get(key)!;
};

const api = <T = any>(method: string, path: string, token: string, body?: unknown) => panelApi<T>(t, method, path, token, body);

const adminName = 'Ada Admin';
const secondAdminName = 'Sam Second';
let secondAdminId: string | undefined;

/** Another admin of A (created once), for the two-admins cases. */
async function secondAdmin(): Promise<string> {
  secondAdminId ??= (
    await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
      companyId: agencyA.companyId, firstName: 'Sam', lastName: 'Second', email: 'sam.second@alpha.example', type: 'account', role: 'admin', locationIds: [A.id],
    })
  ).id;
  return secondAdminId;
}

describe('settings', () => {
  it('starts with the defaults: creation Bi-directional, update Inbound, not paused, no history', async () => {
    const token = await signIn(agencyA.adminId, A.id);
    const { status, body } = await api<SyncView>('GET', '/api/panel/sync', token);
    expect(status).toBe(200);
    expect(body.settings).toEqual({ creationDirection: 'bidirectional', updateDirection: 'inbound', paused: false, updatedAt: null, revision: 0 });
    expect(body.history).toEqual([]);
    expect(body.canEdit).toBe(true);
    expect(body.status).toMatchObject({ paused: false, installation: { status: 'active' }, pendingOutbound: 0, failedOutbound: 0 });
  });

  it('an admin saves; one audit row per changed setting, with who, old, new and when', async () => {
    const token = await signIn(agencyA.adminId, A.id);
    const saved = await api<SyncSettingsView>('PUT', '/api/panel/sync/settings', token, { creationDirection: 'bidirectional', updateDirection: 'bidirectional', revision: 0 });
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ creationDirection: 'bidirectional', updateDirection: 'bidirectional', paused: false });
    expect(saved.body.updatedAt).not.toBeNull();
    expect(saved.body.revision).toBeGreaterThan(0);
    // What the sync loop reads is what was saved.
    expect(getSyncSettings(t.db, A.id)).toMatchObject({ updateDirection: 'bidirectional', updatedBy: agencyA.adminId });

    const view = (await api<SyncView>('GET', '/api/panel/sync', token)).body;
    expect(view.settings.updateDirection).toBe('bidirectional');
    // Only the setting that changed is recorded.
    expect(view.history).toHaveLength(1);
    expect(view.history[0]).toMatchObject({ setting: 'updateDirection', oldValue: 'inbound', newValue: 'bidirectional', userId: agencyA.adminId, userName: adminName });
    expect(Math.abs(Date.parse(view.history[0]!.at) - Date.now())).toBeLessThan(60_000);
    // The revision a draft begins from is the latest change's.
    expect(view.settings.revision).toBe(view.history[0]!.id);
    expect(saved.body.revision).toBe(view.history[0]!.id);

    // Saving the same values again changes nothing and records nothing.
    await api('PUT', '/api/panel/sync/settings', token, { creationDirection: 'bidirectional', updateDirection: 'bidirectional', revision: view.settings.revision });
    expect((await api<SyncView>('GET', '/api/panel/sync', token)).body.history).toHaveLength(1);

    // Two settings changed at once: two rows, newest first.
    await api('PUT', '/api/panel/sync/settings', token, { creationDirection: 'inbound', updateDirection: 'inbound', revision: view.settings.revision });
    const history = (await api<SyncView>('GET', '/api/panel/sync', token)).body.history;
    expect(history.map((h) => [h.setting, h.oldValue, h.newValue]).slice(0, 2).sort()).toEqual([
      ['creationDirection', 'bidirectional', 'inbound'],
      ['updateDirection', 'bidirectional', 'inbound'],
    ]);
    expect(history).toHaveLength(3);
  });

  it('a plain user sees the settings read-only and is refused with 403 on every change', async () => {
    const token = await signIn(plainUserA, A.id);
    const view = await api<SyncView>('GET', '/api/panel/sync', token);
    expect(view.status).toBe(200);
    expect(view.body.canEdit).toBe(false);
    const before = getSyncSettings(t.db, A.id);
    for (const [method, path, body] of [
      ['PUT', '/api/panel/sync/settings', { creationDirection: 'bidirectional', updateDirection: 'bidirectional', revision: view.body.settings.revision }],
      ['POST', '/api/panel/sync/pause', undefined],
      ['POST', '/api/panel/sync/resume', undefined],
    ] as const) {
      const res = await api(method, path, token, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe('admin_only');
    }
    expect(getSyncSettings(t.db, A.id)).toEqual(before);
  });

  it('refuses a body that is not some of the two settings and the draft\'s revision with 400', async () => {
    const token = await signIn(agencyA.adminId, A.id);
    const before = getSyncSettings(t.db, A.id);
    const revision = (await api<SyncView>('GET', '/api/panel/sync', token)).body.settings.revision;
    for (const body of [
      { creationDirection: 'outbound', updateDirection: 'inbound', revision },
      // Without the revision the draft began from, a save could not tell it overwrites a newer change.
      { creationDirection: 'inbound' },
      { creationDirection: 'inbound', revision: -1 },
      { creationDirection: 'inbound', revision: '3' },
      { revision },
      { creationDirection: 'inbound', updateDirection: 'inbound', paused: true, revision },
      { creationDirection: 'inbound', updateDirection: 'inbound', locationId: B.id, revision },
      [],
      'not json',
    ]) {
      const res = await api('PUT', '/api/panel/sync/settings', token, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toMatchObject({ code: expect.any(String), message: expect.stringMatching(/\S/) });
    }
    expect(getSyncSettings(t.db, A.id)).toEqual(before);
  });

  it('a save changes only the settings it names: another admin\'s change of the other one stays', async () => {
    // QA: admin B's draft (made before A saved) sent both settings, so saving it put back the value
    // of the one B never touched.
    const tokenA = await signIn(agencyA.adminId, A.id);
    const tokenB = await signIn(await secondAdmin(), A.id);
    const start = (await api<SyncView>('GET', '/api/panel/sync', tokenB)).body.settings;
    const flip = (d: string) => (d === 'inbound' ? 'bidirectional' : 'inbound');
    // A saves Contact update while B's draft of Contact creation is open.
    expect((await api('PUT', '/api/panel/sync/settings', tokenA, { updateDirection: flip(start.updateDirection), revision: start.revision })).status).toBe(200);
    const saved = await api<SyncSettingsView>('PUT', '/api/panel/sync/settings', tokenB, { creationDirection: flip(start.creationDirection), revision: start.revision });
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ creationDirection: flip(start.creationDirection), updateDirection: flip(start.updateDirection) });
    expect(getSyncSettings(t.db, A.id)).toMatchObject({ creationDirection: flip(start.creationDirection), updateDirection: flip(start.updateDirection) });
    // Who changed what stays told, one row each.
    const history = (await api<SyncView>('GET', '/api/panel/sync', tokenA)).body.history;
    expect(history.slice(0, 2).map((h) => [h.setting, h.userName])).toEqual([
      ['creationDirection', secondAdminName],
      ['updateDirection', adminName],
    ]);
  });

  it('refuses (409) a save that would overwrite a change made to the same setting after its draft began, until saved from the newer revision', async () => {
    const tokenA = await signIn(agencyA.adminId, A.id);
    const tokenB = await signIn(await secondAdmin(), A.id);
    const start = (await api<SyncView>('GET', '/api/panel/sync', tokenB)).body.settings;
    const other = start.creationDirection === 'inbound' ? 'bidirectional' : 'inbound';
    // B drafts Contact creation → `other`. Meanwhile A sets it to `other` and back: A decided it,
    // after B's draft began.
    const there = await api<SyncSettingsView>('PUT', '/api/panel/sync/settings', tokenA, { creationDirection: other, revision: start.revision });
    const back = await api<SyncSettingsView>('PUT', '/api/panel/sync/settings', tokenA, { creationDirection: start.creationDirection, revision: there.body.revision });
    expect(back.status).toBe(200);
    const before = getSyncSettings(t.db, A.id);
    const historyBefore = (await api<SyncView>('GET', '/api/panel/sync', tokenA)).body.history;

    const refused = await api('PUT', '/api/panel/sync/settings', tokenB, { creationDirection: other, revision: start.revision });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('settings_changed');
    expect(refused.body.error.message).toContain(`Contact creation was changed by ${adminName} since you began editing`);
    expect(refused.body.error.message).toContain('Nothing was saved');
    expect(getSyncSettings(t.db, A.id)).toEqual(before);
    expect((await api<SyncView>('GET', '/api/panel/sync', tokenA)).body.history).toEqual(historyBefore);

    // Confirmed from the revision that includes A's change, it is saved and audited.
    const confirmed = await api<SyncSettingsView>('PUT', '/api/panel/sync/settings', tokenB, { creationDirection: other, revision: back.body.revision });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.creationDirection).toBe(other);
    const latest = (await api<SyncView>('GET', '/api/panel/sync', tokenA)).body.history[0];
    expect(latest).toMatchObject({ setting: 'creationDirection', newValue: other, userName: secondAdminName });

    // A change meanwhile to the very value the draft sets overwrites nothing: no conflict.
    const now = (await api<SyncView>('GET', '/api/panel/sync', tokenB)).body.settings;
    const flipped = now.updateDirection === 'inbound' ? 'bidirectional' : 'inbound';
    await api('PUT', '/api/panel/sync/settings', tokenA, { updateDirection: flipped, revision: now.revision });
    expect((await api('PUT', '/api/panel/sync/settings', tokenB, { updateDirection: flipped, revision: now.revision })).status).toBe(200);
  });

  it('pause and resume are admin actions, audited, and shown in the status', async () => {
    const token = await signIn(agencyA.adminId, A.id);
    const paused = await api<SyncView>('POST', '/api/panel/sync/pause', token);
    expect(paused.status).toBe(200);
    expect(paused.body.settings.paused).toBe(true);
    expect(paused.body.status.paused).toBe(true);
    expect(paused.body.history[0]).toMatchObject({ setting: 'paused', oldValue: 'false', newValue: 'true', userName: adminName });
    const resumed = await api<SyncView>('POST', '/api/panel/sync/resume', token);
    expect(resumed.body.status.paused).toBe(false);
    expect(resumed.body.history[0]).toMatchObject({ setting: 'paused', oldValue: 'true', newValue: 'false' });
    expect(resumed.body.history.filter((h) => h.setting === 'paused')).toHaveLength(2);
  });
});

describe('a user HighLevel deactivated', () => {
  it('keeps no admin session once Tandem hears of it, and gets it back when reactivated', async () => {
    const created = await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
      companyId: agencyA.companyId, firstName: 'Dee', lastName: 'Parted', email: 'dee.parted@alpha.example', type: 'account', role: 'admin', locationIds: [A.id],
    });
    const sso = (await control<{ payload: string }>(t.highlevelUrl, 'GET', `/sso?${new URLSearchParams({ appId: t.app.appId, userId: created.id, locationId: A.id })}`)).payload;
    // A sub-account user is an admin once the location's listing has them (their UserCreate webhook).
    await until(() => listedHighLevelUser(t.db, A.id, created.id)?.role === 'admin', 'the new user to be listed', 15_000);
    const token = await signIn(created.id, A.id);
    // The settings as they are: saving them is an admin action that records nothing.
    const { creationDirection, updateDirection } = getSyncSettings(t.db, A.id);
    const settings = { creationDirection, updateDirection, revision: (await api<SyncView>('GET', '/api/panel/sync', token)).body.settings.revision };
    expect((await api('PUT', '/api/panel/sync/settings', token, settings)).status).toBe(200);

    // HighLevel's UserUpdate webhook has the location's loop list its users again; no request
    // of the panel asks HighLevel.
    await control(t.highlevelUrl, 'PATCH', `/users/${created.id}`, { deactivated: true });
    const refused = await until(async () => {
      const res = await api('PUT', '/api/panel/sync/settings', token, settings);
      return res.status === 403 ? res : undefined;
    }, 'the deactivation to reach Tandem', 15_000);
    expect(refused.body).toEqual({ error: USER_INACTIVE });
    for (const [method, path] of [['GET', '/api/panel/sync'], ['POST', '/api/panel/sync/pause'], ['GET', '/api/panel/context']] as const) {
      expect((await api(method, path, token)).body, `${method} ${path}`).toEqual({ error: USER_INACTIVE });
    }
    // User data HighLevel gave before the deactivation (it carries no time) signs in no more.
    const again = await fetch(`${t.url}/api/panel/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payload: sso }) });
    expect(again.status).toBe(403);
    expect(getSyncSettings(t.db, A.id).paused).toBe(false);

    await control(t.highlevelUrl, 'PATCH', `/users/${created.id}`, { deactivated: false });
    await until(async () => (await api('GET', '/api/panel/sync', token)).status === 200, 'the reactivation to reach Tandem', 15_000);
  });
});

describe('status strip', () => {
  it('counts what waits each way and shows the latest change times and problems', async () => {
    const token = await signIn(agencyA.adminId, A.id);
    // Paused, so A's sync loop leaves the rows below alone while we look at them.
    await api('POST', '/api/panel/sync/pause', token);
    const now = Date.now();
    const later = now + 3_600_000;
    // The refused one is a live contact (the strip counts what the Contacts tab's Refused filter lists).
    createContact(t.db, { locationId: A.id, id: 'c-failed', fields: { ...emptyContact(), firstName: 'Fay', lastName: 'Refused' }, now, origin: 'remote' });
    for (const contactId of ['c-pending-1', 'c-pending-2', 'c-failed']) enqueueOutbox(t.db, A.id, contactId, 'upsert', now);
    // Not due for an hour: still pending, whatever runs meanwhile.
    for (const contactId of ['c-pending-1', 'c-pending-2']) {
      failOutbox(t.db, getOutbox(t.db, A.id, contactId)!, { error: 'HighLevel was busy', nextAttemptAt: later, permanent: false });
    }
    failOutbox(t.db, getOutbox(t.db, A.id, 'c-failed')!, { error: 'HighLevel refused the email address', nextAttemptAt: later, permanent: true });
    for (const id of ['wh-1', 'wh-2']) {
      insertInboxEvent(t.db, { webhookId: `${A.id}-${id}`, type: 'ContactUpdate', locationId: A.id, companyId: agencyA.companyId, body: '{}', receivedAt: now, nextAttemptAt: later });
    }
    // B's rows are not A's.
    insertInboxEvent(t.db, { webhookId: `${B.id}-wh`, type: 'ContactUpdate', locationId: B.id, companyId: agencyB.companyId, body: '{}', receivedAt: now, nextAttemptAt: later });
    updateSyncState(t.db, A.id, { lastInboundAt: now - 60_000, lastOutboundAt: now - 120_000, lastError: 'HighLevel’s daily limit is used up' }, now - 30_000);

    const { status } = (await api<SyncView>('GET', '/api/panel/sync', token)).body;
    expect(status).toMatchObject({
      paused: true,
      pendingOutbound: 2,
      failedOutbound: 1,
      pendingInbound: 2,
      lastInboundAt: new Date(now - 60_000).toISOString(),
      lastOutboundAt: new Date(now - 120_000).toISOString(),
      lastError: { message: 'HighLevel’s daily limit is used up', at: new Date(now - 30_000).toISOString() },
      // The refused contact by name. As of the refusal (the failure's time), not of when the change was queued.
      lastFailure: { message: 'HighLevel refused the email address', at: new Date(later).toISOString(), contact: 'Fay Refused' },
      // Waiting for another try after a passing failure: how many, and the latest.
      retrying: { count: 2, message: 'HighLevel was busy', nextAttemptAt: new Date(later).toISOString(), contact: 'a contact no longer in Tandem' },
    });
    // Sent at last: nothing is retrying any more.
    for (const contactId of ['c-pending-1', 'c-pending-2']) completeOutbox(t.db, getOutbox(t.db, A.id, contactId)!);
    expect((await api<SyncView>('GET', '/api/panel/sync', token)).body.status.retrying).toBeNull();

    // A deletion HighLevel refused of a contact archived in Tandem is said apart: it is not among
    // the refused contacts the Contacts tab lists.
    const olga = createContact(t.db, { locationId: A.id, id: 'c-refused-deletion', fields: { ...emptyContact(), firstName: 'Olga', lastName: 'Archived' }, now, origin: 'remote' });
    upsertLink(t.db, { locationId: A.id, contactId: olga.id, highlevelId: 'hl-refused-deletion', base: olga.fields, now });
    archiveContact(t.db, { locationId: A.id, id: olga.id, now, origin: 'local' });
    const refusedAt = now + 7_200_000;
    failOutbox(t.db, getOutbox(t.db, A.id, olga.id)!, { error: 'HighLevel refused to delete it', nextAttemptAt: refusedAt, permanent: true });
    const withDeletion = (await api<SyncView>('GET', '/api/panel/sync', token)).body.status;
    expect(withDeletion.failedOutbound).toBe(1);
    expect(withDeletion.refusedDeletion).toEqual({ count: 1, message: 'HighLevel refused to delete it', at: new Date(refusedAt).toISOString(), contact: 'Olga Archived' });
    completeOutbox(t.db, getOutbox(t.db, A.id, olga.id)!);
    expect((await api<SyncView>('GET', '/api/panel/sync', token)).body.status.refusedDeletion).toBeNull();
  });

  it('splits what waits to go out into contacts not in HighLevel yet and edits of linked ones', async () => {
    const token = await signIn(agencyA.adminId, A.id);
    await api('POST', '/api/panel/sync/pause', token);
    const now = Date.now();
    const before = (await api<SyncView>('GET', '/api/panel/sync', token)).body.status;
    // Linked: an edit. Archived: a deletion, never held, in neither count. Deleted in HighLevel
    // (tombstone) and waiting to go out: restored in Tandem, a new contact for HighLevel. Another
    // location's edit is not A's.
    upsertLink(t.db, { locationId: A.id, contactId: 'c-split-edit', highlevelId: 'hl-split-edit', base: emptyContact(), now });
    upsertLink(t.db, { locationId: A.id, contactId: 'c-split-gone', highlevelId: 'hl-split-gone', base: emptyContact(), now });
    upsertLink(t.db, { locationId: A.id, contactId: 'c-split-fill', highlevelId: 'hl-split-fill', base: emptyContact(), now });
    tombstone(t.db, A.id, 'hl-split-gone', now);
    upsertLink(t.db, { locationId: B.id, contactId: 'c-split-b', highlevelId: 'hl-split-b', base: emptyContact(), now });
    enqueueOutbox(t.db, A.id, 'c-split-new', 'upsert', now);
    enqueueOutbox(t.db, A.id, 'c-split-edit', 'upsert', now);
    enqueueOutbox(t.db, A.id, 'c-split-gone', 'upsert', now);
    // Just linked by email or phone, HighLevel's empty fields to fill: an edit of a linked contact.
    enqueueOutbox(t.db, A.id, 'c-split-fill', 'fill', now);
    enqueueOutbox(t.db, A.id, 'c-split-archived', 'archive', now);
    enqueueOutbox(t.db, B.id, 'c-split-b', 'upsert', now);

    const { status } = (await api<SyncView>('GET', '/api/panel/sync', token)).body;
    expect(status.pendingOutbound).toBe(before.pendingOutbound + 5);
    expect(status.pendingOutboundNew).toBe(before.pendingOutboundNew + 2);
    expect(status.pendingOutboundEdits).toBe(before.pendingOutboundEdits + 2);
    // B's row goes (unless B's loop took it already), so the test of B's own view below starts from an empty outbox.
    const rowB = getOutbox(t.db, B.id, 'c-split-b');
    if (rowB) completeOutbox(t.db, rowB);
  });

  it('a session of B sees B only, whatever the request names', async () => {
    const tokenB = await signIn(agencyB.adminId, B.id);
    const steered = await api<SyncView>('GET', `/api/panel/sync?${new URLSearchParams({ locationId: A.id })}`, tokenB);
    expect(steered.status).toBe(200);
    expect(steered.body.settings).toEqual({ creationDirection: 'bidirectional', updateDirection: 'inbound', paused: false, updatedAt: null, revision: 0 });
    expect(steered.body.history).toEqual([]);
    expect(steered.body.status).toMatchObject({ paused: false, pendingOutbound: 0, failedOutbound: 0, pendingInbound: 1, lastError: null });
    // B's admin changes B; A is untouched.
    const beforeA = getSyncSettings(t.db, A.id);
    await api('PUT', `/api/panel/sync/settings?locationId=${A.id}`, tokenB, { creationDirection: 'inbound', updateDirection: 'bidirectional', revision: 0 });
    await api('POST', `/api/panel/sync/resume?locationId=${A.id}`, tokenB);
    expect(getSyncSettings(t.db, A.id)).toEqual(beforeA);
    expect(getSyncSettings(t.db, B.id)).toMatchObject({ creationDirection: 'inbound', updateDirection: 'bidirectional' });
    const tokenA = await signIn(agencyA.adminId, A.id);
    const a = (await api<SyncView>('GET', '/api/panel/sync', tokenA)).body;
    expect(a.history.some((h) => h.userId === agencyB.adminId)).toBe(false);
    expect(JSON.stringify(a)).not.toContain(B.id);
  });

  it('without a session there is nothing', async () => {
    const res = await fetch(`${t.url}/api/panel/sync`);
    expect(res.status).toBe(401);
  });
});

describe('the preview of a save that sends held work', () => {
  const LEAD = 'cfLeadScore00000001';
  const preview = (token: string, creationDirection: string, updateDirection: string) =>
    api<ReleasePreviewView>('GET', `/api/panel/sync/settings/preview?${new URLSearchParams({ creationDirection, updateDirection })}`, token);
  const setSettings = (locationId: string, patch: SyncSettingsPatch) =>
    updateSyncSettings(t.db, { locationId, patch, user: { id: 'test', name: 'Test' }, now: Date.now() });
  const fields = (f: Partial<ContactFields>): ContactFields => ({ ...emptyContact(), ...f });

  /** A contact in HighLevel (linked, its ledger `base`), then edited in Tandem to `edit`: a held edit. */
  function heldEdit(locationId: string, id: string, base: Partial<ContactFields>, edit: Parameters<typeof updateContact>[1]['patch'], tags: string[] = []) {
    const now = Date.now();
    const contact = createContact(t.db, { locationId, id, fields: fields(base), now, origin: 'remote' });
    upsertLink(t.db, { locationId, contactId: contact.id, highlevelId: `hl-${id}`, base: contact.fields, now });
    updateContact(t.db, { locationId, id, patch: edit, tags: { add: tags, remove: [] }, now: now + 1, origin: 'local' });
  }

  let tokenA: string;
  beforeAll(async () => {
    tokenA = await signIn(agencyA.adminId, A.id);
    // Paused, so A's loop leaves the rows below alone; both directions Inbound: everything is held.
    await api('POST', '/api/panel/sync/pause', tokenA);
    setSettings(A.id, { creationDirection: 'inbound', updateDirection: 'inbound' });
    saveCustomFieldDefinitions(t.db, A.id, [{ id: LEAD, name: 'Lead score', fieldKey: 'contact.lead_score', dataType: 'NUMERICAL', options: [], position: 0 }], Date.now());
    // Not in HighLevel: created there once Contact creation is Bi-directional.
    createContact(t.db, { locationId: A.id, id: 'c-held-new', fields: fields({ firstName: 'Nora', lastName: 'New', email: 'nora@alpha.example' }), now: Date.now(), origin: 'local' });
    // In both, edited in Tandem: sent once Contact update is Bi-directional.
    heldEdit(A.id, 'c-held-edit', { firstName: 'Eddie', lastName: 'Edit', city: 'Lyon', customFields: { [LEAD]: 54 } }, { city: null, customFields: { [LEAD]: 99 } }, ['vip']);
    // Linked by email while both were Inbound, HighLevel's empty fields to fill: released by either.
    const now = Date.now();
    createContact(t.db, { locationId: A.id, id: 'c-held-fill', fields: fields({ firstName: 'Fiona', email: 'fiona@alpha.example', companyName: 'Fill & Co' }), now, origin: 'remote' });
    upsertLink(t.db, { locationId: A.id, contactId: 'c-held-fill', highlevelId: 'hl-c-held-fill', base: fields({ firstName: 'Fiona', email: 'fiona@alpha.example' }), now });
    enqueueOutbox(t.db, A.id, 'c-held-fill', 'fill', now);
  });

  it('counts and samples the held new contacts a switch of Contact creation sends, and the fills it releases', async () => {
    const { status, body } = await preview(tokenA, 'bidirectional', 'inbound');
    expect(status).toBe(200);
    expect(body.settings).toMatchObject({ creationDirection: 'inbound', updateDirection: 'inbound' });
    expect(body.created).toEqual({ count: 1, samples: [{ contactId: 'c-held-new', label: 'Nora New', changes: [] }] });
    // The fill goes out with Contact creation: only HighLevel's empty fields. The edit stays held.
    expect(body.updated).toEqual({ count: 1, samples: [{ contactId: 'c-held-fill', label: 'Fiona', changes: [{ field: 'companyName', from: null, to: 'Fill & Co' }] }] });
  });

  it('counts and samples the held edits a switch of Contact update sends, field by field, with custom field names', async () => {
    const { status, body } = await preview(tokenA, 'inbound', 'bidirectional');
    expect(status).toBe(200);
    expect(body.created).toEqual({ count: 0, samples: [] });
    expect(body.updated.count).toBe(2);
    const edit = body.updated.samples.find((s) => s.contactId === 'c-held-edit');
    expect(edit).toEqual({
      contactId: 'c-held-edit',
      label: 'Eddie Edit',
      changes: [
        { field: 'city', from: 'Lyon', to: null },
        { field: `customFields.${LEAD}`, from: 54, to: 99 },
        { field: 'tags', from: [], to: ['vip'] },
      ],
    });
    expect(body.fieldNames).toEqual({ [`customFields.${LEAD}`]: 'Lead score' });
    // Both at once: both groups.
    const both = (await preview(tokenA, 'bidirectional', 'bidirectional')).body;
    expect([both.created.count, both.updated.count]).toEqual([1, 2]);
  });

  it('releases nothing when nothing turns Bi-directional, or what turns was not holding anything', async () => {
    const same = (await preview(tokenA, 'inbound', 'inbound')).body;
    expect([same.created, same.updated]).toEqual([{ count: 0, samples: [] }, { count: 0, samples: [] }]);
    // With Contact creation already Bi-directional, new contacts and fills are not held: a switch
    // of Contact update sends the edits only.
    setSettings(A.id, { creationDirection: 'bidirectional' });
    try {
      const body = (await preview(tokenA, 'bidirectional', 'bidirectional')).body;
      expect(body.created.count).toBe(0);
      expect(body.updated.count).toBe(1);
      expect(body.updated.samples.map((s) => s.contactId)).toEqual(['c-held-edit']);
      expect((await preview(tokenA, 'bidirectional', 'inbound')).body.updated.count).toBe(0);
    } finally {
      setSettings(A.id, { creationDirection: 'inbound' });
    }
  });

  it('samples the five latest and counts them all; archived contacts send nothing and are left out', async () => {
    for (let i = 1; i <= 6; i++) {
      createContact(t.db, { locationId: A.id, id: `c-held-more-${i}`, fields: fields({ firstName: `More${i}` }), now: Date.now() + i, origin: 'local' });
    }
    const { body } = await preview(tokenA, 'bidirectional', 'inbound');
    expect(body.created.count).toBe(7);
    expect(body.created.samples.map((s) => s.label)).toEqual(['More6', 'More5', 'More4', 'More3', 'More2']);
    for (let i = 1; i <= 6; i++) archiveContact(t.db, { locationId: A.id, id: `c-held-more-${i}`, now: Date.now(), origin: 'local' });
    expect((await preview(tokenA, 'bidirectional', 'inbound')).body.created.count).toBe(1);
  });

  it('is for admins only', async () => {
    const res = await api('GET', '/api/panel/sync/settings/preview?creationDirection=bidirectional&updateDirection=bidirectional', await signIn(plainUserA, A.id));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('admin_only');
    expect((await fetch(`${t.url}/api/panel/sync/settings/preview?creationDirection=inbound&updateDirection=inbound`)).status).toBe(401);
  });

  it('refuses a query that is not both settings and nothing else with 400', async () => {
    for (const query of [
      '',
      'creationDirection=bidirectional',
      'creationDirection=outbound&updateDirection=inbound',
      'creationDirection=bidirectional&updateDirection=inbound&locationId=' + B.id,
      'creationDirection=bidirectional&creationDirection=inbound&updateDirection=inbound',
      'creationDirection=bidirectional&updateDirection=inbound&paused=false',
    ]) {
      const res = await api('GET', `/api/panel/sync/settings/preview?${query}`, tokenA);
      expect(res.status, query).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/^Invalid preview request: /) });
    }
    const steered = await api('GET', `/api/panel/sync/settings/preview?creationDirection=bidirectional&updateDirection=inbound&locationId=${B.id}`, tokenA);
    expect(steered.body.error.message).toContain('locationId');
  });

  it('shows a session of B what B holds, and nothing of A', async () => {
    const tokenB = await signIn(agencyB.adminId, B.id);
    await api('POST', '/api/panel/sync/pause', tokenB);
    setSettings(B.id, { creationDirection: 'inbound', updateDirection: 'inbound' });
    heldEdit(B.id, 'c-held-b', { firstName: 'Bea', lastName: 'Bravo' }, { city: 'Bristol' });
    const b = (await preview(tokenB, 'bidirectional', 'bidirectional')).body;
    expect(b.created).toEqual({ count: 0, samples: [] });
    expect(b.updated).toEqual({ count: 1, samples: [{ contactId: 'c-held-b', label: 'Bea Bravo', changes: [{ field: 'city', from: null, to: 'Bristol' }] }] });
    expect(JSON.stringify(b)).not.toMatch(/Nora|Eddie|Fiona|Lead score/);
    // A's preview leaves B's edit out.
    const a = (await preview(tokenA, 'bidirectional', 'bidirectional')).body;
    expect(a.updated.samples.map((s) => s.contactId)).not.toContain('c-held-b');
    expect(a.updated.count).toBe(2);
  });

  describe('a save that confirms a preview', () => {
    const toUpdate = () => preview(tokenA, 'inbound', 'bidirectional');
    const save = (token: string, body: Record<string, unknown>) => api('PUT', '/api/panel/sync/settings', token, body);
    /** What a refused save must leave as it was: the settings, their history and what waits to go out. */
    const snapshot = () => ({
      settings: getSyncSettings(t.db, A.id),
      history: settingsHistory(t.db, A.id, 100),
      held: ['c-held-edit', 'c-held-fill', 'c-held-late'].map((id) => getOutbox(t.db, A.id, id)?.status ?? null),
    });

    it('is refused (409) when more was held after the preview, saving nothing, and goes through with the fingerprint of what it sends now', async () => {
      const shown = (await toUpdate()).body;
      expect(shown.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      // Read again with nothing changed: the same fingerprint (a panel refreshing it sees no change).
      expect((await toUpdate()).body.fingerprint).toBe(shown.fingerprint);

      // Another edit held while the dialog is open.
      heldEdit(A.id, 'c-held-late', { firstName: 'Lena', lastName: 'Late' }, { city: 'Nantes' });
      const before = snapshot();
      const refused = await save(tokenA, { updateDirection: 'bidirectional', revision: shown.settings.revision, fingerprint: shown.fingerprint });
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('release_changed');
      expect(refused.body.error.message).toMatch(/changed since it was shown.*Nothing was saved/);
      expect(snapshot()).toEqual(before);

      // The preview now says so: one more edit, another fingerprint.
      const now = (await toUpdate()).body;
      expect(now.updated.count).toBe(shown.updated.count + 1);
      expect(now.fingerprint).not.toBe(shown.fingerprint);

      // An edit through the REST API of a contact already held: as many contacts, but not what was shown.
      const key = createApiKey(t.db, { locationId: A.id, name: 'integration', createdBy: null, now: Date.now() }).key;
      const patched = await restCall(t.url, 'PATCH', '/api/v1/contacts/c-held-late', { key, body: { address: { city: 'Nice' } } });
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      const again = await save(tokenA, { updateDirection: 'bidirectional', revision: now.settings.revision, fingerprint: now.fingerprint });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('release_changed');
      expect(snapshot()).toEqual(before);

      const current = (await toUpdate()).body;
      expect(current.updated.count).toBe(now.updated.count);
      try {
        const saved = await save(tokenA, { updateDirection: 'bidirectional', revision: current.settings.revision, fingerprint: current.fingerprint });
        expect(saved.status).toBe(200);
        expect(saved.body).toMatchObject({ creationDirection: 'inbound', updateDirection: 'bidirectional' });
        expect(getSyncSettings(t.db, A.id).updateDirection).toBe('bidirectional');
      } finally {
        setSettings(A.id, { updateDirection: 'inbound' });
      }
    });

    it('is refused (409) when another admin saved the same change meanwhile, and the preview then releases nothing', async () => {
      const shown = (await toUpdate()).body;
      expect(shown.updated.count).toBeGreaterThan(0);
      const tokenB = await signIn(await secondAdmin(), A.id);
      try {
        expect((await save(tokenB, { updateDirection: 'bidirectional', revision: shown.settings.revision })).status).toBe(200);
        const before = snapshot();
        // The same value: no setting of the draft is overwritten, but what the dialog showed went out with their save.
        const refused = await save(tokenA, { updateDirection: 'bidirectional', revision: shown.settings.revision, fingerprint: shown.fingerprint });
        expect(refused.status).toBe(409);
        expect(refused.body.error.code).toBe('release_changed');
        expect(snapshot()).toEqual(before);
        const history = (await api<SyncView>('GET', '/api/panel/sync', tokenA)).body.history;
        expect(history[0]).toMatchObject({ setting: 'updateDirection', newValue: 'bidirectional', userName: secondAdminName });

        const now = (await toUpdate()).body;
        expect([now.created, now.updated]).toEqual([{ count: 0, samples: [] }, { count: 0, samples: [] }]);
        expect(now.settings.updateDirection).toBe('bidirectional');
      } finally {
        setSettings(A.id, { updateDirection: 'inbound' });
      }
    });

    it('refuses a fingerprint that is not one a preview gives with 400, saving nothing', async () => {
      const shown = (await toUpdate()).body;
      const before = snapshot();
      for (const fingerprint of ['', 'abc', 'G'.repeat(64), shown.fingerprint.toUpperCase(), `${shown.fingerprint}0`, 42, null, [shown.fingerprint]]) {
        const res = await save(tokenA, { updateDirection: 'bidirectional', revision: shown.settings.revision, fingerprint });
        expect(res.status, JSON.stringify(fingerprint)).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('fingerprint') });
      }
      expect(snapshot()).toEqual(before);
    });
  });

  it('counts apart the held contacts HighLevel will refuse as duplicates, naming the other contact; a save confirming it is refused once that changes', async () => {
    const now = Date.now();
    // In both systems: Hana. Then, new in Tandem with Hana's email: HighLevel holds it on Hana's contact.
    const hana = createContact(t.db, { locationId: A.id, id: 'c-holder', fields: fields({ firstName: 'Hana', lastName: 'Holder', email: 'hana@alpha.example' }), now, origin: 'remote' });
    upsertLink(t.db, { locationId: A.id, contactId: hana.id, highlevelId: 'hl-c-holder', base: hana.fields, now });
    createContact(t.db, { locationId: A.id, id: 'c-refused', fields: fields({ firstName: 'Rita', lastName: 'Refused', email: 'HANA@alpha.example' }), now: now + 1, origin: 'local' });
    try {
      const shown = (await preview(tokenA, 'bidirectional', 'inbound')).body;
      expect(shown.created).toEqual({ count: 1, samples: [{ contactId: 'c-held-new', label: 'Nora New', changes: [] }] });
      expect(shown.refused).toEqual({ count: 1, othersSent: 0, samples: [{ contactId: 'c-refused', label: 'Rita Refused', change: 'create', field: 'email', holder: 'Hana Holder', othersSent: false }] });

      // Hana archived meanwhile: Rita would take her HighLevel contact over instead of being refused.
      archiveContact(t.db, { locationId: A.id, id: 'c-holder', now: Date.now(), origin: 'local' });
      const refused = await api('PUT', '/api/panel/sync/settings', tokenA, { creationDirection: 'bidirectional', revision: shown.settings.revision, fingerprint: shown.fingerprint });
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('release_changed');
      expect(getSyncSettings(t.db, A.id).creationDirection).toBe('inbound');
      const now2 = (await preview(tokenA, 'bidirectional', 'inbound')).body;
      expect(now2.created.count).toBe(2);
      expect(now2.refused).toEqual({ count: 0, othersSent: 0, samples: [] });
    } finally {
      archiveContact(t.db, { locationId: A.id, id: 'c-refused', now: Date.now(), origin: 'local' });
    }
  });

  it('counts as created a contact refused before whose email a held edit moves away; a save confirming it is refused once that refusal changes', async () => {
    // Sara in both systems, her email changed in Tandem (held); Bea refused before with Sara's old email.
    heldEdit(A.id, 'c-freer', { firstName: 'Sara', lastName: 'Smith', email: 'sara@alpha.example' }, { email: 'sara.smith@alpha.example' });
    createContact(t.db, { locationId: A.id, id: 'c-freed', fields: fields({ firstName: 'Bea', lastName: 'Four', email: 'sara@alpha.example' }), now: Date.now(), origin: 'local' });
    failOutbox(t.db, getOutbox(t.db, A.id, 'c-freed')!, { error: 'this contact’s email is already on a HighLevel contact linked to Sara Smith in Tandem', nextAttemptAt: Date.now(), permanent: true, refusedBy: 'hl-c-freer' });
    const both = { creationDirection: 'bidirectional', updateDirection: 'bidirectional' } as const;
    try {
      const shown = (await preview(tokenA, both.creationDirection, both.updateDirection)).body;
      // Sara's edit goes out and lets go of the email: Bea is sent again, and created.
      expect(shown.created.samples).toContainEqual({ contactId: 'c-freed', label: 'Bea Four', changes: [] });
      expect(shown.updated.samples.map((s) => s.contactId)).toContain('c-freer');
      expect(shown.refused.samples.map((s) => s.contactId)).not.toContain('c-freed');
      // Only Contact creation: Sara's edit stays held, and so does Bea's refusal.
      expect((await preview(tokenA, 'bidirectional', 'inbound')).body.created.samples.map((s) => s.contactId)).not.toContain('c-freed');

      archiveContact(t.db, { locationId: A.id, id: 'c-freed', now: Date.now(), origin: 'local' });
      const refused = await api('PUT', '/api/panel/sync/settings', tokenA, { ...both, revision: shown.settings.revision, fingerprint: shown.fingerprint });
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('release_changed');
      expect(getSyncSettings(t.db, A.id)).toMatchObject({ creationDirection: 'inbound', updateDirection: 'inbound' });
      const now = (await preview(tokenA, both.creationDirection, both.updateDirection)).body;
      expect(now.created.count).toBe(shown.created.count - 1);
      expect(now.fingerprint).not.toBe(shown.fingerprint);
    } finally {
      setSettings(A.id, { creationDirection: 'inbound', updateDirection: 'inbound' });
      for (const id of ['c-freed', 'c-freer']) archiveContact(t.db, { locationId: A.id, id, now: Date.now(), origin: 'local' });
    }
  });
});

describe('when HighLevel no longer accepts Tandem', () => {
  it('says so in plain words, with HighLevel’s own answer kept for the log', async () => {
    // QA's case: HighLevel refuses the access token ("Invalid JWT"), then the refresh token.
    await control(t.highlevelUrl, 'POST', '/faults', { path: '/contacts/qa-contact', status: 401, body: { statusCode: 401, message: 'Invalid JWT' }, times: 1 });
    await control(t.highlevelUrl, 'POST', '/faults', { path: '/oauth/token', status: 400, body: { statusCode: 400, message: 'Invalid grant: refresh token is invalid' }, times: 1 });
    const err = await t.services.sync.locationApi(A.id).getContact('qa-contact').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReauthRequiredError);
    expect((err as Error).message).toContain('Invalid grant: refresh token is invalid');

    const token = await signIn(agencyA.adminId, A.id);
    const context = (await api('GET', '/api/panel/context', token)).body;
    expect(context.connection).toMatchObject({ status: 'needs_reauth', reason: REAUTH_REASON.revoked });
    const view = (await api<SyncView>('GET', '/api/panel/sync', token)).body;
    expect(view.status.installation).toEqual({ status: 'needs_reauth', reason: REAUTH_REASON.revoked });
    expect(JSON.stringify([context.connection, view.status])).not.toMatch(/invalid grant|invalid jwt|reinstall|\b40[01]\b/i);
  });
});
