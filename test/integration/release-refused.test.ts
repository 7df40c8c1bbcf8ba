// The release preview (server/sync/release-preview.ts) against what the continuous push
// (server/sync/outbound.ts) then does, over real HTTP against the emulator: a held contact whose
// email or phone is on the HighLevel contact of another live Tandem contact is counted as refused,
// not as created, and so is a held edit HighLevel refuses as a duplicate; a contact whose match
// belongs to an archived Tandem contact takes it over and counts as created. The push then does
// exactly that, and the fingerprint moves when a refusal changes. A refusal (made before, or by the
// release itself) whose holder's released edit moves the email or phone away is tried again by the
// push: the preview counts it as created or sent when it then goes, and not when it stays refused.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { archiveContact, createContact, updateContact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { getOutbox } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { LocationApi } from '../../server/highlevel/contacts.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { pushPending, type OutboundDeps } from '../../server/sync/outbound.ts';
import { releaseFingerprint, releasePreview, type Directions } from '../../server/sync/release-preview.ts';
import { ManualClock, testEmulator } from '../helpers/emulator.ts';
import { testLocationApi } from '../helpers/location-api.ts';
import { addLocation, addOauthToken, installApp } from '../helpers/world.ts';
import { memoryDatabase } from '../helpers/database.ts';

let emulator: RunningEmulator;
let clock: ManualClock;
let database: Database;
let db: Db;
let locationId: string;
let api: LocationApi;

const INBOUND: Directions = { creationDirection: 'inbound', updateDirection: 'inbound' };
const BOTH: Directions = { creationDirection: 'bidirectional', updateDirection: 'bidirectional' };

const deps = (): OutboundDeps => ({ db, clock, api, random: () => 0.5 });

function create(draft: Partial<ContactFields>) {
  clock.advance(1000);
  return createContact(db, { locationId, fields: { ...emptyContact(), ...draft }, now: clock.now(), origin: 'local' });
}

function edit(id: string, patch: Parameters<typeof updateContact>[1]['patch']) {
  clock.advance(1000);
  return updateContact(db, { locationId, id, patch, now: clock.now(), origin: 'local' });
}

function archive(id: string) {
  clock.advance(1000);
  return archiveContact(db, { locationId, id, now: clock.now(), origin: 'local' });
}

function setDirections(d: Directions) {
  updateSyncSettings(db, { locationId, patch: d, user: { id: 'admin', name: 'Admin' }, now: clock.now() });
}

beforeEach(async () => {
  clock = new ManualClock();
  emulator = await testEmulator({ clock });
  const added = addLocation(emulator.emu, { name: 'Cedar Dental' });
  locationId = added.location.id;
  const token = addOauthToken(emulator.emu, { authClass: 'Location', companyId: added.companyId, locationId, scopes: ['contacts.readonly', 'contacts.write', 'users.readonly'] });
  installApp(emulator.emu, added.location, 'http://127.0.0.1:9/hooks');
  database = memoryDatabase();
  db = database.db;
  api = testLocationApi(emulator.url, { locationId, clock, tokens: token });
});

afterEach(async () => {
  await emulator.close();
  database.close();
});

/**
 * Contacts in both systems, then both settings Inbound and, held meanwhile: new contacts whose
 * email or phone HighLevel holds on another Tandem contact's contact, and edits that would put one.
 */
