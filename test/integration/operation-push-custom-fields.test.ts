// Push contacts (server/sync/operations/push.ts) with custom field values under ids the location's
// listed fields do not hold: left out of the plan as the continuous sync leaves them out, so out of
// creates and updates, of the preview's counts and samples, of the records an undo reads and of the
// ledger; kept in Tandem. While the fields have never been listed, every value goes as before.
// The real Tandem and the emulator over HTTP; the emulator stores any id it is sent, so its
// contact shows what Tandem sent.
import { afterEach, describe, expect, it } from 'vitest';
import { createContact as createTandemContact, getContact } from '../../db/contacts.ts';
import { saveCustomFieldDefinitions } from '../../db/custom-fields.ts';
import { getLinkByContact } from '../../db/links.ts';
import { getItem, listItems, putItem } from '../../db/operations.ts';
import { getOutbox } from '../../db/outbox.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { UNSENT_REASON } from '../../server/sync/operations/push-undo.ts';
import { control } from '../helpers/emulator.ts';
import { confirmAndSettle, editHighLevel, editTandem, previewOf, seedSynced } from '../helpers/push-world.ts';
import { installedTandem } from '../helpers/tandem.ts';

/** An id HighLevel has no field for: a value written before Tandem checked writes, or of a field deleted since. */
const GONE = 'cfGone00000000000001';

type T = Awaited<ReturnType<typeof installedTandem>>;
let t: T | undefined;
afterEach(async () => {
  await t?.emulator.emu.webhooks.idle();
  await t?.close();
  t = undefined;
});

/** A Tandem without its loop, whose location defines "Lead score" in HighLevel; `listed`: Tandem has listed the location's fields. */
async function world(opts: { listed: boolean }): Promise<{ w: T; loc: string; score: string }> {
  const w = await installedTandem({ sync: { start: false }, operations: { start: false, sweepMs: 0 } });
  t = w;
  const loc = w.location.id;
  const defined = await control<{ customFields: { id: string; name: string }[] }>(w.highlevelUrl, 'POST', `/locations/${loc}/custom-fields`, {
    customFields: [{ name: 'Lead score', dataType: 'NUMERICAL' }],
  });
  const score = defined.customFields[0]!.id;
  if (opts.listed) saveCustomFieldDefinitions(w.db, loc, [{ id: score, name: 'Lead score', fieldKey: 'contact.lead_score', dataType: 'NUMERICAL', options: [], position: 0 }], w.clock.now());
  return { w, loc, score };
}

/** The custom fields HighLevel holds for the contact, by id. */
function remoteCustom(w: T, highlevelId: string): Record<string, unknown> {
  const doc = w.emulator.emu.contact(highlevelId);
  if (!doc) throw new Error(`no HighLevel contact ${highlevelId}`);
  return Object.fromEntries(((doc.customFields ?? []) as { id: string; value: unknown }[]).map((f) => [f.id, f.value]));
}

