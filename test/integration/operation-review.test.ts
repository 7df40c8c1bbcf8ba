// One-time operations, the cases a review found open: Tandem contacts that HighLevel would hold as
// one (same email or phone) are decided alike by the preview and the run, also after a resume; a
// push undo and a pull undo killed at their named points and resumed by the sweep restore each
// record exactly once with exact counts (T16). Real Tandem, the emulator over HTTP.
import { afterEach, describe, expect, it } from 'vitest';
import { createContact as createTandemContact, getContact, type Contact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { listItems, type OperationRow } from '../../db/operations.ts';
import { seedContacts } from '../../emulator/contact-seed.ts';
import { contactLabel, emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import type { OperationsOptions } from '../../server/sync/operations/runner.ts';
import type { Progress } from '../../server/sync/operations/types.ts';
import { ManualClock, control, until } from '../helpers/emulator.ts';
import { confirmAndSettle, editHighLevel, editTandem, highLevelContacts, lastSeq, previewOf, requestsSince, seedSynced } from '../helpers/push-world.ts';
import { installedTandem, waitForInstallation } from '../helpers/tandem.ts';

type T = Awaited<ReturnType<typeof installedTandem>>;
let t: T | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function world(operations: OperationsOptions = {}): Promise<T> {
  t = await installedTandem({
    sync: { start: false, budget: { max: 1000, intervalMs: 1000 } },
    operations: { start: false, sweepMs: 0, ...operations },
  });
  await control(t.highlevelUrl, 'PATCH', '/config', { rateLimit: { burstMax: 1000, burstWindowMs: 1000 } });
  return t;
}

function newContact(w: T, fields: Partial<ContactFields>): Contact {
  return createTandemContact(w.db, { locationId: w.location.id, fields: { ...emptyContact(), ...fields }, now: w.clock.now(), origin: 'remote' });
}

/** Runs a confirmed operation to its end, resuming it by a sweep (after the lease) whenever it crashed. */
async function resumeUntilFinished(w: T, id: string): Promise<{ row: OperationRow; progress: Progress }> {
  const ops = w.services.operations;
  const row = await until(
    async () => {
      const r = ops.get(w.location.id, id)!;
      if (r.status !== 'running') return r;
      if (r.leaseUntil === null || r.leaseUntil < Date.now()) await ops.sweep();
      return undefined;
    },
    'the operation to finish',
    30_000,
  );
  return { row, progress: JSON.parse(row.progress!) as Progress };
}

/** Crashes (T16) once at each `point`'s nth passage of operation `kind`. */
function crashPlan(plan: Array<{ kind: OperationRow['kind']; point: string; nth: number }>) {
  const seen = new Map<string, number>();
  let crashes = 0;
  return {
    crashAt(op: OperationRow, point: string) {
      const key = `${op.kind}:${point}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      const hit = plan.some((c) => c.kind === op.kind && c.point === point && c.nth === seen.get(key));
      if (hit) crashes++;
      return hit;
    },
    crashes: () => crashes,
  };
}

describe('Push contacts: Tandem contacts HighLevel would hold as one', () => {
  it('a second unlinked contact with the same email or phone is skipped, naming the other, in the preview and the run alike', async () => {
    const w = await world();
    const synced = seedSynced(w, 30);
    newContact(w, { firstName: 'Ann', lastName: 'First', email: 'ann@tandem.example' });
    const second = newContact(w, { firstName: 'Ann', lastName: 'Second', email: 'ANN@tandem.example' });
    newContact(w, { firstName: 'Phil', lastName: 'One', phone: '+14155550111' });
    const phoneB = newContact(w, { firstName: 'Phil', lastName: 'Two', phone: '+14155550111' });
    // Unlinked, with the email of a contact already linked and in HighLevel.
    const linkedTwin = newContact(w, { firstName: 'Late', lastName: 'Twin', email: String(synced[3]!.doc.email) });

    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ created: 2, skipped: 3, failed: 0, unchanged: 30 });
    const r = await confirmAndSettle(w, p.row.id);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts).toEqual(p.preview.counts);
    expect(r.requests).toBe(p.preview.requests);

    const items = new Map(listItems(w.db, r.row.id, { limit: 100 }).map((i) => [i.key, i]));
    expect(items.get(second.id)).toMatchObject({ action: 'skipped', reason: expect.stringContaining('same email as Tandem contact Ann First, which HighLevel already holds') });
    expect(items.get(phoneB.id)).toMatchObject({ action: 'skipped', reason: expect.stringContaining('same phone as Tandem contact Phil One, which HighLevel already holds') });
    expect(items.get(linkedTwin.id)).toMatchObject({ action: 'skipped', reason: expect.stringContaining(`same email as Tandem contact ${contactLabel(synced[3]!.contact.fields, '')}, which`) });
    for (const c of [second, phoneB, linkedTwin]) expect(getLinkByContact(w.db, w.location.id, c.id)).toBeUndefined();
    expect(highLevelContacts(w)).toHaveLength(32);
  }, 30_000);

  it('after a resume (memory of the pages gone) the second is still skipped, not failed, with the counts of the preview', async () => {
    let crashed = false;
    const w = await world({
      leaseMs: 300,
      // Dies right after the first of the twins is created and committed.
      crashAt: (_op, point) => {
        if (crashed || point !== 'after-record' || !first || !getLinkByContact(w.db, w.location.id, first.id)) return false;
        return (crashed = true);
      },
    });
    const synced = seedSynced(w, 10);
    const first: Contact | undefined = newContact(w, { firstName: 'Bea', lastName: 'First', email: 'bea@tandem.example' });
    const second = newContact(w, { firstName: 'Bea', lastName: 'Second', email: 'bea@tandem.example' });
    // Resumed after the pages: only a lookup tells that HighLevel holds this email on a linked contact.
    const linkedTwin = newContact(w, { firstName: 'Late', lastName: 'Twin', email: String(synced[2]!.doc.email) });
    // ... and is met before the linked one (Tandem lists contacts by their last change).
    const at = w.clock.now();
    await until(() => w.clock.now() > at, 'the clock to move');
    editTandem(w, synced[2]!.contact.id, { city: 'Later' });
    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ created: 1, updated: 1, skipped: 2, unchanged: 9 });
    w.services.operations.confirm(w.location.id, p.row.id);
    const r = await resumeUntilFinished(w, p.row.id);
    expect(crashed).toBe(true);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts).toEqual(p.preview.counts);
    const items = new Map(listItems(w.db, p.row.id, { limit: 100 }).map((i) => [i.key, i]));
    expect(items.get(second.id)).toMatchObject({ action: 'skipped', reason: expect.stringContaining('same email as Tandem contact Bea First, which HighLevel already holds') });
    expect(items.get(linkedTwin.id)).toMatchObject({ action: 'skipped', reason: expect.stringContaining(`same email as Tandem contact ${contactLabel(synced[2]!.contact.fields, '')}, which`) });
    expect(highLevelContacts(w).filter((d) => d.email === 'bea@tandem.example')).toHaveLength(1);
  }, 30_000);
});

describe('push undo exactness', () => {
  it('puts back custom values (set or absent before), DND, website and date of birth exactly as HighLevel had them', async () => {
    const w = await world();
    const loc = w.location.id;
    const synced = seedSynced(w, 6);
    const [hadValue, hadNone, dnd, dob] = synced;
    editHighLevel(w, hadValue!.doc.id, { customFields: [{ id: 'cf_tier', value: 'silver' }], website: 'https://old.example' });
    editTandem(w, hadValue!.contact.id, { customFields: { cf_tier: 'gold' }, website: 'https://new.example' });
    editTandem(w, hadNone!.contact.id, { customFields: { cf_tier: 'bronze' } });
    editTandem(w, dnd!.contact.id, { dnd: true });
    // As HighLevel stores a date of birth.
    editHighLevel(w, dob!.doc.id, { dateOfBirth: '1980-02-03T00:00:00.000Z' });
    editTandem(w, dob!.contact.id, { dateOfBirth: '1990-05-06' });
    const snap = (id: string) => {
      const d = w.emulator.emu.contact(id)!;
      return { customFields: d.customFields ?? [], dnd: d.dnd ?? false, website: d.website ?? null, dateOfBirth: d.dateOfBirth ?? null };
    };
    const before = new Map([hadValue, hadNone, dnd, dob].map((s) => [s!.doc.id, snap(s!.doc.id)]));
    const bases = new Map([hadValue, hadNone, dnd, dob].map((s) => [s!.contact.id, getLinkByContact(w.db, loc, s!.contact.id)!.base]));

    const push = await previewOf(w, 'push');
    expect(push.preview.counts.highlevel).toMatchObject({ updated: 4, unchanged: 2 });
    expect((await confirmAndSettle(w, push.row.id)).row.status).toBe('completed');
    expect(snap(hadValue!.doc.id)).toMatchObject({ customFields: [{ id: 'cf_tier', value: 'gold' }], website: 'https://new.example' });
    expect(snap(hadNone!.doc.id).customFields).toEqual([{ id: 'cf_tier', value: 'bronze' }]);
    expect(snap(dnd!.doc.id).dnd).toBe(true);

    const undo = await previewOf(w, 'undo', push.row.id);
    expect(undo.preview.counts.highlevel).toMatchObject({ updated: 4, skipped: 0 });
    const r = await confirmAndSettle(w, undo.row.id);
    expect(r.progress.counts).toEqual(undo.preview.counts);
    for (const [id, was] of before) expect(snap(id)).toEqual(was);
    for (const [id, base] of bases) expect(getLinkByContact(w.db, loc, id)!.base).toEqual(base);
  }, 30_000);

  it('a record HighLevel refuses to take back says so in plain words, and what is left to do by hand (an undo runs once)', async () => {
    const w = await world();
    const [kept, refused] = seedSynced(w, 2);
    for (const s of [kept, refused]) editTandem(w, s!.contact.id, { firstName: `Pushed ${s!.contact.fields.firstName}` });
    const push = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, push.row.id)).row.status).toBe('completed');

    await control(w.highlevelUrl, 'POST', '/faults', {
      method: 'PUT', path: `^/contacts/${refused!.doc.id}$`, status: 422, body: { statusCode: 422, message: 'firstName is locked' }, times: 1,
    });
    const undo = await previewOf(w, 'undo', push.row.id);
    const r = await confirmAndSettle(w, undo.row.id);
    expect(r.progress.counts.highlevel).toMatchObject({ updated: 1, failed: 1 });
    const item = listItems(w.db, undo.row.id, { limit: 10 }).find((i) => i.action === 'failed');
    expect(item?.reason).toBe(
      'HighLevel refused Tandem’s request: firstName is locked. This contact’s values from before the push were not put back; set them back in HighLevel by hand if they matter.',
    );
    expect(w.emulator.emu.contact(kept!.doc.id)!.firstName).toBe(kept!.doc.firstName);
  }, 30_000);
});

describe('undo killed at its named points, resumed by the sweep (T16)', () => {
  it('push undo: each HighLevel record restored (or deleted) exactly once, counts exact, ledgers back', async () => {
    const plan = crashPlan([
      { kind: 'undo', point: 'after-highlevel-write', nth: 1 },
      { kind: 'undo', point: 'before-highlevel-write', nth: 4 },
      { kind: 'undo', point: 'after-record', nth: 9 },
      { kind: 'undo', point: 'after-highlevel-write', nth: 14 },
    ]);
    const w = await world({ leaseMs: 300, crashAt: plan.crashAt });
    const loc = w.location.id;
    const synced = seedSynced(w, 40);
    const renamed = synced.slice(0, 12);
    for (const s of renamed) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` }, { add: ['undo-me'], remove: [] });
    const fresh = Array.from({ length: 6 }, (_, i) => newContact(w, { firstName: `Fresh${i}`, email: `fresh${i}@tandem.example` }));
    const before = new Map(renamed.map((s) => [s.doc.id, structuredClone(w.emulator.emu.contact(s.doc.id)!)]));
    const bases = new Map(renamed.map((s) => [s.contact.id, getLinkByContact(w.db, loc, s.contact.id)!.base]));

    const push = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, push.row.id)).row.status).toBe('completed');
    const created = fresh.map((c) => getLinkByContact(w.db, loc, c.id)!.highlevelId);

    const undo = await previewOf(w, 'undo', push.row.id);
    expect(undo.preview.counts.highlevel).toMatchObject({ updated: 12, removed: 6, skipped: 0 });
    // A deletion is a sample of its own ("deleted in HighLevel" in the panel), not a raw field change.
    const deletions = undo.preview.samples.filter((s) => s.action === 'remove');
    expect(deletions.map((s) => s.highlevelId).sort()).toEqual([...created].sort());
    expect(deletions.every((s) => s.side === 'highlevel' && s.changes.length === 0)).toBe(true);
    const seq = lastSeq(w);
    w.services.operations.confirm(loc, undo.row.id);
    const r = await resumeUntilFinished(w, undo.row.id);
    expect(plan.crashes()).toBe(4);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts).toEqual(undo.preview.counts);
    expect(listItems(w.db, undo.row.id, { limit: 100 }).filter((i) => i.state !== 'done')).toEqual([]);

    // Exactly one write of each kind per record, whatever the crashes.
    const writes = requestsSince(w, seq).filter((e) => e.method !== 'POST' && e.method !== 'GET');
    for (const s of renamed) {
      expect(writes.filter((e) => e.method === 'PUT' && e.path.startsWith(`/contacts/${s.doc.id}`)).length).toBe(1);
      expect(writes.filter((e) => e.method === 'DELETE' && e.path.startsWith(`/contacts/${s.doc.id}/tags`)).length).toBe(1);
      const now = w.emulator.emu.contact(s.doc.id)!;
      const was = before.get(s.doc.id)!;
      expect({ firstName: now.firstName, tags: [...(now.tags as string[])].sort() }).toEqual({ firstName: was.firstName, tags: [...(was.tags as string[])].sort() });
      expect(getLinkByContact(w.db, loc, s.contact.id)!.base).toEqual(bases.get(s.contact.id));
    }
    for (const id of created) {
      expect(writes.filter((e) => e.method === 'DELETE' && e.path === `/contacts/${id}`).length).toBe(1);
      expect(w.emulator.emu.contact(id)).toBeNull();
    }
    for (const c of fresh) expect(getLinkByContact(w.db, loc, c.id)).toBeUndefined();
    expect(highLevelContacts(w)).toHaveLength(40);
    expect(w.services.operations.get(loc, push.row.id)!.undoneBy).toBe(undo.row.id);
  }, 60_000);

  it('pull undo: contacts the pull created archived once, updated ones restored once, across batches and crashes', async () => {
    const plan = crashPlan([
      { kind: 'undo', point: 'in-batch', nth: 120 },
      { kind: 'undo', point: 'undo-batch', nth: 2 },
      { kind: 'undo', point: 'in-batch', nth: 530 },
    ]);
    const w = await world({ leaseMs: 300, crashAt: plan.crashAt });
    const loc = w.location.id;
    const synced = seedSynced(w, 300);
    for (const s of synced.slice(0, 150)) editHighLevel(w, s.doc.id, { companyName: `Pulled Co ${s.doc.id}`, tags: [...((s.doc.tags as string[]) ?? []), 'pulled'] });
    // HighLevel-only contacts the pull creates in Tandem: with the updates, more than one batch of 500.
    seedContacts(w.emulator.emu, loc, 450);
    const before = new Map(synced.map((s) => [s.contact.id, { fields: getContact(w.db, loc, s.contact.id)!.fields, base: getLinkByContact(w.db, loc, s.contact.id)!.base }]));

    const pull = await previewOf(w, 'pull');
    const pr = await confirmAndSettle(w, pull.row.id);
    expect(pr.progress.counts.tandem).toMatchObject({ created: 450, updated: 150, unchanged: 150 });
    const createdIds = listItems(w.db, pull.row.id, { limit: 1000, actions: ['created'] }).map((i) => i.contactId!);
    expect(createdIds).toHaveLength(450);

    const undo = await previewOf(w, 'undo', pull.row.id);
    expect(undo.preview.counts.tandem).toMatchObject({ updated: 150, removed: 450, skipped: 0 });
    // An archive is a sample of its own ("archived in Tandem" in the panel), not "archived: false → true".
    const archives = undo.preview.samples.filter((s) => s.action === 'remove');
    expect(archives.length).toBeGreaterThan(0);
    expect(archives.every((s) => s.side === 'tandem' && s.changes.length === 0)).toBe(true);
    expect(undo.preview.notes.join(' ')).toContain('450 contacts the pull created in Tandem will be archived (restorable)');
    w.services.operations.confirm(loc, undo.row.id);
    const r = await resumeUntilFinished(w, undo.row.id);
    expect(plan.crashes()).toBe(3);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts).toEqual(undo.preview.counts);
    const items = listItems(w.db, undo.row.id, { limit: 2000 });
    expect(items).toHaveLength(600);
    expect(new Set(items.map((i) => i.key)).size).toBe(600);
    for (const [id, was] of before) {
      expect({ fields: getContact(w.db, loc, id)!.fields, base: getLinkByContact(w.db, loc, id)!.base }).toEqual(was);
    }
    for (const id of createdIds) {
      // Archived as any contact archived in Tandem: still linked, so the continuous sync does not copy it again.
      expect(getContact(w.db, loc, id)!.archivedAt).not.toBeNull();
      expect(getLinkByContact(w.db, loc, id)).toMatchObject({ remoteDeletedAt: null });
    }
  }, 60_000);
});