async function heldWork() {
  setDirections(BOTH);
  const ben = create({ firstName: 'Ben', lastName: 'Ortiz', email: 'ben@example.com', phone: '+14155550101' });
  create({ firstName: 'Bo', email: 'bo@example.com', phone: '+14155550102' });
  const ari = create({ firstName: 'Ari', email: 'ari@example.com' });
  const archie = create({ firstName: 'Archie', email: 'archie@example.com', phone: '+14155550199' });
  const dana = create({ firstName: 'Dana', email: 'dana@example.com' });
  const dex = create({ firstName: 'Dex', email: 'dex@example.com' });
  const dora = create({ firstName: 'Dora', email: 'dora@example.com' });
  expect((await pushPending(deps(), locationId)).sent).toBe(7);

  setDirections(INBOUND);
  // Archived while Inbound: their HighLevel contacts live on, still linked.
  archive(ari.id);
  archive(archie.id);
  await pushPending(deps(), locationId);
  expect(emulator.emu.contact(getLinkByContact(db, locationId, ari.id)!.highlevelId)).not.toBeNull();

  const held = {
    ben,
    benInHighLevel: getLinkByContact(db, locationId, ben.id)!.highlevelId,
    ariInHighLevel: getLinkByContact(db, locationId, ari.id)!.highlevelId,
    cleo: create({ firstName: 'Cleo', email: 'BEN@example.com' }),
    cruz: create({ firstName: 'Cruz', email: 'cruz@example.com', phone: '+14155550102' }),
    ines: create({ firstName: 'Ines', email: 'ari@example.com' }),
    tia: create({ firstName: 'Tia', email: 'twin@example.com' }),
    tom: create({ firstName: 'Tom', email: 'twin@example.com' }),
    dana: edit(dana.id, { email: 'ben@example.com' }),
    dex: edit(dex.id, { phone: '+14155550199' }),
    dora: edit(dora.id, { city: 'Paris' }),
  };
  expect((await pushPending(deps(), locationId)).parked).toBe(8);
  return held;
}