describe('Push contacts and custom fields HighLevel does not define', () => {
  it('sends only the defined field on creates and updates, counts no change for the other, and keeps it in Tandem; preview = run', async () => {
    const { w, loc, score } = await world({ listed: true });
    const [updated, onlyGone] = seedSynced(w, 2);
    editTandem(w, updated!.contact.id, { customFields: { [score]: 7, [GONE]: 'old' } });
    // Its only difference from HighLevel is the undefined field's value: nothing to push.
    editTandem(w, onlyGone!.contact.id, { customFields: { [GONE]: 'kept' } });
    const fresh = createTandemContact(w.db, {
      locationId: loc, fields: { ...emptyContact(), firstName: 'Nova', email: 'nova@tandem.example', customFields: { [score]: 9, [GONE]: 'new' } }, now: w.clock.now(), origin: 'remote',
    });

    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toEqual({ created: 1, updated: 1, unchanged: 1, skipped: 0, failed: 0, removed: 0 });
    // One page, the create, the PUT.
    expect(p.preview.requests).toBe(3);
    const sampled = p.preview.samples.flatMap((s) => s.changes.map((c) => c.field));
    expect(sampled).toContain(`customFields.${score}`);
    expect(sampled).not.toContain(`customFields.${GONE}`);
    expect(p.preview.notes.join(' ')).toContain('3 contacts have values in custom fields that HighLevel doesn’t have: those values stay in Tandem and aren’t sent.');

    const r = await confirmAndSettle(w, p.row.id);
    expect(r.row.status).toBe('completed');
    expect(r.progress.counts).toEqual(p.preview.counts);
    expect(r.requests).toBe(p.preview.requests);

    // HighLevel got the defined field only, on the update and on the create.
    expect(remoteCustom(w, updated!.doc.id)).toEqual({ [score]: 7 });
    expect(remoteCustom(w, onlyGone!.doc.id)).toEqual({});
    const created = getLinkByContact(w.db, loc, fresh.id)!;
    expect(remoteCustom(w, created.highlevelId)).toEqual({ [score]: 9 });
    // Tandem keeps the values; the ledger does not say HighLevel holds them.
    expect(getContact(w.db, loc, updated!.contact.id)!.fields.customFields).toEqual({ [score]: 7, [GONE]: 'old' });
    expect(getContact(w.db, loc, onlyGone!.contact.id)!.fields.customFields).toEqual({ [GONE]: 'kept' });
    expect(getContact(w.db, loc, fresh.id)!.fields.customFields).toEqual({ [score]: 9, [GONE]: 'new' });
    expect(getLinkByContact(w.db, loc, updated!.contact.id)!.base.customFields).toEqual({ [score]: 7 });
    expect(getLinkByContact(w.db, loc, onlyGone!.contact.id)!.base.customFields).toEqual({});
    expect(created.base.customFields).toEqual({ [score]: 9 });

    // The records an undo reads name only what was written.
    const items = new Map(listItems(w.db, p.row.id, { limit: 10 }).map((i) => [i.key, i]));
    expect(items.get(onlyGone!.contact.id)).toMatchObject({ action: 'unchanged' });
    for (const id of [updated!.contact.id, fresh.id]) {
      const item = items.get(id)!;
      expect(Object.keys(JSON.parse(item.before!).fields)).not.toContain(`customFields.${GONE}`);
      expect(JSON.parse(item.after!).fields).toEqual({ ...(id === fresh.id ? { firstName: 'Nova', email: 'nova@tandem.example', [`customFields.${score}`]: 9 } : { [`customFields.${score}`]: 7 }) });
    }

    // Undone: HighLevel as before; the undefined value is no Tandem edit waiting to go out again.
    const u = await previewOf(w, 'undo', p.row.id);
    expect(u.preview.counts.highlevel).toMatchObject({ updated: 1, removed: 1, skipped: 0 });
    expect(u.preview.notes.join(' ')).toMatch(/1 contact holds Tandem edits the push sent/);
    const ur = await confirmAndSettle(w, u.row.id);
    expect(ur.progress.counts).toEqual(u.preview.counts);
    expect(remoteCustom(w, updated!.doc.id)).toEqual({});
    expect(getLinkByContact(w.db, loc, updated!.contact.id)!.base.customFields).toEqual({});
    expect(getContact(w.db, loc, updated!.contact.id)!.fields.customFields).toEqual({ [score]: 7, [GONE]: 'old' });
  });

  it('an undo queues nothing for a contact whose only difference left is an undefined field’s value', async () => {
    const { w, loc } = await world({ listed: true });
    const [s] = seedSynced(w, 1);
    const was = s!.contact.fields.firstName;
    editTandem(w, s!.contact.id, { firstName: 'Pushed', customFields: { [GONE]: 'kept' } });
    const p = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, p.row.id)).row.status).toBe('completed');
    expect(w.emulator.emu.contact(s!.doc.id)!.firstName).toBe('Pushed');
    // Tandem goes back to HighLevel's old first name (as a pull would write it: nothing queued).
    editTandem(w, s!.contact.id, { firstName: was });

    const u = await previewOf(w, 'undo', p.row.id);
    expect(u.preview.counts.highlevel).toMatchObject({ updated: 1 });
    expect(u.preview.notes.join(' ')).not.toMatch(/Tandem edits the push sent/);
    expect((await confirmAndSettle(w, u.row.id)).row.status).toBe('completed');
    expect(w.emulator.emu.contact(s!.doc.id)!.firstName).toBe(was);
    expect(getOutbox(w.db, loc, s!.contact.id)).toBeUndefined();
    expect(getContact(w.db, loc, s!.contact.id)!.fields.customFields).toEqual({ [GONE]: 'kept' });
  });

  it('an undo of a record written before pushes left such values out leaves them out, restores the rest and says so', async () => {
    const { w, loc } = await world({ listed: true });
    const [kept, ignored, only] = seedSynced(w, 3);
    const was = new Map([kept, ignored, only].map((s) => [s!.doc.id, s!.contact.fields.firstName]));
    for (const s of [kept, ignored, only]) editTandem(w, s!.contact.id, { firstName: 'Pushed' });
    const p = await previewOf(w, 'push');
    expect((await confirmAndSettle(w, p.row.id)).row.status).toBe('completed');

    // The records as a push made before the rule wrote them: HighLevel's value of the undefined
    // field before the run, and Tandem's that the run sent. HighLevel kept what it was sent for
    // one contact (as the emulator keeps any id) and ignored it for the other; the third record's
    // only write was such a value.
    const old = (key: string, extra: { before: Record<string, unknown>; after: Record<string, unknown> }, only = false) => {
      const item = getItem(w.db, p.row.id, key)!;
      const before = JSON.parse(item.before!);
      const after = JSON.parse(item.after!);
      putItem(w.db, {
        ...item,
        before: JSON.stringify({ ...before, fields: { ...(only ? {} : before.fields), ...extra.before } }),
        after: JSON.stringify({ ...after, fields: { ...(only ? {} : after.fields), ...extra.after } }),
      });
    };
    const gone = `customFields.${GONE}`;
    old(kept!.contact.id, { before: { [gone]: 'was' }, after: { [gone]: 'now' } });
    editHighLevel(w, kept!.doc.id, { customFields: [{ id: GONE, value: 'now' }] });
    old(ignored!.contact.id, { before: { [gone]: null }, after: { [gone]: 'now' } });
    old(only!.contact.id, { before: { [gone]: null }, after: { [gone]: 'now' } }, true);

    const u = await previewOf(w, 'undo', p.row.id);
    expect(u.preview.counts.highlevel).toMatchObject({ updated: 2, unchanged: 1, skipped: 0 });
    expect(u.preview.notes).toContain('3 contacts have values from before the push in custom fields that HighLevel doesn’t have: those values aren’t written back.');
    const sampled = u.preview.samples.flatMap((s) => s.changes.map((c) => c.field));
    expect(sampled).toContain('firstName');
    expect(sampled).not.toContain(gone);
    // One page and the two PUTs of the first names.
    expect(u.preview.requests).toBe(3);

    const ur = await confirmAndSettle(w, u.row.id);
    expect(ur.row.status).toBe('completed');
    expect(ur.progress.counts).toEqual(u.preview.counts);
    expect(ur.requests).toBe(u.preview.requests);
    // The first names are back; the undefined field is not written (the emulator would store it).
    for (const s of [kept, ignored]) expect(w.emulator.emu.contact(s!.doc.id)!.firstName).toBe(was.get(s!.doc.id));
    expect(remoteCustom(w, kept!.doc.id)).toEqual({ [GONE]: 'now' });
    expect(remoteCustom(w, ignored!.doc.id)).toEqual({});
    expect(w.emulator.emu.contact(only!.doc.id)!.firstName).toBe('Pushed');
    const items = new Map(listItems(w.db, u.row.id, { limit: 10 }).map((i) => [i.key, i]));
    expect(items.get(only!.contact.id)).toMatchObject({ action: 'unchanged', reason: UNSENT_REASON });
    for (const s of [kept, ignored]) {
      const item = items.get(s!.contact.id)!;
      expect(item).toMatchObject({ action: 'updated', reason: UNSENT_REASON });
      expect(Object.keys(JSON.parse(item.after!).fields)).toEqual(['firstName']);
    }
    expect(getLinkByContact(w.db, loc, kept!.contact.id)!.base.firstName).toBe(was.get(kept!.doc.id));
  });

  it('sends every value, as before, while the location’s fields have never been listed', async () => {
    const { w, loc, score } = await world({ listed: false });
    const [s] = seedSynced(w, 1);
    editTandem(w, s!.contact.id, { customFields: { [GONE]: 'old' } });
    const fresh = createTandemContact(w.db, {
      locationId: loc, fields: { ...emptyContact(), firstName: 'Nova', email: 'nova@tandem.example', customFields: { [score]: 9, [GONE]: 'new' } }, now: w.clock.now(), origin: 'remote',
    });

    const p = await previewOf(w, 'push');
    expect(p.preview.counts.highlevel).toMatchObject({ created: 1, updated: 1, unchanged: 0 });
    expect(p.preview.notes.join(' ')).not.toContain('custom fields that HighLevel doesn’t have');
    const r = await confirmAndSettle(w, p.row.id);
    expect(r.progress.counts).toEqual(p.preview.counts);
    expect(remoteCustom(w, s!.doc.id)).toEqual({ [GONE]: 'old' });
    const created = getLinkByContact(w.db, loc, fresh.id)!;
    expect(remoteCustom(w, created.highlevelId)).toEqual({ [score]: 9, [GONE]: 'new' });
    expect(created.base.customFields).toEqual({ [score]: 9, [GONE]: 'new' });
    expect(getLinkByContact(w.db, loc, s!.contact.id)!.base.customFields).toEqual({ [GONE]: 'old' });
  });
});
