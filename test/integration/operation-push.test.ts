// Push contacts (server/sync/operations/push.ts) end to end: the real Tandem and the emulator over
// HTTP, the operations runner driving preview → confirm → run. Drift on both sides, the preview's
// counts equal to the run's, the request budget of an already-synced 10,000-contact location, T14
// failures (permanent, transient, "422 yet created", timeout after commit), T16 crashes at every
// named point then resume, cancel, undo, and the continuous loop sharing the budget meanwhile.
import { afterEach, describe, expect, it } from 'vitest';
import { archiveContact, createContact as createTandemContact, getContact, restoreContact, updateContact } from '../../db/contacts.ts';
import { deleteLink, getLinkByContact, tombstone } from '../../db/links.ts';
import { getOperationById, listItems } from '../../db/operations.ts';
import { getOutbox } from '../../db/outbox.ts';
import { insertInboxEvent } from '../../db/webhook-inbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { syncStatus } from '../../db/sync-status.ts';
import { createUser } from '../../db/users.ts';
import { upsertHighLevelUsers } from '../../db/highlevel-users.ts';
import type { ContactDoc } from '../../emulator/state.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import type { OperationsOptions } from '../../server/sync/operations/runner.ts';
import { finishDoc } from '../../emulator/contact-model.ts';
import { control, until } from '../helpers/emulator.ts';
import {
  confirmAndSettle, deleteHighLevel, lastSeq, requestsSince, editHighLevel, editTandem, highLevelContacts, previewOf, seedSynced,
} from '../helpers/push-world.ts';
import { installedTandem } from '../helpers/tandem.ts';

type T = Awaited<ReturnType<typeof installedTandem>>;
let t: T | undefined;
afterEach(async () => {
  // Webhooks still on their way to Tandem hold its server's close open (seen when a test fails early).
  await t?.emulator.emu.webhooks.idle();
  await t?.close();
  t = undefined;
});

async function world(opts: { operations?: OperationsOptions; loop?: boolean; burst?: number } = {}): Promise<T> {
  const burst = opts.burst ?? 1000;
  t = await installedTandem({
    sync: { start: opts.loop === true, budget: { max: burst, intervalMs: 1000 } },
    operations: { start: false, sweepMs: 0, ...opts.operations },
  });
  await control(t.highlevelUrl, 'PATCH', '/config', { rateLimit: { burstMax: burst, burstWindowMs: 1000 } });
  return t;
}

const pick = (d: ContactDoc | null) =>
  d && {
    firstName: d.firstName, lastName: d.lastName, email: d.email, phone: d.phone, companyName: d.companyName, city: d.city,
    tags: [...((d.tags as string[]) ?? [])].sort(), assignedTo: d.assignedTo, customFields: d.customFields,
  };

/** No two HighLevel contacts share an email. */
function expectNoDuplicates(w: T): void {
  const emails = highLevelContacts(w).map((d) => String(d.email ?? d.id).toLowerCase());
  expect(new Set(emails).size).toBe(emails.length);
}