describe('the release preview predicts what the push does with duplicates', () => {
  it('counts apart, naming the other contact, what HighLevel will refuse; the push then refuses exactly those', async () => {
    const held = await heldWork();
    const preview = releasePreview(db, locationId, INBOUND, BOTH);
    // Ines takes over the HighLevel contact of Ari (archived); Tia is created; Dora's edit goes.
    expect(preview.created.count).toBe(2);
    expect(preview.created.samples.map((s) => s.label).sort()).toEqual(['Ines', 'Tia']);
    expect(preview.updated.count).toBe(1);
    expect(preview.updated.samples.map((s) => s.label)).toEqual(['Dora']);
    expect(preview.refused.count).toBe(5);
    expect(preview.refused.samples).toEqual([
      { contactId: held.dex.id, label: 'Dex', change: 'edit', field: 'phone', holder: 'Archie', othersSent: false },
      { contactId: held.dana.id, label: 'Dana', change: 'edit', field: 'email', holder: 'Ben Ortiz', othersSent: false },
      { contactId: held.tom.id, label: 'Tom', change: 'create', field: 'email', holder: 'Tia', othersSent: false },
      { contactId: held.cruz.id, label: 'Cruz', change: 'create', field: 'phone', holder: 'Bo', othersSent: false },
      { contactId: held.cleo.id, label: 'Cleo', change: 'create', field: 'email', holder: 'Ben Ortiz', othersSent: false },
    ]);

    setDirections(BOTH);
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: preview.created.count + preview.updated.count, failed: preview.refused.count, retried: 0 });
    for (const s of preview.refused.samples) {
      expect(getOutbox(db, locationId, s.contactId), s.label).toMatchObject({ status: 'failed', lastError: expect.stringMatching(new RegExp(`is already on a HighLevel contact (still )?linked to ${s.holder}\\b`)) });
    }
    expect(getLinkByContact(db, locationId, held.ines.id)!.highlevelId).toBe(held.ariInHighLevel);
    for (const c of [held.cleo, held.cruz, held.tom]) expect(getLinkByContact(db, locationId, c.id)).toBeUndefined();
  });

  it('a refusal that changes moves the fingerprint: the holder archived, its HighLevel contact goes to the first contact that matches it', async () => {
    const held = await heldWork();
    const before = releaseFingerprint(db, locationId, INBOUND, BOTH);
    expect(releasePreview(db, locationId, INBOUND, BOTH).fingerprint).toBe(before);
    archive(held.ben.id);
    // The loop's next pass completes the archive unsent (the directions are Inbound): HighLevel keeps
    // Ben's contact, which is then free to take (a deletion still on its way would hold it).
    await pushPending(deps(), locationId);
    expect(releaseFingerprint(db, locationId, INBOUND, BOTH)).not.toBe(before);

    // Cleo (the email) now takes Ben's HighLevel contact over; Dana's edit (its email) then meets
    // it as Cleo's.
    const preview = releasePreview(db, locationId, INBOUND, BOTH);
    expect(preview.created.samples.map((s) => s.label).sort()).toEqual(['Cleo', 'Ines', 'Tia']);
    expect(preview.refused.samples.map((s) => [s.label, s.holder])).toEqual([
      ['Dex', 'Archie'],
      ['Dana', 'Cleo'],
      ['Tom', 'Tia'],
      ['Cruz', 'Bo'],
    ]);

    setDirections(BOTH);
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: preview.created.count + preview.updated.count, failed: preview.refused.count });
    for (const s of preview.refused.samples) expect(getOutbox(db, locationId, s.contactId), s.label).toMatchObject({ status: 'failed', lastError: expect.stringContaining('is already on a HighLevel contact') });
    // Cleo holds Ben's HighLevel contact now (and, linked, took its name from it).
    expect(getLinkByContact(db, locationId, held.cleo.id)!.highlevelId).toBe(held.benInHighLevel);
  });

  /** Ben in both systems, then his email changed in Tandem while held, and Cleo new with his old one. */
  async function movedAway() {
    setDirections(BOTH);
    const ben = create({ firstName: 'Ben', email: 'ben@example.com' });
    await pushPending(deps(), locationId);
    setDirections(INBOUND);
    edit(ben.id, { email: 'ben.new@example.com' });
    const cleo = create({ firstName: 'Cleo', email: 'ben@example.com' });
    await pushPending(deps(), locationId);
    return { ben, cleo };
  }

  it('meets what HighLevel holds, not Tandem: an email Ben moved away from in Tandem is still his there while his edit waits', async () => {
    const { cleo } = await movedAway();
    const creationOnly: Directions = { creationDirection: 'bidirectional', updateDirection: 'inbound' };
    const preview = releasePreview(db, locationId, INBOUND, creationOnly);
    expect([preview.created.count, preview.updated.count]).toEqual([0, 0]);
    expect(preview.refused.samples).toEqual([{ contactId: cleo.id, label: 'Cleo', change: 'create', field: 'email', holder: 'Ben', othersSent: false }]);
    setDirections(creationOnly);
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 1 });
    expect(getOutbox(db, locationId, cleo.id)).toMatchObject({ status: 'failed' });
  });

  it('and once his edit goes first (it was held first), the email is free there: Cleo is created', async () => {
    const { cleo } = await movedAway();
    const preview = releasePreview(db, locationId, INBOUND, BOTH);
    expect([preview.created.count, preview.updated.count, preview.refused.count]).toEqual([1, 1, 0]);
    setDirections(BOTH);
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 2, failed: 0 });
    expect(getLinkByContact(db, locationId, cleo.id)).toBeDefined();
  });

  it('an edit refused for its email still sends its other fields: counted among the edits sent and the refused, its sample without the email (QA)', async () => {
    setDirections(BOTH);
    create({ firstName: 'Ben', lastName: 'Ortiz', email: 'ben@example.com' });
    const dana = create({ firstName: 'Dana', email: 'dana@example.com' });
    expect((await pushPending(deps(), locationId)).sent).toBe(2);
    setDirections(INBOUND);
    edit(dana.id, { email: 'ben@example.com', city: 'Paris', phone: '+14155550150' });
    await pushPending(deps(), locationId);

    const preview = releasePreview(db, locationId, INBOUND, BOTH);
    expect(preview.updated.count).toBe(1);
    expect(preview.updated.samples).toEqual([
      {
        contactId: dana.id,
        label: 'Dana',
        changes: expect.arrayContaining([{ field: 'city', from: null, to: 'Paris' }, { field: 'phone', from: null, to: '+14155550150' }]),
      },
    ]);
    expect(preview.updated.samples[0]!.changes.map((c) => c.field)).not.toContain('email');
    expect(preview.refused).toEqual({
      count: 1,
      othersSent: 1,
      samples: [{ contactId: dana.id, label: 'Dana', change: 'edit', field: 'email', holder: 'Ben Ortiz', othersSent: true }],
    });

    // The push does that: the city and phone go, the email is refused and waits.
    setDirections(BOTH);
    expect(await pushPending(deps(), locationId)).toMatchObject({ failed: 1 });
    expect(emulator.emu.contact(getLinkByContact(db, locationId, dana.id)!.highlevelId)).toMatchObject({ email: 'dana@example.com', city: 'Paris', phone: '+14155550150' });
    expect(getOutbox(db, locationId, dana.id)).toMatchObject({ status: 'failed' });
  });
});