describe('undoing a run again after a cancelled undo', () => {
  it('names the records the first undo already put back, and restores the rest', async () => {
    let cancelAt: (() => void) | undefined;
    let records = 0;
    const w = await world({
      crashAt(op, point) {
        if (op.kind === 'undo' && point === 'after-record' && ++records === 4) cancelAt?.();
        return false;
      },
    });
    const loc = w.location.id;
    const synced = seedSynced(w, 20);
    const renamed = synced.slice(0, 10);
    const was = new Map(renamed.map((s) => [s.doc.id, w.emulator.emu.contact(s.doc.id)!.firstName]));
    for (const s of renamed) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` });
    const push = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, push.row.id)).row.status).toBe('completed');

    const first = await previewOf(w, 'undo', push.row.id);
    cancelAt = () => w.services.operations.cancel(loc, first.row.id);
    const cancelled = await confirmAndSettle(w, first.row.id);
    expect(cancelled.row.status).toBe('cancelled');
    const restored = cancelled.progress.counts.highlevel.updated;
    expect(restored).toBe(4);

    const second = await previewOf(w, 'undo', push.row.id);
    expect(second.preview.counts.highlevel).toMatchObject({ updated: 10 - restored, skipped: restored });
    const done = await confirmAndSettle(w, second.row.id);
    expect(done.row.status).toBe('completed');
    expect(done.progress.counts).toEqual(second.preview.counts);
    const skipped = listItems(w.db, second.row.id, { actions: ['skipped'], limit: 100 });
    expect(skipped.map((i) => i.reason)).toEqual(Array(restored).fill('already as before the run'));
    for (const s of renamed) expect(w.emulator.emu.contact(s.doc.id)!.firstName).toBe(was.get(s.doc.id));
  }, 60_000);
});

describe('a run that changed nothing', () => {
  it('offers no undo: there is nothing to take back', async () => {
    const w = await world();
    seedSynced(w, 5);
    const pull = await previewOf(w, 'pull');
    expect(pull.preview.counts.tandem).toMatchObject({ created: 0, updated: 0, unchanged: 5 });
    const done = await confirmAndSettle(w, pull.row.id);
    expect(done.row.status).toBe('completed');
    expect(w.services.operations.undoable(done.row)).toBe(false);
    expect(() => w.services.operations.preview({ locationId: w.location.id, userId: 'u_admin' }, 'undo', pull.row.id)).toThrow(/changed something/);
  }, 30_000);
});

describe('Sync users with the continuous loop running', () => {
  it('shares the budget: the loop pushes a new contact while the run pages, no 429, the run does what its preview said', async () => {
    // A tight budget (10 a second, the emulator's too) that the run and the loop must share.
    t = await installedTandem({ sync: { budget: { max: 10, intervalMs: 1000 } }, operations: { start: false, sweepMs: 0 } });
    await control(t.highlevelUrl, 'PATCH', '/config', { rateLimit: { burstMax: 10, burstWindowMs: 1000 } });
    const w = t;
    const loc = w.location.id;
    // A HighLevel user with no Tandem user owns half of 6,000 contacts Tandem already holds, unowned.
    const zed = await control<{ id: string }>(w.highlevelUrl, 'POST', '/users', {
      companyId: w.agency.companyId, firstName: 'Zed', lastName: 'Owner', email: 'zed@cedar.example', type: 'account', role: 'user', locationIds: [loc],
    });
    const synced = seedSynced(w, 6000);
    const owned = synced.filter((_, i) => i % 2 === 0);
    for (const s of owned) w.emulator.emu.writeContact(s.doc.id, loc, { ...w.emulator.emu.contact(s.doc.id)!, assignedTo: zed.id });
    await until(() => requestsSince(w, 0).some((e) => e.path.startsWith('/contacts/search')), 'the loop to read HighLevel', 20_000);

    const p = await previewOf(w, 'sync_users');
    expect(p.preview.users?.find((u) => u.email === 'zed@cedar.example')).toMatchObject({ action: 'add' });
    expect(p.preview.owners).toMatchObject({ change: 3000 });
    const seq = lastSeq(w);
    const ops = w.services.operations;
    ops.confirm(loc, p.row.id);
    await until(() => JSON.parse(ops.get(loc, p.row.id)!.progress ?? '{"requests":0}').requests >= 2, 'the run to be under way', 20_000);
    const local = createTandemContact(w.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Loop', email: 'loop@cedar.example' }, now: w.clock.now(), origin: 'local' });
    w.services.sync.wake(loc);
    // The loop's push does not wait for the run: the contact is in HighLevel while the run still pages.
    const statusWhenPushed = await until(() => (getLinkByContact(w.db, loc, local.id) ? ops.get(loc, p.row.id)!.status : undefined), 'the loop to push its contact', 20_000);
    expect(statusWhenPushed).toBe('running');
    const done = await ops.settled(p.row.id);
    expect(done.status).toBe('completed');
    const progress = JSON.parse(done.progress!) as Progress;
    // The loop's contact, made during the run, is one more unchanged owner when the run's last page
    // comes after it (HighLevel's newest contact comes last); otherwise the counts are the preview's.
    const { unchanged, ...changed } = progress.counts.tandem;
    const { unchanged: previewed, ...shown } = p.preview.counts.tandem;
    expect({ ...progress.counts, tandem: changed }).toEqual({ ...p.preview.counts, tandem: shown });
    expect([previewed, previewed + 1]).toContain(unchanged);
    expect(progress.users).toMatchObject({ added: p.preview.users!.filter((u) => u.action === 'add').length });
    expect(requestsSince(w, seq).filter((e) => e.status === 429)).toEqual([]);
    const zedUser = getContact(w.db, loc, owned[0]!.contact.id)!.fields.ownerUserId;
    expect(zedUser).toMatch(/./);
    for (const s of owned) expect(getContact(w.db, loc, s.contact.id)!.fields.ownerUserId).toBe(zedUser);
  }, 60_000);
});

describe('a run held up by HighLevel', () => {
  it('waits out the daily budget with the reason on its progress, then goes on and finishes as previewed', async () => {
    const clock = new ManualClock();
    t = await installedTandem({ clock, sync: { start: false, budget: { max: 10_000, intervalMs: 10_000 } }, operations: { start: false, sweepMs: 0 } });
    const w = t;
    const loc = w.location.id;
    const synced = seedSynced(w, 100);
    for (const s of synced.slice(0, 60)) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` });
    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ updated: 60, unchanged: 40 });
    // About 30 requests left today: the run needs 61.
    const used = w.emulator.emu.requestLog.filter((e) => e.locationId === loc && e.appId === w.app.appId).length;
    await control(w.highlevelUrl, 'PATCH', '/config', { rateLimit: { burstMax: 10_000, dailyMax: used + 30 } });
    const ops = w.services.operations;
    ops.confirm(loc, p.row.id);
    // Time moves (bursts free up) until the run runs out of today's budget and says so.
    const waiting = await until(() => {
      clock.advance(1_000);
      const progress = JSON.parse(ops.get(loc, p.row.id)!.progress ?? '{}') as Partial<Progress>;
      return progress.waiting ?? undefined;
    }, 'the run to say why it waits', 20_000);
    expect(waiting).toMatch(/^HighLevel’s daily request limit for this sub-account is used up; the run goes on at \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$/);
    expect(ops.get(loc, p.row.id)!.status).toBe('running');
    // The next day HighLevel's budget is back (a full one, this time): the run goes on by itself.
    await control(w.highlevelUrl, 'PATCH', '/config', { rateLimit: { dailyMax: 200_000 } });
    clock.advance(24 * 60 * 60_000);
    const done = await until(() => {
      clock.advance(1_000);
      const row = ops.get(loc, p.row.id)!;
      return row.status === 'running' ? undefined : row;
    }, 'the run to finish', 30_000);
    expect(done.status).toBe('completed');
    const progress = JSON.parse(done.progress!) as Progress;
    expect(progress.counts).toEqual(p.preview.counts);
    expect(progress.waiting ?? null).toBeNull();
  }, 60_000);

  it('stops with a plain error, not spinning, when the location is uninstalled mid-run', async () => {
    let uninstall: (() => void) | undefined;
    let records = 0;
    const w = await world({ crashAt: (_op, point) => (point === 'after-record' && ++records === 20 && uninstall?.(), false) });
    const loc = w.location.id;
    const synced = seedSynced(w, 200);
    for (const s of synced.slice(0, 150)) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` });
    const p = await previewOf(w, 'push');
    let uninstalled: Promise<unknown> | undefined;
    uninstall = () => {
      uninstalled = control(w.highlevelUrl, 'DELETE', '/installs', { appId: w.app.appId, locationId: loc });
    };
    const r = await confirmAndSettle(w, p.row.id);
    await uninstalled;
    expect(r.row.status).toBe('failed');
    expect(r.row.error).toMatch(/reinstall|no longer accepts|uninstalled/i);
    // The record whose write was refused says so (certainly not written), rather than pending ("maybe written").
    const items = listItems(w.db, p.row.id, { limit: 500 });
    expect(items.filter((i) => i.state === 'pending')).toEqual([]);
    const refused = items.filter((i) => i.action === 'failed');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toMatch(/^not sent: HighLevel no longer accepts Tandem’s access to this sub-account/);
    expect(w.emulator.emu.contact(refused[0]!.highlevelId!)!.firstName).not.toMatch(/^Pushed /);
  }, 60_000);
});

describe('a run waiting for HighLevel when the location goes away', () => {
  it('stops with a plain error as soon as the location is uninstalled, not at the end of the wait', async () => {
    const clock = new ManualClock();
    t = await installedTandem({ clock, sync: { start: false, budget: { max: 10_000, intervalMs: 10_000 } }, operations: { start: false, sweepMs: 0 } });
    const w = t;
    const loc = w.location.id;
    const synced = seedSynced(w, 60);
    for (const s of synced.slice(0, 40)) editTandem(w, s.contact.id, { firstName: `Pushed ${s.contact.fields.firstName}` });
    const p = await previewOf(w, 'push');
    const used = w.emulator.emu.requestLog.filter((e) => e.locationId === loc && e.appId === w.app.appId).length;
    await control(w.highlevelUrl, 'PATCH', '/config', { rateLimit: { burstMax: 10_000, dailyMax: used + 10 } });
    const ops = w.services.operations;
    ops.confirm(loc, p.row.id);
    await until(() => {
      clock.advance(1_000);
      return (JSON.parse(ops.get(loc, p.row.id)!.progress ?? '{}') as Partial<Progress>).waiting ?? undefined;
    }, 'the run to wait for the daily budget', 20_000);
    await control(w.highlevelUrl, 'DELETE', '/installs', { appId: w.app.appId, locationId: loc });
    await waitForInstallation(w, loc, 'uninstalled');
    // The clock stands still: only the uninstall can end the wait.
    const done = await ops.settled(p.row.id);
    expect(done.status).toBe('failed');
    expect(done.error).toBe('Tandem was uninstalled from this sub-account, so the operation stopped.');
    const items = listItems(w.db, p.row.id, { limit: 100 });
    expect(items.filter((i) => i.state === 'pending')).toEqual([]);
    expect(items.filter((i) => i.action === 'failed').map((i) => i.reason)).toEqual(['not sent: Tandem was uninstalled from this sub-account, so the operation stopped.']);
  }, 30_000);
});