describe('Push contacts', () => {
  it('pushes drift on both sides: preview counts equal the run, only differences written; undo restores HighLevel exactly', async () => {
    const w = await world();
    const loc = w.location.id;
    const synced = seedSynced(w, 1200);
    const olga = createUser(w.db, { locationId: loc, name: 'Olga Owner', email: 'olga@cedar.example', now: w.clock.now() });
    const hlOlga = await control<{ id: string }>(w.highlevelUrl, 'POST', '/users', {
      companyId: w.agency.companyId, firstName: 'Olga', lastName: 'Owner', email: 'olga@cedar.example', type: 'account', role: 'user', locationIds: [loc],
    });
    const nobody = createUser(w.db, { locationId: loc, name: 'Nobody Paired', email: 'nobody@cedar.example', now: w.clock.now() });
    upsertHighLevelUsers(w.db, loc, [{ id: hlOlga.id, email: 'olga@cedar.example', name: 'Olga Owner', active: true, deleted: false }], w.clock.now());

    const renamedInTandem = synced.slice(0, 40);
    for (const s of renamedInTandem) editTandem(w, s.contact.id, { firstName: `Tandem ${s.contact.fields.firstName}` });
    const renamedInHighLevel = synced.slice(40, 70);
    for (const s of renamedInHighLevel) editHighLevel(w, s.doc.id, { lastName: 'Changed-in-HighLevel' });
    const taggedInTandem = synced.slice(70, 100);
    for (const s of taggedInTandem) editTandem(w, s.contact.id, {}, { add: ['push-tag'], remove: [] });
    const taggedInHighLevel = synced.slice(100, 120);
    for (const s of taggedInHighLevel) editHighLevel(w, s.doc.id, { tags: [...(s.doc.tags as string[]), 'hl-only'] });
    const emptyInTandem = synced.slice(120, 140);
    for (const s of emptyInTandem) {
      editHighLevel(w, s.doc.id, { companyName: 'HighLevel Co' });
      editTandem(w, s.contact.id, { companyName: null });
    }
    const owned = synced.slice(140, 150);
    for (const s of owned) editTandem(w, s.contact.id, { ownerUserId: olga.id });
    const ownedUnpaired = synced.slice(150, 155);
    for (const s of ownedUnpaired) editTandem(w, s.contact.id, { ownerUserId: nobody.id });
    const deletedInHighLevel = synced.slice(155, 170);
    for (const s of deletedInHighLevel) deleteHighLevel(w, s.doc.id);
    const archived = synced.slice(170, 175);
    for (const s of archived) {
      editTandem(w, s.contact.id, { firstName: 'Archived but renamed' });
      archiveContact(w.db, { locationId: loc, id: s.contact.id, now: w.clock.now(), origin: 'remote' });
    }
    const fresh = Array.from({ length: 50 }, (_, i) =>
      createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: `New${i}`, email: `new${i}@tandem.example`, tags: ['fresh'] }, now: w.clock.now(), origin: 'remote' }),
    );
    // Unlinked on both sides with the same email: matched in memory, linked, only differences sent.
    const twins = synced.slice(175, 180);
    for (const s of twins) deleteLink(w.db, loc, s.contact.id);
    for (const s of twins.slice(0, 2)) editTandem(w, s.contact.id, { firstName: 'Twin' });
    const before = new Map(highLevelContacts(w).map((d) => [d.id, structuredClone(d)]));

    const p = await previewOf(w, 'push');
    const expected = {
      created: 50,
      updated: renamedInTandem.length + renamedInHighLevel.length + taggedInTandem.length + owned.length + 2,
      skipped: deletedInHighLevel.length,
      failed: 0,
      removed: 0,
    };
    expect(p.preview.counts.highlevel).toMatchObject(expected);
    expect(p.preview.counts.highlevel.unchanged).toBe(1200 - 15 - 5 - expected.updated);
    expect(p.preview.counts.tandem).toEqual({ created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0, removed: 0 });
    expect(p.requests).toBe(3); // 1,185 HighLevel contacts: pages of 500, the last one short
    expect(p.preview.requests).toBe(3 + 50 + 40 + 30 + 30 + 10 + 2);
    expect(p.preview.samples.length).toBe(20);
    expect(p.preview.notes.join(' ')).toMatch(/15 linked contacts were deleted in HighLevel/);
    expect(p.preview.notes.join(' ')).toMatch(/1 Tandem owner has no paired HighLevel user/);

    const r = await confirmAndSettle(w, p.row.id);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts).toEqual(p.preview.counts);
    expect(r.requests).toBe(p.preview.requests);
    console.log(`push of 1,200 (+50 new) with drift: preview ${p.requests} requests, run ${r.requests} requests in ${Math.round(r.ms)} ms`);

    const now = (id: string) => w.emulator.emu.contact(id);
    for (const s of renamedInTandem) expect(now(s.doc.id)!.firstName).toBe(`Tandem ${s.contact.fields.firstName}`);
    for (const s of renamedInHighLevel) expect(now(s.doc.id)!.lastName).toBe(s.contact.fields.lastName);
    for (const s of taggedInTandem) expect(now(s.doc.id)!.tags).toContain('push-tag');
    for (const s of taggedInHighLevel) expect(now(s.doc.id)!.tags).toContain('hl-only');
    for (const s of emptyInTandem) expect(now(s.doc.id)!.companyName).toBe('HighLevel Co');
    for (const s of owned) expect(now(s.doc.id)!.assignedTo).toBe(hlOlga.id);
    for (const s of ownedUnpaired) expect(now(s.doc.id)!.assignedTo).toBeUndefined();
    for (const s of archived) expect(now(s.doc.id)!.firstName).toBe(s.doc.firstName);
    for (const c of fresh) {
      const link = getLinkByContact(w.db, loc, c.id)!;
      expect(now(link.highlevelId)).toMatchObject({ firstName: c.fields.firstName, email: c.fields.email, tags: ['fresh'] });
    }
    expectNoDuplicates(w);
    for (const s of twins) expect(getLinkByContact(w.db, loc, s.contact.id)!.highlevelId).toBe(s.doc.id);
    expect(now(twins[0]!.doc.id)!.firstName).toBe('Twin');
    // Ledger: the written fields applied to the old base; Tandem-only pending changes stay pending.
    expect(getLinkByContact(w.db, loc, renamedInTandem[0]!.contact.id)!.base.firstName).toBe(`Tandem ${renamedInTandem[0]!.contact.fields.firstName}`);
    expect(getLinkByContact(w.db, loc, emptyInTandem[0]!.contact.id)!.base.companyName).toBe(emptyInTandem[0]!.contact.fields.companyName);
    const unpairedItem = listItems(w.db, r.row.id, { limit: 2000 }).find((i) => i.key === ownedUnpaired[0]!.contact.id)!;
    expect(unpairedItem).toMatchObject({ action: 'unchanged', reason: expect.stringMatching(/no paired HighLevel user/) });

    // Someone edits one pushed contact in HighLevel afterwards: the undo leaves it alone.
    const touched = renamedInTandem[1]!;
    editHighLevel(w, touched.doc.id, { firstName: 'Edited after the push' });
    const u = await previewOf(w, 'undo', r.row.id);
    expect(u.preview.counts.highlevel).toMatchObject({ updated: expected.updated - 1, removed: 50, skipped: 1 });
    const ur = await confirmAndSettle(w, u.row.id);
    expect(ur.row.status).toBe('completed');
    expect(ur.progress.counts).toEqual(u.preview.counts);
    expect(ur.requests).toBe(u.preview.requests);
    for (const s of [...renamedInTandem, ...renamedInHighLevel, ...taggedInTandem, ...owned, ...twins]) {
      if (s === touched) continue;
      expect(pick(now(s.doc.id))).toEqual(pick(before.get(s.doc.id)!));
    }
    expect(now(touched.doc.id)!.firstName).toBe('Edited after the push');
    for (const c of fresh) expect(getLinkByContact(w.db, loc, c.id)).toBeUndefined();
    expect(highLevelContacts(w)).toHaveLength(1200 - 15);
    expect(getLinkByContact(w.db, loc, renamedInTandem[0]!.contact.id)!.base.firstName).toBe(renamedInTandem[0]!.contact.fields.firstName);
    expect(w.services.operations.get(loc, r.row.id)!.undoneBy).toBe(u.row.id);
    expect(getContact(w.db, loc, fresh[0]!.id)!.archivedAt).toBeNull();
    // The twins the push wrote to were linked by it: unlinked again. The unchanged ones stay linked.
    for (const s of twins.slice(0, 2)) expect(getLinkByContact(w.db, loc, s.contact.id)).toBeUndefined();
    for (const s of twins.slice(2)) expect(getLinkByContact(w.db, loc, s.contact.id)!.highlevelId).toBe(s.doc.id);
  }, 60_000);

  it('after an undo, a Tandem edit the push had sent waits to go out again, and the loop brings both sides together', async () => {
    const w = await world();
    const loc = w.location.id;
    updateSyncSettings(w.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: { id: w.agency.adminId, name: 'Ada Admin' }, now: w.clock.now() });
    const [s] = seedSynced(w, 1);
    const company = (id: string) => w.emulator.emu.contact(id)!.companyName;
    const was = company(s!.doc.id);
    updateContact(w.db, { locationId: loc, id: s!.contact.id, patch: { companyName: 'Bakery From Tandem' }, now: w.clock.now(), origin: 'local' });
    const p = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, p.row.id)).row.status).toBe('completed');
    expect(company(s!.doc.id)).toBe('Bakery From Tandem');
    // The loop finds the edit already in HighLevel: its outbox row is done.
    expect((await w.services.sync.runOnce(loc)).error).toBeUndefined();
    expect(getOutbox(w.db, loc, s!.contact.id)).toBeUndefined();

    const u = await previewOf(w, 'undo', p.row.id);
    expect(u.preview.notes.join(' ')).toMatch(/1 contact holds Tandem edits the push sent/);
    expect((await confirmAndSettle(w, u.row.id)).row.status).toBe('completed');
    expect(company(s!.doc.id)).toBe(was);
    // HighLevel has its old value back and Tandem keeps its edit: that difference is pending again.
    expect(getOutbox(w.db, loc, s!.contact.id)).toMatchObject({ kind: 'upsert', status: 'pending' });
    await w.emulator.emu.webhooks.idle();
    expect((await w.services.sync.runOnce(loc)).error).toBeUndefined();
    expect(company(s!.doc.id)).toBe('Bakery From Tandem');
    expect(getContact(w.db, loc, s!.contact.id)!.fields.companyName).toBe('Bakery From Tandem');
    expect(getOutbox(w.db, loc, s!.contact.id)).toBeUndefined();
  });

  it('after an undo, a Tandem edit the push had sent over HighLevel’s own change of the field gives way to it, and the preview says so (QA)', async () => {
    const w = await world();
    const loc = w.location.id;
    const [both, tandemOnly] = seedSynced(w, 2);
    editHighLevel(w, both!.doc.id, { companyName: 'HighLevel Co' });
    updateContact(w.db, { locationId: loc, id: both!.contact.id, patch: { companyName: 'Tandem Co' }, now: w.clock.now(), origin: 'local' });
    updateContact(w.db, { locationId: loc, id: tandemOnly!.contact.id, patch: { companyName: 'Tandem Corp' }, now: w.clock.now(), origin: 'local' });
    const p = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, p.row.id)).row.status).toBe('completed');
    expect(w.emulator.emu.contact(both!.doc.id)!.companyName).toBe('Tandem Co');

    const u = await previewOf(w, 'undo', p.row.id);
    expect(u.preview.notes).toContain(
      '1 contact holds Tandem edits the push sent: after the undo they wait to go out again, and the continuous sync sends them once Contact update is Bi-directional.',
    );
    expect(u.preview.notes).toContain(
      'For 1 contact, HighLevel had changed the same fields before the push: the undo puts HighLevel’s values back, and they then come into Tandem over Tandem’s edits of those fields, as the more recent change.',
    );
    expect((await confirmAndSettle(w, u.row.id)).row.status).toBe('completed');
    await w.emulator.emu.webhooks.idle();
    await w.services.inbox.runOnce();
    expect((await w.services.sync.runOnce(loc)).error).toBeUndefined();
    // As said: HighLevel's change came back into Tandem; Tandem's other edit waits (updates Inbound).
    await until(() => getContact(w.db, loc, both!.contact.id)!.fields.companyName === 'HighLevel Co', 'HighLevel’s value to come back into Tandem');
    expect(getContact(w.db, loc, tandemOnly!.contact.id)!.fields.companyName).toBe('Tandem Corp');
  });

  it('with updates Inbound, an edit held in Tandem that a push or a pull settles no longer counts as held', async () => {
    const w = await world();
    const loc = w.location.id;
    const [sent, replaced] = seedSynced(w, 2);
    updateContact(w.db, { locationId: loc, id: sent!.contact.id, patch: { companyName: 'Pushed From Tandem' }, now: w.clock.now(), origin: 'local' });
    expect(syncStatus(w.db, loc)).toMatchObject({ pendingOutboundEdits: 1 });
    const push = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, push.row.id)).row.status).toBe('completed');
    expect(w.emulator.emu.contact(sent!.doc.id)!.companyName).toBe('Pushed From Tandem');
    expect(getOutbox(w.db, loc, sent!.contact.id)).toBeUndefined();
    expect(syncStatus(w.db, loc)).toMatchObject({ pendingOutboundEdits: 0 });

    // A pull puts HighLevel's value back over a held Tandem edit: nothing of it waits either.
    updateContact(w.db, { locationId: loc, id: replaced!.contact.id, patch: { companyName: 'Held In Tandem' }, now: w.clock.now(), origin: 'local' });
    w.emulator.emu.writeContact(replaced!.doc.id, loc, { ...w.emulator.emu.contact(replaced!.doc.id)!, companyName: 'Kept In HighLevel' });
    expect(syncStatus(w.db, loc)).toMatchObject({ pendingOutboundEdits: 1 });
    const pull = await previewOf(w, 'pull');
    expect((await confirmAndSettle(w, pull.row.id)).row.status).toBe('completed');
    expect(getContact(w.db, loc, replaced!.contact.id)!.fields.companyName).toBe('Kept In HighLevel');
    expect(getOutbox(w.db, loc, replaced!.contact.id)).toBeUndefined();
    expect(syncStatus(w.db, loc)).toMatchObject({ pendingOutbound: 0, pendingOutboundEdits: 0 });
  });

  it('says before it runs that HighLevel changes still waiting to come into Tandem would be lost where Tandem holds another value (QA)', async () => {
    const w = await world();
    const loc = w.location.id;
    const [edited] = seedSynced(w, 2);
    updateSyncSettings(w.db, { locationId: loc, patch: { paused: true }, user: { id: 'u_admin', name: 'Ada Admin' }, now: w.clock.now() });
    const quiet = await previewOf(w, 'push');
    expect(quiet.preview.notes.join(' ')).not.toContain('not come into Tandem yet');
    w.services.operations.cancel(loc, quiet.row.id);
    // A HighLevel edit stored while sync is paused, not yet applied.
    const doc = editHighLevel(w, edited!.doc.id, { lastName: 'Changed-in-HighLevel' });
    const body = { type: 'ContactUpdate', locationId: loc, id: doc.id, lastName: doc.lastName, dateUpdated: doc.dateUpdated, webhookId: 'wh-waiting-1' };
    insertInboxEvent(w.db, { webhookId: 'wh-waiting-1', type: 'ContactUpdate', locationId: loc, companyId: w.agency.companyId, body: JSON.stringify(body), receivedAt: w.clock.now(), queued: true });
    const p = await previewOf(w, 'push');
    expect(p.preview.notes).toContain(
      '1 change from HighLevel has not come into Tandem yet (sync is paused): the push compares HighLevel with Tandem as it is now, so where Tandem holds another value, HighLevel’s change is lost on both sides. To keep them, resume sync, wait until nothing waits to come in, then preview again.',
    );
  });

  it('moves the status strip’s last change sent to and received from HighLevel when a push or a pull writes (QA: it said "Nothing sent yet")', async () => {
    const w = await world();
    const loc = w.location.id;
    const [pushed, pulled] = seedSynced(w, 2);
    expect(syncStatus(w.db, loc).lastOutboundAt).toBeNull();
    editTandem(w, pushed!.contact.id, { companyName: 'Pushed Co' });
    const push = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, push.row.id)).row.status).toBe('completed');
    expect(syncStatus(w.db, loc).lastOutboundAt).toEqual(expect.any(Number));

    const receivedBefore = syncStatus(w.db, loc).lastInboundAt;
    editHighLevel(w, pulled!.doc.id, { companyName: 'Pulled Co' });
    const pull = await previewOf(w, 'pull');
    expect((await confirmAndSettle(w, pull.row.id)).row.status).toBe('completed');
    const received = syncStatus(w.db, loc).lastInboundAt;
    expect(received).toEqual(expect.any(Number));
    expect(received).not.toBe(receivedBefore);
  });

  it('a contact restored in Tandem after HighLevel deleted it is pushed as a new contact, not skipped', async () => {
    const w = await world();
    const loc = w.location.id;
    const [gone, kept] = seedSynced(w, 2);
    deleteHighLevel(w, gone!.doc.id);
    archiveContact(w.db, { locationId: loc, id: gone!.contact.id, now: w.clock.now(), origin: 'remote' });
    tombstone(w.db, loc, gone!.doc.id, w.clock.now());
    restoreContact(w.db, { locationId: loc, id: gone!.contact.id, now: w.clock.now(), origin: 'remote' });

    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ created: 1, skipped: 0, unchanged: 1 });
    expect((await confirmAndSettle(w, p.row.id)).row.status).toBe('completed');
    const link = getLinkByContact(w.db, loc, gone!.contact.id)!;
    expect(link).toMatchObject({ remoteDeletedAt: null });
    expect(link.highlevelId).not.toBe(gone!.doc.id);
    expect(w.emulator.emu.contact(link.highlevelId)).toMatchObject({ email: gone!.doc.email });
    expect(getLinkByContact(w.db, loc, kept!.contact.id)!.highlevelId).toBe(kept!.doc.id);
    expectNoDuplicates(w);
  });

  it('an already-synced location of 10,000 contacts with 1% drift costs at most 150 HighLevel requests', async () => {
    const w = await world();
    const synced = seedSynced(w, 10_000);
    for (const s of synced.slice(0, 50)) editTandem(w, s.contact.id, { firstName: `Renamed ${s.contact.fields.firstName}` });
    for (const s of synced.slice(50, 75)) editTandem(w, s.contact.id, {}, { add: ['drift'], remove: [] });
    for (const s of synced.slice(75, 100)) editHighLevel(w, s.doc.id, { lastName: 'Drifted' });
    const p = await previewOf(w, 'push');
    const r = await confirmAndSettle(w, p.row.id);
    console.log(`push of 10,000 synced with 1% drift: preview ${p.requests} requests, run ${r.requests} requests (${Math.round(r.ms)} ms)`);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts.highlevel).toEqual({ created: 0, updated: 100, unchanged: 9_900, skipped: 0, failed: 0, removed: 0 });
    expect(r.progress.counts).toEqual(p.preview.counts);
    expect(r.requests).toBe(p.preview.requests);
    expect(r.requests).toBe(21 + 100);
    expect(r.requests).toBeLessThanOrEqual(150);
    expect(w.emulator.emu.contact(synced[80]!.doc.id)!.lastName).toBe(synced[80]!.contact.fields.lastName);
  }, 120_000);

  it('T14: a permanent error fails its record only, transient errors are retried, "422 yet created" and a timeout after commit leave no duplicate', async () => {
    let atPage: (() => void) | undefined;
    const w = await world({ operations: { crashAt: (_op, point) => (point === 'after-page' && atPage?.(), false) } });
    const loc = w.location.id;
    const synced = seedSynced(w, 30);
    const [refused, flaky, ...renamed] = synced.slice(0, 4);
    for (const s of [refused!, flaky!, ...renamed]) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` });
    const mk = (name: string) => createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: name, email: `${name.toLowerCase()}@tandem.example` }, now: w.clock.now(), origin: 'remote' });
    const yetCreated = mk('Yet');
    const lostAnswer = mk('Lost');
    const plain = mk('Plain');
    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ created: 3, updated: 4, unchanged: 26 });

    await control(w.highlevelUrl, 'POST', '/faults', {
      method: 'PUT', path: `/contacts/${refused!.doc.id}`, status: 422, times: 5,
      body: { statusCode: 422, message: ['phone must be a valid phone number'], error: 'Unprocessable Entity' },
    });
    await control(w.highlevelUrl, 'POST', '/faults', { method: 'PUT', path: `/contacts/${flaky!.doc.id}`, status: 502, times: 2 });
    // HighLevel creates "Yet" yet answers 422; it was not there when the pages were read.
    atPage = () => {
      atPage = undefined;
      const at = new Date(w.clock.now()).toISOString();
      w.emulator.emu.writeContact('yetcreatedcontact001', loc, finishDoc({
        id: 'yetcreatedcontact001', locationId: loc, firstName: 'Yet', email: 'yet@tandem.example', type: 'lead', tags: [], customFields: [],
        createdBy: { source: 'INTEGRATION', channel: 'OAUTH', sourceId: w.app.clientId, timestamp: at }, dateAdded: at, dateUpdated: at,
      }));
    };
    await control(w.highlevelUrl, 'POST', '/faults', {
      method: 'POST', path: '^/contacts/?$', status: 422, times: 1,
      body: { statusCode: 422, message: ['phone must be a valid phone number'], error: 'Unprocessable Entity' },
    });
    await control(w.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '^/contacts/?$', dropAfterHandling: true, times: 1 });

    const seq = lastSeq(w);
    const r = await confirmAndSettle(w, p.row.id);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts.highlevel).toEqual({ created: 3, updated: 3, unchanged: 26, skipped: 0, failed: 1, removed: 0 });
    const items = listItems(w.db, r.row.id, { limit: 100 });
    expect(items.find((i) => i.key === refused!.contact.id)).toMatchObject({
      action: 'failed',
      reason: 'HighLevel refused this contact’s values. Correct the contact in Tandem, then run Push contacts again. HighLevel said: “phone must be a valid phone number.”',
    });
    expect(w.emulator.emu.contact(flaky!.doc.id)!.firstName).toBe(`Pushed ${flaky!.contact.fields.firstName}`);
    expect(w.emulator.emu.contact(refused!.doc.id)!.firstName).toBe(refused!.doc.firstName);
    expect(getLinkByContact(w.db, loc, yetCreated.id)!.highlevelId).toBe('yetcreatedcontact001');
    for (const c of [lostAnswer, plain]) expect(w.emulator.emu.contact(getLinkByContact(w.db, loc, c.id)!.highlevelId)!.email).toBe(c.fields.email);
    expect(highLevelContacts(w)).toHaveLength(33);
    expectNoDuplicates(w);
    // Every request since (an injected fault answers before the token is read, so its entry has no app id).
    const log = w.emulator.emu.requestLog.filter((e) => e.seq > seq).map((e) => `${e.method} ${e.path.split('?')[0]} ${e.status}`);
    // Each ambiguous create was looked up before anything else was sent for it.
    expect(log.filter((l) => l.startsWith('POST /contacts/ '))).toEqual(['POST /contacts/ 422', 'POST /contacts/ 0', 'POST /contacts/ 201']);
    expect(log.filter((l) => l.startsWith('GET /contacts/search/duplicate'))).toHaveLength(2);
    expect(log.filter((l) => l.startsWith(`PUT /contacts/${flaky!.doc.id}`))).toEqual([`PUT /contacts/${flaky!.doc.id} 502`, `PUT /contacts/${flaky!.doc.id} 502`, `PUT /contacts/${flaky!.doc.id} 200`]);
  }, 60_000);

  it('a contact with no email or phone whose create answer was lost is found by its name, not created twice', async () => {
    const w = await world();
    const loc = w.location.id;
    const c = createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Only', lastName: 'Name' }, now: w.clock.now(), origin: 'remote' });
    const p = await previewOf(w, 'push');
    await control(w.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '^/contacts/?$', dropAfterHandling: true, times: 1 });
    const r = await confirmAndSettle(w, p.row.id);
    expect(r.row.status).toBe('completed');
    const copies = highLevelContacts(w).filter((d) => d.firstName === 'Only');
    expect(copies).toHaveLength(1);
    expect(getLinkByContact(w.db, loc, c.id)!.highlevelId).toBe(copies[0]!.id);
  });

  it('the preview says why it skips a contact: one sharing another\'s email is not called deleted in HighLevel', async () => {
    const w = await world();
    const loc = w.location.id;
    const [synced] = seedSynced(w, 3);
    const email = synced!.contact.fields.email!;
    createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Second', email }, now: w.clock.now(), origin: 'remote' });
    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel.skipped).toBe(1);
    expect(p.preview.notes.join(' ')).toContain('1 contact has the email or phone of another Tandem contact that HighLevel already holds');
    expect(p.preview.notes.join(' ')).not.toContain('deleted in HighLevel');
  });

  it('counts as skipped, as the run does, a contact whose email or phone is on the HighLevel contact of a Tandem contact archived since, or of another contact of the push', async () => {
    // QA: the preview said "created" and the run "skipped": HighLevel refuses the create as a
    // duplicate of a contact still linked to the archived Tandem contact.
    const w = await world();
    const loc = w.location.id;
    const [byEmail, byPhone, kept] = seedSynced(w, 3);
    for (const s of [byEmail!, byPhone!]) archiveContact(w.db, { locationId: loc, id: s.contact.id, now: w.clock.now(), origin: 'remote' });
    const mk = (f: Partial<ContactFields>) => createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), ...f }, now: w.clock.now(), origin: 'remote' });
    const sameEmail = mk({ firstName: 'Same Email', email: byEmail!.contact.fields.email!.toUpperCase() });
    const samePhone = mk({ firstName: 'Same Phone', email: 'same.phone@tandem.example', phone: byPhone!.contact.fields.phone });
    // Two new contacts with one email: the first is created, the second would be its duplicate.
    mk({ firstName: 'Twin', email: 'twin@tandem.example' });
    mk({ firstName: 'Twin Again', email: 'twin@tandem.example' });

    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ created: 1, skipped: 3, unchanged: 1, updated: 0 });
    const r = await confirmAndSettle(w, p.row.id);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts).toEqual(p.preview.counts);
    expect(r.requests).toBe(p.preview.requests);
    const items = listItems(w.db, r.row.id, { limit: 10 });
    const archivedName = `${byEmail!.contact.fields.firstName} ${byEmail!.contact.fields.lastName}`;
    // Archived: "change one of the two" is no advice for a contact no one sees any more.
    expect(items.find((i) => i.key === sameEmail.id)).toMatchObject({
      action: 'skipped',
      reason: `same email as Tandem contact ${archivedName}, archived in Tandem while its HighLevel contact remains: not created twice (delete that contact in HighLevel, and this one is created at the next push)`,
    });
    expect(items.find((i) => i.reason?.includes('Twin'))?.reason).toMatch(/not created twice \(change the email of one of the two on the Contacts tab, or delete the other in HighLevel\)$/);
    expect(items.find((i) => i.key === samePhone.id)).toMatchObject({ action: 'skipped', reason: expect.stringMatching(/^same phone as Tandem contact /) });
    expect(getLinkByContact(w.db, loc, sameEmail.id)).toBeUndefined();
    expect(getLinkByContact(w.db, loc, kept!.contact.id)!.highlevelId).toBe(kept!.doc.id);
    expectNoDuplicates(w);
  });

  it('T16: killed at each named point, resumed by the sweep after the lease expires: no duplicate in HighLevel, counts exact', async () => {
    const plan = [
      { point: 'after-page', nth: 1 },
      { point: 'after-highlevel-write', nth: 2 },
      { point: 'before-highlevel-write', nth: 6 },
      { point: 'after-record', nth: 700 },
      { point: 'after-highlevel-write', nth: 25 },
      { point: 'before-highlevel-write', nth: 20 },
    ];
    const seen = new Map<string, number>();
    let crashes = 0;
    const w = await world({
      operations: {
        leaseMs: 300,
        crashAt(_op, point) {
          seen.set(point, (seen.get(point) ?? 0) + 1);
          const hit = plan.find((c) => c.point === point && c.nth === seen.get(point));
          if (hit) crashes++;
          return hit !== undefined;
        },
      },
    });
    const loc = w.location.id;
    const synced = seedSynced(w, 1100);
    const renamed = [5, 300, 520, 800, 1010, 1090].map((i) => synced[i]!);
    for (const s of renamed) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` }, { add: ['t16'], remove: [] });
    const fresh = Array.from({ length: 20 }, (_, i) =>
      createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: `Fresh${i}`, email: `fresh${i}@tandem.example` }, now: w.clock.now(), origin: 'remote' }),
    );
    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ created: 20, updated: 6, unchanged: 1094 });

    const ops = w.services.operations;
    ops.confirm(loc, p.row.id);
    let resumed = 0;
    for (;;) {
      const row = await until(() => {
        const r = ops.get(loc, p.row.id)!;
        return r.status !== 'running' || crashes > resumed ? r : undefined;
      }, 'a crash or the end of the run', 30_000);
      if (row.status !== 'running') break;
      resumed = crashes;
      // The dead run's lease must expire before a sweep takes it over.
      await until(async () => {
        const r = ops.get(loc, p.row.id)!;
        if (r.leaseUntil !== null && r.leaseUntil >= Date.now()) return false;
        await ops.sweep();
        return true;
      }, 'the lease to expire', 10_000);
    }
    const done = ops.get(loc, p.row.id)!;
    expect(crashes).toBe(plan.length);
    expect(done.status).toBe('completed');
    expect(JSON.parse(done.progress!).counts).toEqual(p.preview.counts);
    expect(highLevelContacts(w)).toHaveLength(1120);
    expectNoDuplicates(w);
    for (const s of renamed) {
      expect(w.emulator.emu.contact(s.doc.id)).toMatchObject({ firstName: `Pushed ${s.contact.fields.firstName}`, tags: expect.arrayContaining(['t16']) });
      expect(getLinkByContact(w.db, loc, s.contact.id)!.base.firstName).toBe(`Pushed ${s.contact.fields.firstName}`);
    }
    for (const c of fresh) expect(w.emulator.emu.contact(getLinkByContact(w.db, loc, c.id)!.highlevelId)!.email).toBe(c.fields.email);
    const items = listItems(w.db, p.row.id, { limit: 2000 });
    expect(items.filter((i) => i.state === 'pending')).toEqual([]);
    // The undo still knows every created contact (a `before` kept across the resumes).
    expect(items.filter((i) => i.action === 'created' && JSON.parse(i.before!).created === true)).toHaveLength(20);
  }, 60_000);

  it('cancel mid-run: status cancelled, every record either fully pushed (HighLevel and ledger) or untouched; the undo takes back exactly the pushed ones', async () => {
    let cancelAt: (() => void) | undefined;
    let writes = 0;
    let phaseAtFirstWrite: string | undefined;
    // The admin cancels just as the 25th write is about to go: that record stays untouched.
    const w = await world({
      operations: {
        crashAt(op, point) {
          if (point !== 'before-highlevel-write') return false;
          if (++writes === 1) phaseAtFirstWrite = JSON.parse(getOperationById(w.db, op.id)!.progress!).phase;
          if (writes === 25) cancelAt?.();
          return false;
        },
      },
    });
    const loc = w.location.id;
    const synced = seedSynced(w, 200);
    const renamed = synced.slice(0, 60);
    for (const s of renamed) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` }, { add: ['cancel'], remove: [] });
    const p = await previewOf(w, 'push');
    cancelAt = () => w.services.operations.cancel(loc, p.row.id);
    const r = await confirmAndSettle(w, p.row.id);
    expect(r.row.status).toBe('cancelled');
    // QA: its progress said "reading HighLevel" while it wrote each page's contacts.
    expect(phaseAtFirstWrite).toBe('pushing');
    const items = new Map(listItems(w.db, p.row.id, { limit: 1000 }).map((i) => [i.key, i]));
    let pushed = 0;
    for (const s of renamed) {
      const hl = w.emulator.emu.contact(s.doc.id)!;
      const base = getLinkByContact(w.db, loc, s.contact.id)!.base;
      if (items.get(s.contact.id)?.state === 'done') {
        pushed++;
        expect(hl).toMatchObject({ firstName: `Pushed ${s.contact.fields.firstName}`, tags: expect.arrayContaining(['cancel']) });
        expect(base.firstName).toBe(`Pushed ${s.contact.fields.firstName}`);
      } else {
        expect(pick(hl)).toEqual(pick(s.doc));
        expect(base.firstName).toBe(s.contact.fields.firstName);
      }
    }
    expect(pushed).toBe(24);
    expect(r.progress.counts.highlevel.updated).toBe(pushed);

    const u = await previewOf(w, 'undo', p.row.id);
    expect(u.preview.counts.highlevel).toMatchObject({ updated: 24, skipped: 0, removed: 0 });
    const ur = await confirmAndSettle(w, u.row.id);
    expect(ur.progress.counts).toEqual(u.preview.counts);
    for (const s of renamed) {
      expect(pick(w.emulator.emu.contact(s.doc.id))).toEqual(pick(s.doc));
      expect(getLinkByContact(w.db, loc, s.contact.id)!.base.firstName).toBe(s.contact.fields.firstName);
    }
  }, 60_000);

  it('shares the budget with the continuous loop: the loop still gets its requests through while a push runs', async () => {
    const w = await world({ loop: true, burst: 20 });
    const loc = w.location.id;
    const synced = seedSynced(w, 150);
    for (const s of synced.slice(0, 90)) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` });
    await until(() => requestsSince(w, 0).some((e) => e.path.startsWith('/contacts/search')), 'the loop to read HighLevel', 20_000);
    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel.updated).toBe(90);
    const ops = w.services.operations;
    ops.confirm(loc, p.row.id);
    await until(() => JSON.parse(ops.get(loc, p.row.id)!.progress ?? '{"requests":0}').requests >= 10, 'the push to be under way', 20_000);
    // A contact created in Tandem meanwhile: the loop's own push of it must not wait for the operation.
    const local = createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Loop', email: 'loop@tandem.example' }, now: w.clock.now(), origin: 'local' });
    w.services.sync.wake(loc);
    await until(() => getLinkByContact(w.db, loc, local.id), 'the loop to push its contact', 20_000);
    expect(ops.get(loc, p.row.id)!.status).toBe('running');
    const r = await w.services.operations.settled(p.row.id);
    expect(r.status).toBe('completed');
    expect(JSON.parse(r.progress!).counts.highlevel.updated).toBe(90);
    expect(requestsSince(w, 0).filter((e) => e.status === 429)).toHaveLength(0);
  }, 60_000);
});