describe('the release preview counts the refusals the release frees', () => {
  /**
   * In both systems Sana, Pat and Dee; Dee's edit to Pat's email refused (Pat holds it); with
   * updates Inbound, Bee, Cal (Sana's email) and Rex (Dee's, as HighLevel holds it) refused as new
   * contacts. Then held: Sana and Pat move their emails away, and Nia is new with creation Inbound.
   */
  async function refusedThenFreed() {
    setDirections(BOTH);
    const sana = create({ firstName: 'Sana', lastName: 'Smith', email: 'sana@example.com' });
    const pat = create({ firstName: 'Pat', email: 'pat@example.com' });
    const dee = create({ firstName: 'Dee', email: 'dee@example.com' });
    expect((await pushPending(deps(), locationId)).sent).toBe(3);
    edit(dee.id, { email: 'pat@example.com' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 1 });

    setDirections({ creationDirection: 'bidirectional', updateDirection: 'inbound' });
    const bee = create({ firstName: 'Bee', lastName: 'Four', email: 'sana@example.com' });
    const cal = create({ firstName: 'Cal', email: 'SANA@example.com' });
    const rex = create({ firstName: 'Rex', email: 'dee@example.com' });
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 0, failed: 3 });
    for (const [c, holder] of [[dee, pat], [bee, sana], [cal, sana], [rex, dee]] as const) {
      expect(getOutbox(db, locationId, c.id), c.fields.firstName!).toMatchObject({ status: 'failed', refusedBy: getLinkByContact(db, locationId, holder.id)!.highlevelId });
    }

    edit(sana.id, { email: 'sana.smith@example.com' });
    edit(pat.id, { email: 'pat.new@example.com' });
    setDirections(INBOUND);
    const nia = create({ firstName: 'Nia', email: 'nia@example.com' });
    expect((await pushPending(deps(), locationId)).parked).toBe(3);
    return { sana, pat, dee, bee, cal, rex, nia };
  }

  it('a refused contact whose holder’s held edit moves its email away is counted as created, a refused edit as sent; one that meets the email taken again stays refused', async () => {
    const c = await refusedThenFreed();
    const preview = releasePreview(db, locationId, INBOUND, BOTH);
    // Sana's and Pat's edits go out; that frees Dee (its edit then goes, leaving Dee's old email:
    // that frees Rex), Bee and Cal. Bee, refused first, is tried first and takes Sana's old email;
    // Cal then meets it on Bee's new contact and stays refused (not part of what the release sends).
    expect(preview.created.samples.map((s) => s.label).sort()).toEqual(['Bee Four', 'Nia', 'Rex']);
    expect(preview.created.count).toBe(3);
    expect(preview.updated.samples.map((s) => s.label).sort()).toEqual(['Dee', 'Pat', 'Sana Smith']);
    expect(preview.updated.samples.find((s) => s.label === 'Dee')!.changes).toEqual([{ field: 'email', from: 'dee@example.com', to: 'pat@example.com' }]);
    expect(preview.updated.count).toBe(3);
    expect(preview.refused).toEqual({ count: 0, othersSent: 0, samples: [] });

    setDirections(BOTH);
    const result = await pushPending(deps(), locationId);
    expect(result).toMatchObject({ sent: preview.created.count + preview.updated.count, failed: 1, retried: 0 });
    for (const s of [...preview.created.samples, ...preview.updated.samples]) expect(getOutbox(db, locationId, s.contactId), s.label).toBeUndefined();
    for (const x of [c.bee, c.rex, c.nia]) expect(getLinkByContact(db, locationId, x.id), x.fields.firstName!).toBeDefined();
    expect(getOutbox(db, locationId, c.cal.id)).toMatchObject({ status: 'failed', refusedBy: getLinkByContact(db, locationId, c.bee.id)!.highlevelId });
  });

  it('held the holder’s edit stays, the refusal too: a release of creation alone frees no one, and a refused edit leaves its old email held', async () => {
    const c = await refusedThenFreed();
    // Zed, new with Dee's old email: Dee's edit was refused, so her HighLevel contact still has it.
    const zed = create({ firstName: 'Zed', email: 'dee@example.com' });
    const creationOnly: Directions = { creationDirection: 'bidirectional', updateDirection: 'inbound' };
    const preview = releasePreview(db, locationId, INBOUND, creationOnly);
    expect([preview.created.count, preview.updated.count]).toEqual([1, 0]);
    expect(preview.refused.samples).toEqual([{ contactId: zed.id, label: 'Zed', change: 'create', field: 'email', holder: 'Dee', othersSent: false }]);
    setDirections(creationOnly);
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 1, failed: 1 });
    expect(getOutbox(db, locationId, zed.id)).toMatchObject({ status: 'failed', refusedBy: getLinkByContact(db, locationId, c.dee.id)!.highlevelId });
  });

  it('freed into a setting that holds it, a refused contact is held, not created: updates alone released', async () => {
    const c = await refusedThenFreed();
    const updatesOnly: Directions = { creationDirection: 'inbound', updateDirection: 'bidirectional' };
    const preview = releasePreview(db, locationId, INBOUND, updatesOnly);
    expect(preview.created.count).toBe(0);
    expect(preview.updated.samples.map((s) => s.label).sort()).toEqual(['Dee', 'Pat', 'Sana Smith']);
    setDirections(updatesOnly);
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 3, failed: 0 });
    for (const x of [c.bee, c.cal, c.rex]) expect(getOutbox(db, locationId, x.id), x.fields.firstName!).toMatchObject({ status: 'pending' });
  });

  it('a held contact refused in the release itself is freed by a later held edit of its holder: counted as created', async () => {
    // Cleo held first, with Ben's email; then Ben's email changed in Tandem, held too.
    setDirections(BOTH);
    const ben = create({ firstName: 'Ben', email: 'ben@example.com' });
    await pushPending(deps(), locationId);
    setDirections(INBOUND);
    const cleo = create({ firstName: 'Cleo', email: 'ben@example.com' });
    edit(ben.id, { email: 'ben.new@example.com' });
    await pushPending(deps(), locationId);

    const preview = releasePreview(db, locationId, INBOUND, BOTH);
    expect(preview.created.samples.map((s) => s.label)).toEqual(['Cleo']);
    expect(preview.updated.samples.map((s) => s.label)).toEqual(['Ben']);
    expect(preview.refused).toEqual({ count: 0, othersSent: 0, samples: [] });
    setDirections(BOTH);
    // Cleo goes first and is refused (Ben's contact holds the email); Ben's edit frees her, and she goes again.
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: 2, failed: 1 });
    expect(getOutbox(db, locationId, cleo.id)).toBeUndefined();
    expect(getLinkByContact(db, locationId, cleo.id)).toBeDefined();
  });

  it('a freed refusal that changes moves the fingerprint: the refused contact archived, or another refused meanwhile', async () => {
    const c = await refusedThenFreed();
    const before = releaseFingerprint(db, locationId, INBOUND, BOTH);
    archive(c.bee.id);
    const archived = releaseFingerprint(db, locationId, INBOUND, BOTH);
    expect(archived).not.toBe(before);
    // Cal now takes Sana's old email.
    expect(releasePreview(db, locationId, INBOUND, BOTH).created.samples.map((s) => s.label).sort()).toEqual(['Cal', 'Nia', 'Rex']);

    // Refused while the dialog is open (creation Bi-directional, the edits still held): Pat's old email.
    setDirections({ creationDirection: 'bidirectional', updateDirection: 'inbound' });
    const from: Directions = { creationDirection: 'bidirectional', updateDirection: 'inbound' };
    const shown = releaseFingerprint(db, locationId, from, BOTH);
    const ivy = create({ firstName: 'Ivy', email: 'pat@example.com' });
    await pushPending(deps(), locationId);
    expect(getOutbox(db, locationId, ivy.id)).toMatchObject({ status: 'failed' });
    expect(releaseFingerprint(db, locationId, from, BOTH)).not.toBe(shown);
    // Ivy is freed by Pat's edit, but Dee (refused before her) takes Pat's old email first.
    const preview = releasePreview(db, locationId, from, BOTH);
    expect(preview.created.samples.map((s) => s.label).sort()).toEqual(['Cal', 'Rex']);
    setDirections(BOTH);
    expect(await pushPending(deps(), locationId)).toMatchObject({ sent: preview.created.count + preview.updated.count, failed: 1 });
    expect(getOutbox(db, locationId, ivy.id)).toMatchObject({ status: 'failed', refusedBy: getLinkByContact(db, locationId, c.dee.id)!.highlevelId });
  });
});
