// What the one-time operations do while the continuous sync is paused (the Sync tab's pause), with
// the real Push contacts, Pull contacts and Sync users against the emulator: each preview says sync
// is paused, each run still goes ahead once confirmed (the pause holds the loop only), and what a run
// leaves to the loop (an owner Sync users queues for HighLevel) waits for the resume. QA: a push ran
// while paused without saying so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getContact } from '../../db/contacts.ts';
import { getOutbox } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { createUser } from '../../db/users.ts';
import { control, ManualClock } from '../helpers/emulator.ts';
import { confirmAndSettle, editHighLevel, editTandem, previewOf, seedSynced, type Synced } from '../helpers/push-world.ts';
import { installedTandem, passesUntilQuiet } from '../helpers/tandem.ts';

const clock = new ManualClock();
let t: Awaited<ReturnType<typeof installedTandem>>;
let synced: Synced[];
const admin = () => ({ id: t.agency.adminId, name: 'Ada Admin' });
/** A fresh rate window on the shared manual clock (the emulator's and Tandem's budgets). */
const freshWindow = () => clock.advance(11_000);

beforeAll(async () => {
  t = await installedTandem({ clock, sync: { start: false }, operations: { start: false, sweepMs: 0 } });
  synced = seedSynced(t, 5);
  updateSyncSettings(t.db, { locationId: t.location.id, patch: { paused: true }, user: admin(), now: clock.now() });
}, 30_000);
afterAll(async () => {
  await t?.emulator.emu.webhooks.idle();
  await t?.close();
});

describe('one-time operations while sync is paused', () => {
  it('Push contacts: the preview says sync is paused, and the confirmed run still sends Tandem’s values', async () => {
    const [s] = synced;
    editTandem(t, s!.contact.id, { firstName: 'Pushed While Paused' });
    freshWindow();
    const p = await previewOf(t, 'push');
    expect(p.preview.syncPaused).toBe(true);
    expect(p.preview.counts.highlevel.updated).toBe(1);
    freshWindow();
    const r = await confirmAndSettle(t, p.row.id);
    expect(r.row.status).toBe('completed');
    expect(t.emulator.emu.contact(s!.doc.id)!.firstName).toBe('Pushed While Paused');
  });

  it('Pull contacts: the preview says sync is paused, and the confirmed run still brings HighLevel’s values', async () => {
    const s = synced[1]!;
    editHighLevel(t, s.doc.id, { lastName: 'Pulled-While-Paused' });
    freshWindow();
    const p = await previewOf(t, 'pull');
    expect(p.preview.syncPaused).toBe(true);
    freshWindow();
    const r = await confirmAndSettle(t, p.row.id);
    expect(r.row.status).toBe('completed');
    expect(getContact(t.db, t.location.id, s.contact.id)!.fields.lastName).toBe('Pulled-While-Paused');
  });

  it('Sync users: the run pairs and sets owners now; the owner it leaves for the loop to send waits for the resume, as its note says', async () => {
    const loc = t.location.id;
    const s = synced[2]!;
    // Hal owns a Tandem contact HighLevel never got an owner for; Hal now has a HighLevel user.
    const hal = createUser(t.db, { locationId: loc, name: 'Hal', email: 'hal@team.example', now: clock.now() });
    editTandem(t, s.contact.id, { ownerUserId: hal.id });
    const halHl = await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
      companyId: t.agency.companyId, firstName: 'Hal', lastName: 'Tester', email: 'hal@team.example', type: 'account', role: 'user', locationIds: [loc],
    });
    updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: admin(), now: clock.now() });
    freshWindow();
    const p = await previewOf(t, 'sync_users');
    expect(p.preview.syncPaused).toBe(true);
    expect(p.preview.notes).toEqual([
      '1 contact has a Tandem owner HighLevel never got, who now has a HighLevel user: the continuous sync sends this owner to HighLevel once you resume sync.',
    ]);
    freshWindow();
    expect((await confirmAndSettle(t, p.row.id)).row.status).toBe('completed');
    expect(getOutbox(t.db, loc, s.contact.id)?.status).toBe('pending');

    // Paused: the loop's pass does nothing, and the owner waits.
    freshWindow();
    expect((await t.services.sync.runOnce(loc)).skipped).toBe('paused');
    expect(t.emulator.emu.contact(s.doc.id)!.assignedTo).toBeUndefined();
    // Resumed: it goes.
    updateSyncSettings(t.db, { locationId: loc, patch: { paused: false }, user: admin(), now: clock.now() });
    freshWindow();
    await passesUntilQuiet(t, loc, clock);
    expect(t.emulator.emu.contact(s.doc.id)!.assignedTo).toBe(halHl.id);
  }, 30_000);
});
