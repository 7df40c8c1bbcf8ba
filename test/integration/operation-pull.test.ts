// Pull contacts (issue 5) against the emulator over real HTTP: a location of more than 10,000
// HighLevel contacts (paging past the 10,000 ceiling) with contacts added, renamed, tagged, cleared,
// deleted and owned on HighLevel's side and renamed, archived, unlinked on Tandem's; preview counts
// equal the run's; HighLevel's values win but an empty one never clears Tandem's; undo restores the
// exact previous values (archiving what the pull created) and skips what changed since; crashes at
// the run's named points resume without duplicates and with exact counts (T16); a cancel leaves
// both sides consistent; and a pull with the continuous loop running shares the budget with it. (A
// page read answered 5xx is waited out with backoff: operation-retries.test.ts, on a manual clock.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedContacts } from '../../emulator/contact-seed.ts';
import { finishDoc } from '../../emulator/contact-model.ts';
import { recordId } from '../../emulator/ids.ts';
import { isoAt, type ContactDoc } from '../../emulator/state.ts';
import { contactIds, createContact, getContact, insertContact, updateContact, archiveContact, type Contact } from '../../db/contacts.ts';
import { getLinkByContact, getLinkByRemote, liveRemoteIds, saveLink } from '../../db/links.ts';
import { listItems, type OperationRow } from '../../db/operations.ts';
import { upsertHighLevelUsers } from '../../db/highlevel-users.ts';
import { getOutbox, outboxCounts } from '../../db/outbox.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { createUser } from '../../db/users.ts';
import { queuedInboxEvents } from '../../db/webhook-inbox.ts';
import { fromHighLevel } from '../../server/highlevel/contact-mapping.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { applyRemote, held } from '../../server/sync/inbound.ts';
import { APPLY_SLICE } from '../../server/sync/reconcile.ts';
import { UNMATCHED_OWNER_REASON } from '../../server/sync/operations/pull-decide.ts';
import type { Counts, Preview, Progress } from '../../server/sync/operations/types.ts';
import { call, control, until } from '../helpers/emulator.ts';
import { addLocation, installLocation, installedTandem, settle, type TestTandem } from '../helpers/tandem.ts';

type T = TestTandem & { agency: { companyId: string; adminId: string }; location: { id: string } };
const LEASE_MS = 300;

let t: T;
/** T16: the run crashes where this says (null: never). */
let crashAt: ((op: OperationRow, point: string) => boolean) | null = null;

beforeAll(async () => {
  t = await installedTandem({ sync: { start: false }, operations: { start: false, sweepMs: 0, leaseMs: LEASE_MS, crashAt: (op, point) => crashAt?.(op, point) === true } });
}, 30_000);

afterAll(async () => {
  await t?.close();
});

// ---- helpers --------------------------------------------------------------------------------------

async function newLocation(tt: T, name: string): Promise<string> {
  const l = await addLocation(tt, tt.agency.companyId, name);
  const res = await installLocation(tt, l.id, { userId: tt.agency.adminId });
  expect(res.status).toBe(200);
  return l.id;
}

/** Tandem already in sync with these HighLevel contacts: contact + link, one transaction. */
function seedTandem(tt: T, loc: string, docs: ContactDoc[]): Map<string, string> {
  const byRemote = new Map<string, string>();
  tt.db.transaction(() => {
    for (const doc of docs) {
      const remote = fromHighLevel(doc, () => null, { complete: true });
      const c = insertContact(tt.db, { locationId: loc, fields: { ...emptyContact(), ...remote.fields }, now: tt.clock.now(), origin: 'remote' });
      saveLink(tt.db, { locationId: loc, contactId: c.id, highlevelId: doc.id, base: held(c.fields, remote.fields), remoteUpdatedAt: remote.dateUpdated ?? null, now: tt.clock.now() });
      byRemote.set(doc.id, c.id);
    }
  });
  return byRemote;
}

/** A HighLevel-side edit written straight into the emulator (no webhook). */
function hlEdit(tt: T, loc: string, doc: ContactDoc, patch: Record<string, unknown>): ContactDoc {
  const next = finishDoc({ ...doc, ...patch, dateUpdated: isoAt(tt.emulator.emu.now()) } as ContactDoc);
  tt.emulator.emu.writeContact(doc.id, loc, next);
  return next;
}

async function previewed(tt: T, loc: string, kind: 'pull' | 'undo', undoOf?: string): Promise<{ id: string; preview: Preview }> {
  const row = tt.services.operations.preview({ locationId: loc, userId: 'u_admin', userName: 'Ada Admin' }, kind, undoOf);
  const done = await tt.services.operations.settled(row.id);
  expect(done.error).toBeNull();
  expect(done.status).toBe('previewed');
  return { id: row.id, preview: JSON.parse(done.preview!) as Preview };
}

async function finished(tt: T, loc: string, id: string): Promise<{ row: OperationRow; progress: Progress }> {
  const row = await tt.services.operations.settled(id);
  expect(row.error).toBeNull();
  return { row, progress: JSON.parse(row.progress!) as Progress };
}

/** Runs a confirmed operation to its end, resuming it (sweep after the lease) whenever it crashed. */
async function resumeUntilFinished(tt: T, loc: string, id: string, timeoutMs = 30_000): Promise<{ row: OperationRow; progress: Progress }> {
  await until(
    async () => {
      const row = tt.services.operations.get(loc, id)!;
      if (['completed', 'cancelled', 'failed'].includes(row.status)) return true;
      await tt.services.operations.sweep();
      return false;
    },
    'the operation to finish',
    timeoutMs,
  );
  return finished(tt, loc, id);
}

function counts(c: Partial<Counts['tandem']>): Counts {
  const side = { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0, removed: 0 };
  return { tandem: { ...side, ...c }, highlevel: { ...side } };
}

/** Tandem's search requests (this app's token) for the location since `seq`. */
function searchesSince(tt: T, loc: string, seq: number): number {
  return tt.emulator.emu.requestLog.filter((r) => r.seq > seq && r.appId === tt.app.appId && r.locationId === loc && r.method === 'POST' && r.path.startsWith('/contacts/search')).length;
}
function tandemRequestsSince(tt: T, loc: string, seq: number) {
  return tt.emulator.emu.requestLog.filter((r) => r.seq > seq && r.appId === tt.app.appId && r.locationId === loc);
}
/** The order of the run's search (dateAdded, then id). */
function inSearchOrder(docs: ContactDoc[]): ContactDoc[] {
  const key = (d: ContactDoc) => Date.parse(d.dateAdded as string);
  return [...docs].sort((a, b) => key(a) - key(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
const lastSeq = (tt: T) => tt.emulator.emu.requestLog.at(-1)?.seq ?? 0;

/** Every HighLevel contact is linked to exactly one Tandem contact, and no Tandem contact twice. */
function expectNoDuplicates(tt: T, loc: string): void {
  const hlIds = [...tt.emulator.emu.contactIds(loc)].filter((id) => tt.emulator.emu.contact(id));
  const linkedTo = new Set<string>();
  for (const id of hlIds) {
    const link = getLinkByRemote(tt.db, loc, id);
    expect(link?.highlevelId).toBe(id);
    expect(linkedTo.has(link!.contactId)).toBe(false);
    linkedTo.add(link!.contactId);
  }
}

function snapshot(tt: T, loc: string): Map<string, { fields: ContactFields; archived: boolean; base: ContactFields | null }> {
  const out = new Map<string, { fields: ContactFields; archived: boolean; base: ContactFields | null }>();
  for (const id of contactIds(tt.db, loc)) {
    const c = getContact(tt.db, loc, id)!;
    out.set(id, { fields: c.fields, archived: c.archivedAt !== null, base: getLinkByContact(tt.db, loc, id)?.base ?? null });
  }
  return out;
}

const tandemOf = (tt: T, loc: string, hlId: string): Contact | undefined => {
  const link = getLinkByRemote(tt.db, loc, hlId);
  return link ? getContact(tt.db, loc, link.contactId) : undefined;
};

// ---- tests ----------------------------------------------------------------------------------------

describe('Pull contacts', () => {
  it('pulls more than 10,000 contacts with drift on both sides: preview = run, HighLevel wins, empty never clears; undo restores exactly', async () => {
    const loc = t.location.id;
    const N = 10_300;
    const docs = seedContacts(t.emulator.emu, loc, N);
    const group = (i: number) => i % 100;
    // Tandem: in sync with every contact but the HighLevel-only ones (0) and the unlinked ones (1, 2).
    const byRemote = seedTandem(t, loc, docs.filter((_, i) => group(i) > 2));
    const unpairedOwner = 'hl_user_without_pairing';
    // A HighLevel user paired (same email) with a Tandem user: owners assigned to it travel.
    const olive = createUser(t.db, { locationId: loc, name: 'Olive Owner', email: 'olive@example.com', now: t.clock.now() });
    upsertHighLevelUsers(t.db, loc, [{ id: 'hl_olive', email: 'Olive@example.com', name: 'Olive', active: true, deleted: false }], t.clock.now());
    t.db.transaction(() => {
      for (const [i, doc] of docs.entries()) {
        const g = group(i);
        const local = byRemote.get(doc.id);
        const now = t.clock.now();
        // Unlinked Tandem contacts: the same email in other case (1), the same phone without email (2).
        if (g === 1) insertContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Old', email: (doc.email as string).toUpperCase() }, now, origin: 'remote' });
        if (g === 2) insertContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: 'Phone', phone: doc.phone as string }, now, origin: 'remote' });
        if (g === 4) updateContact(t.db, { locationId: loc, id: local!, patch: {}, tags: { add: ['local-only'], remove: [] }, now, origin: 'remote' });
        if (g === 6) updateContact(t.db, { locationId: loc, id: local!, patch: { firstName: 'RenamedInTandem' }, now, origin: 'remote' });
        if (g === 7) archiveContact(t.db, { locationId: loc, id: local!, now, origin: 'remote' });
      }
      for (let i = 0; i < 50; i++) insertContact(t.db, { locationId: loc, fields: { ...emptyContact(), firstName: `TandemOnly${i}` }, now: t.clock.now(), origin: 'remote' });
    });
    for (const [i, doc] of docs.entries()) {
      const g = group(i);
      if (g === 3) hlEdit(t, loc, doc, { firstName: `Renamed${i}` });
      if (g === 4) hlEdit(t, loc, doc, { tags: [...((doc.tags as string[] | undefined) ?? []), 'pulled-tag'] });
      if (g === 5) hlEdit(t, loc, doc, { city: null });
      if (g === 8) t.emulator.emu.writeContact(doc.id, loc, null);
      if (g === 9) hlEdit(t, loc, doc, { assignedTo: unpairedOwner });
      if (g === 10) hlEdit(t, loc, doc, { dnd: true });
      if (g === 11) hlEdit(t, loc, doc, { customFields: [{ id: 'cf_tier', value: 'gold' }] });
      if (g === 12) hlEdit(t, loc, doc, { assignedTo: 'hl_olive' });
    }
    // HighLevel twins (same email and phone, added later) of three contacts that match a Tandem
    // contact: the first links it, the twin is created (the preview must not link one contact twice).
    const twins = docs
      .filter((_, i) => group(i) === 1)
      .slice(0, 3)
      .map((doc) => {
        const at = isoAt(t.emulator.emu.now());
        const twin = finishDoc({ ...doc, id: recordId(), firstName: 'Twin', dateAdded: at, dateUpdated: at });
        t.emulator.emu.writeContact(twin.id, loc, twin);
        return { doc, twin };
      });
    const before = snapshot(t, loc);
    const per = N / 100;
    const expected = counts({ created: per + 3, updated: 8 * per, skipped: per, unchanged: 89 * per });

    const seq = lastSeq(t);
    const { id, preview } = await previewed(t, loc, 'pull');
    expect(preview.counts).toEqual(expected);
    // Reads only: 10,197 contacts in pages of 500.
    expect(preview.requests).toBe(21);
    expect(preview.samples).toHaveLength(20);
    expect(preview.samples.find((x) => x.highlevelId === docs[0]!.id)).toMatchObject({ side: 'tandem', action: 'create', label: `${docs[0]!.firstName} ${docs[0]!.lastName}` });
    expect(preview.notes.join(' ')).toContain(`${per} contacts have a HighLevel owner with no paired Tandem user`);
    // The archived ones (group 7) are skipped; nothing of theirs is on its way to HighLevel here.
    expect(preview.notes.join(' ')).toContain(`${per} contacts archived in Tandem are skipped: a pull does not bring back what was archived in Tandem`);
    expect(contactIds(t.db, loc)).toHaveLength(before.size);

    const runSeq = lastSeq(t);
    t.services.operations.confirm(loc, id);
    const { row, progress } = await finished(t, loc, id);
    expect(row.status).toBe('completed');
    expect(progress.counts).toEqual(preview.counts);
    expect(progress.done).toBe(N - per + 3);
    // One request per page (the last page beyond 10,000 through searchAfter), nothing written to HighLevel.
    expect(searchesSince(t, loc, runSeq)).toBe(21);
    expect(tandemRequestsSince(t, loc, seq).every((r) => r.method === 'POST' && r.path.startsWith('/contacts/search') && r.status === 200)).toBe(true);
    expect(outboxCounts(t.db, loc).pending).toBe(0);
    expect(contactIds(t.db, loc)).toHaveLength(before.size + per + 3);
    expectNoDuplicates(t, loc);

    const items = new Map(listItems(t.db, id, { limit: 100_000 }).map((it) => [it.key, it]));
    expect(items.size).toBe(N - per + 3);
    for (const { doc, twin } of twins) {
      const [first, second] = [tandemOf(t, loc, doc.id)!, tandemOf(t, loc, twin.id)!];
      expect(before.has(first.id)).toBe(true);
      expect(before.has(second.id)).toBe(false);
      expect(second.fields).toMatchObject({ firstName: 'Twin', email: doc.email });
    }
    for (const [i, doc] of docs.entries()) {
      if (i >= 1200) break;
      const g = group(i);
      const hl = t.emulator.emu.contact(doc.id);
      const c = tandemOf(t, loc, doc.id);
      if (g === 0) expect(c?.fields).toMatchObject({ firstName: doc.firstName, email: doc.email, phone: doc.phone, city: doc.city });
      if (g === 1 || g === 2) {
        expect(before.has(c!.id)).toBe(true);
        // The same email in another case is the same email (matched), and HighLevel's spelling wins.
        expect(c!.fields).toMatchObject({ firstName: doc.firstName, email: doc.email, phone: doc.phone });
      }
      if (g === 3) {
        expect(c!.fields.firstName).toBe(`Renamed${i}`);
        expect(getLinkByContact(t.db, loc, c!.id)!.base.firstName).toBe(`Renamed${i}`);
      }
      if (g === 4) expect(c!.fields.tags).toEqual(expect.arrayContaining(['local-only', 'pulled-tag', ...((doc.tags as string[] | undefined) ?? [])]));
      if (g === 5) {
        // HighLevel's empty city does not clear Tandem's; the ledger still says HighLevel had it.
        expect(c!.fields.city).toBe(doc.city);
        expect(getLinkByContact(t.db, loc, c!.id)!.base.city).toBe(doc.city);
      }
      if (g === 6) expect(c!.fields.firstName).toBe(doc.firstName);
      if (g === 7) expect(getContact(t.db, loc, byRemote.get(doc.id)!)).toMatchObject({ archivedAt: expect.any(Number), fields: before.get(byRemote.get(doc.id)!)!.fields });
      if (g === 8) {
        expect(hl).toBeNull();
        expect(getContact(t.db, loc, byRemote.get(doc.id)!)!.fields).toEqual(before.get(byRemote.get(doc.id)!)!.fields);
      }
      if (g === 9) {
        expect(c!.fields.ownerUserId).toBeNull();
        expect(items.get(`hl:${doc.id}`)).toMatchObject({ action: 'unchanged', reason: UNMATCHED_OWNER_REASON });
      }
      if (g === 10) expect(c!.fields.dnd).toBe(true);
      if (g === 11) expect(c!.fields.customFields).toEqual({ cf_tier: 'gold' });
      if (g === 12) expect(c!.fields.ownerUserId).toBe(olive.id);
    }

    // ---- undo: some records changed since the run are left alone ----
    const changedCreated = docs.filter((_, i) => group(i) === 0).slice(0, 3).map((d) => tandemOf(t, loc, d.id)!.id);
    const renamedInHl = docs.filter((_, i) => group(i) === 3).map((d) => tandemOf(t, loc, d.id)!.id);
    const changedUpdated = renamedInHl.slice(0, 5);
    // A field the run did not write may change: the record is still restored, that edit kept.
    const otherFieldEdited = renamedInHl.slice(5, 7);
    for (const cid of changedCreated) updateContact(t.db, { locationId: loc, id: cid, patch: { lastName: 'EditedAfterPull' }, now: t.clock.now(), origin: 'remote' });
    for (const cid of changedUpdated) updateContact(t.db, { locationId: loc, id: cid, patch: { firstName: 'EditedAfterPull' }, now: t.clock.now(), origin: 'remote' });
    for (const cid of otherFieldEdited) updateContact(t.db, { locationId: loc, id: cid, patch: { companyName: 'Edited Co' }, now: t.clock.now(), origin: 'remote' });
    const afterPull = snapshot(t, loc);
    const undo = await previewed(t, loc, 'undo', id);
    expect(undo.preview.counts).toEqual(counts({ updated: 8 * per - 5, removed: per, skipped: 8 }));
    expect(undo.preview.requests).toBe(0);
    const undoSeq = lastSeq(t);
    t.services.operations.confirm(loc, undo.id);
    const undone = await finished(t, loc, undo.id);
    expect(undone.row.status).toBe('completed');
    expect(undone.progress.counts).toEqual(undo.preview.counts);
    expect(tandemRequestsSince(t, loc, undoSeq)).toHaveLength(0);
    expect(t.services.operations.get(loc, id)!.undoneBy).toBe(undo.id);

    const skippedIds = new Set([...changedCreated, ...changedUpdated]);
    for (const [cid, was] of afterPull) {
      const now = getContact(t.db, loc, cid)!;
      const base = getLinkByContact(t.db, loc, cid)?.base ?? null;
      if (otherFieldEdited.includes(cid)) {
        expect(now.fields).toEqual({ ...before.get(cid)!.fields, companyName: 'Edited Co' });
      } else if (skippedIds.has(cid)) {
        expect({ fields: now.fields, base }).toEqual({ fields: was.fields, base: was.base });
      } else if (!before.has(cid)) {
        // Created by the pull: archived, its link kept as any archived contact's; HighLevel keeps its contact.
        expect(now.archivedAt).not.toBeNull();
        expect(base).toEqual(was.base);
      } else {
        const old = before.get(cid)!;
        expect({ fields: now.fields, archived: now.archivedAt !== null, base }).toEqual({ fields: old.fields, archived: old.archived, base: old.base });
      }
    }
    expect(liveRemoteIds(t.db, loc).length).toBe(N - 2 * per + 3);
    expect(outboxCounts(t.db, loc).pending).toBe(0);
    // The continuous sync meeting the HighLevel contacts of the archived ones does not copy them
    // into Tandem again (unlinked, each came back as a second Tandem contact).
    const count = contactIds(t.db, loc).length;
    const archivedByUndo = [...afterPull.keys()].filter((cid) => !before.has(cid) && !skippedIds.has(cid));
    expect(archivedByUndo).toHaveLength(per);
    for (const cid of archivedByUndo) {
      const doc = t.emulator.emu.contact(getLinkByContact(t.db, loc, cid)!.highlevelId)!;
      const remote = fromHighLevel(doc as never, () => null, { complete: true });
      const outcome = applyRemote({ db: t.db, now: t.clock.now(), settings: { creationDirection: 'bidirectional', updateDirection: 'inbound' } }, loc, remote, { complete: true });
      expect(['echo', 'ignored']).toContain(outcome);
    }
    expect(contactIds(t.db, loc)).toHaveLength(count);
  }, 120_000);

  it('T16: crashes at every named point resume from the checkpoint without duplicates, counts exact', async () => {
    const loc = await newLocation(t, 'Crash Clinic');
    const docs = seedContacts(t.emulator.emu, loc, 1_600);
    // Half already in Tandem (some renamed in HighLevel since), half new.
    seedTandem(t, loc, docs.filter((_, i) => i % 2 === 0));
    for (const [i, doc] of docs.entries()) if (i % 10 === 0) hlEdit(t, loc, doc, { lastName: `Moved${i}` });
    const expected = counts({ created: 800, updated: 160, unchanged: 640 });
    const { id, preview } = await previewed(t, loc, 'pull');
    expect(preview.counts).toEqual(expected);

    // In order: after the first page committed, mid-page (rolled back), after a page read.
    const plan = [
      { point: 'after-page', nth: 1 },
      { point: 'in-page', nth: 300 },
      { point: 'after-read', nth: 2 },
    ];
    const crashes: string[] = [];
    let seen = 0;
    crashAt = (op, point) => {
      const next = plan[0];
      if (op.id !== id || !next || point !== next.point || ++seen < next.nth) return false;
      plan.shift();
      seen = 0;
      crashes.push(point);
      return true;
    };
    try {
      t.services.operations.confirm(loc, id);
      const { row, progress } = await resumeUntilFinished(t, loc, id);
      expect(crashes).toEqual(['after-page', 'in-page', 'after-read']);
      expect(row.status).toBe('completed');
      expect(progress.counts).toEqual(preview.counts);
    } finally {
      crashAt = null;
    }
    expect(contactIds(t.db, loc)).toHaveLength(1_600);
    expect(listItems(t.db, id, { limit: 10_000 })).toHaveLength(1_600);
    expectNoDuplicates(t, loc);
    for (const [i, doc] of docs.entries()) {
      expect(tandemOf(t, loc, doc.id)!.fields.lastName).toBe(i % 10 === 0 ? `Moved${i}` : doc.lastName);
    }
  }, 60_000);

  it('applies a page a slice at a time, other work running between the slices', async () => {
    const loc = await newLocation(t, 'Slice Salon');
    const size = 2 * APPLY_SLICE + 20;
    seedContacts(t.emulator.emu, loc, size);
    const { id } = await previewed(t, loc, 'pull');
    // Other work on the same event loop, as a webhook's acknowledgement would be: what it finds stored.
    const seenByOthers = new Set<number>();
    let next: NodeJS.Immediate | undefined;
    const other = () => {
      seenByOthers.add(contactIds(t.db, loc).length);
      next = setImmediate(other);
    };
    other();
    let progress;
    try {
      t.services.operations.confirm(loc, id);
      ({ progress } = await finished(t, loc, id));
    } finally {
      clearImmediate(next);
    }
    expect(progress.counts).toEqual(counts({ created: size }));
    expect(contactIds(t.db, loc)).toHaveLength(size);
    // Between the slices, not only before the page (the run may end before the other work looks again).
    expect([...seenByOthers].filter((n) => n < size).sort((a, b) => a - b)).toEqual([0, APPLY_SLICE, 2 * APPLY_SLICE]);
  });

  it('cancel mid-run leaves both sides consistent; a later pull finishes the rest without duplicates', async () => {
    const loc = await newLocation(t, 'Cancel Cafe');
    const docs = inSearchOrder(seedContacts(t.emulator.emu, loc, 1_200));
    const { id } = await previewed(t, loc, 'pull');
    let calls = 0;
    // The admin cancels while record 700 is applied: the run stops before record 701.
    crashAt = (op, point) => {
      if (op.id === id && point === 'in-page' && ++calls === 700) t.services.operations.cancel(loc, op.id);
      return false;
    };
    try {
      t.services.operations.confirm(loc, id);
      const { row, progress } = await finished(t, loc, id);
      expect(row.status).toBe('cancelled');
      // The records before the cancel are committed with their cursor; nothing after it.
      expect(progress.counts).toEqual(counts({ created: 700 }));
      expect(JSON.parse(row.checkpoint!)).toMatchObject({ done: 700, searchAfter: [Date.parse(docs[699]!.dateAdded as string), docs[699]!.id] });
    } finally {
      crashAt = null;
    }
    expect(contactIds(t.db, loc)).toHaveLength(700);
    for (const [i, doc] of docs.entries()) expect(tandemOf(t, loc, doc.id)?.fields.email ?? null).toBe(i < 700 ? doc.email : null);
    expect(listItems(t.db, id, { limit: 10_000 })).toHaveLength(700);
    expect(outboxCounts(t.db, loc).pending).toBe(0);

    const again = await previewed(t, loc, 'pull');
    expect(again.preview.counts).toEqual(counts({ created: 500, unchanged: 700 }));
    t.services.operations.confirm(loc, again.id);
    expect((await finished(t, loc, again.id)).progress.counts).toEqual(again.preview.counts);
    expect(contactIds(t.db, loc)).toHaveLength(1_200);
    expectNoDuplicates(t, loc);
  }, 60_000);

  it('undo puts back a Tandem edit the pull replaced, waiting to go to HighLevel as before; Bi-directional then sends it', async () => {
    // QA: undone, the edit was back in Tandem with its ledger, but no longer queued: the two sides
    // differed for good while the panel said everything was sent.
    const loc = await newLocation(t, 'Held Edit Hardware');
    const [doc, other] = seedContacts(t.emulator.emu, loc, 2).map((d) => hlEdit(t, loc, d, { companyName: 'Lumen Software' }));
    const ids = seedTandem(t, loc, [doc!, other!]);
    const id = ids.get(doc!.id)!;
    // Contact update Inbound (the default): the edit is held.
    updateContact(t.db, { locationId: loc, id, patch: { companyName: 'Lumen HELD' }, now: t.clock.now(), origin: 'local' });
    expect(getOutbox(t.db, loc, id)?.kind).toBe('upsert');
    const pull = await previewed(t, loc, 'pull');
    t.services.operations.confirm(loc, pull.id);
    expect((await finished(t, loc, pull.id)).progress.counts).toEqual(counts({ updated: 1, unchanged: 1 }));
    expect(getContact(t.db, loc, id)!.fields.companyName).toBe('Lumen Software');
    expect(getOutbox(t.db, loc, id)).toBeUndefined();

    const undo = await previewed(t, loc, 'undo', pull.id);
    expect(undo.preview.notes).toContain(
      'Tandem’s own edits of 1 contact, which were waiting to go to HighLevel when the pull replaced them with HighLevel’s values, are put back and wait to go to HighLevel again, as before the run (the Contacts tab shows each).',
    );
    expect(undo.preview.notes.join(' ')).not.toContain('Other values put back');
    t.services.operations.confirm(loc, undo.id);
    expect((await finished(t, loc, undo.id)).progress.counts).toEqual(counts({ updated: 1 }));
    expect(getContact(t.db, loc, id)!.fields.companyName).toBe('Lumen HELD');
    expect(getOutbox(t.db, loc, id)).toMatchObject({ kind: 'upsert', status: 'pending' });
    expect(getOutbox(t.db, loc, ids.get(other!.id)!)).toBeUndefined();

    updateSyncSettings(t.db, { locationId: loc, patch: { updateDirection: 'bidirectional' }, user: { id: 'u_admin', name: 'Ada Admin' }, now: t.clock.now() });
    await until(async () => {
      await t.services.sync.runOnce(loc);
      return t.emulator.emu.contact(doc!.id)?.companyName === 'Lumen HELD';
    }, 'the held edit to reach HighLevel');
    expect(outboxCounts(t.db, loc)).toEqual({ pending: 0, failed: 0 });
  });

  it('QA: a country changed alone in HighLevel does not make its phone, written without +prefix, another number; other digits do', async () => {
    const loc = await newLocation(t, 'Phone Country Pharmacy');
    const [same, moved] = seedContacts(t.emulator.emu, loc, 2);
    const docs = [hlEdit(t, loc, same!, { phone: '(415) 555-0123', country: 'US' }), hlEdit(t, loc, moved!, { phone: '(415) 555-0124', country: 'US' })];
    const ids = seedTandem(t, loc, docs);
    expect(getContact(t.db, loc, ids.get(same!.id)!)!.fields.phone).toBe('+14155550123');
    // In HighLevel: the first contact's country changes alone; the second's phone changes too.
    hlEdit(t, loc, docs[0]!, { country: 'DE' });
    hlEdit(t, loc, docs[1]!, { country: 'DE', phone: '030 12345678' });

    const pull = await previewed(t, loc, 'pull');
    expect(pull.preview.counts).toEqual(counts({ updated: 2 }));
    const sample = pull.preview.samples.find((x) => x.highlevelId === same!.id)!;
    expect(sample.changes).toEqual([{ field: 'country', from: 'US', to: 'DE' }]);
    t.services.operations.confirm(loc, pull.id);
    expect((await finished(t, loc, pull.id)).progress.counts).toEqual(pull.preview.counts);

    const first = getContact(t.db, loc, ids.get(same!.id)!)!;
    expect(first.fields).toMatchObject({ country: 'DE', phone: '+14155550123' });
    expect(getLinkByContact(t.db, loc, first.id)!.base).toMatchObject({ country: 'DE', phone: '+14155550123' });
    const second = getContact(t.db, loc, ids.get(moved!.id)!)!;
    expect(second.fields).toMatchObject({ country: 'DE', phone: '+493012345678' });
    expect(getLinkByContact(t.db, loc, second.id)!.base.phone).toBe('+493012345678');

    // The continuous sync, reading the same records against the ledger, finds nothing new.
    for (const doc of [same!, moved!]) {
      const remote = fromHighLevel(t.emulator.emu.contact(doc.id)!, () => null, { complete: true });
      expect(applyRemote({ db: t.db, now: t.clock.now(), settings: { creationDirection: 'bidirectional', updateDirection: 'inbound' } }, loc, remote, { complete: true })).toBe('echo');
    }
  });

  it('undo of a crashed-and-resumed undo restores each record once; records edited since are skipped', async () => {
    const loc = await newLocation(t, 'Undo Upholstery');
    const docs = seedContacts(t.emulator.emu, loc, 700);
    const ids = seedTandem(t, loc, docs);
    for (const [i, doc] of docs.entries()) if (i % 2 === 0) hlEdit(t, loc, doc, { companyName: `Co${i}`, tags: ['pulled'] });
    const before = snapshot(t, loc);
    const pull = await previewed(t, loc, 'pull');
    t.services.operations.confirm(loc, pull.id);
    expect((await finished(t, loc, pull.id)).progress.counts).toEqual(counts({ updated: 350, unchanged: 350 }));
    const edited = ids.get(docs[0]!.id)!;
    updateContact(t.db, { locationId: loc, id: edited, patch: {}, tags: { add: [], remove: ['pulled'] }, now: t.clock.now(), origin: 'remote' });

    const undo = await previewed(t, loc, 'undo', pull.id);
    expect(undo.preview.counts).toEqual(counts({ updated: 349, skipped: 1 }));
    let seen = 0;
    crashAt = (op, point) => op.id === undo.id && point === 'in-batch' && ++seen === 200;
    try {
      t.services.operations.confirm(loc, undo.id);
      const done = await resumeUntilFinished(t, loc, undo.id);
      expect(done.row.status).toBe('completed');
      expect(done.progress.counts).toEqual(undo.preview.counts);
    } finally {
      crashAt = null;
    }
    for (const [cid, was] of before) {
      if (cid === edited) continue;
      expect({ fields: getContact(t.db, loc, cid)!.fields, base: getLinkByContact(t.db, loc, cid)!.base }).toEqual({ fields: was.fields, base: was.base });
    }
    expect(getContact(t.db, loc, edited)!.fields.companyName).toBe('Co0');
    // An undone run cannot be undone again.
    expect(() => t.services.operations.preview({ locationId: loc, userId: 'u_admin' }, 'undo', pull.id)).toThrow(/not undone already/);
  }, 60_000);
});

describe('Pull contacts with the continuous loop running', () => {
  let live: T;
  beforeAll(async () => {
    // A tight budget (10 per second) so the run and the loop must share every window.
    live = (await installedTandem({ sync: { budget: { max: 10, intervalMs: 1000 } }, operations: { sweepMs: 0 } })) as T;
    await control(live.highlevelUrl, 'PATCH', '/config', { rateLimit: { burstMax: 10, burstWindowMs: 1000 } });
  }, 30_000);
  afterAll(async () => {
    await live?.close();
  });

  it('shares the budget: the loop applies webhooks and pushes while the pull runs, no 429, no duplicates', async () => {
    const loc = live.location.id;
    // The loop's first sweep (an empty location) is over: these reach Tandem through the pull, webhooks aside.
    await until(() => getSyncState(live.db, loc).lastFullSweepAt !== null, 'the first sweep', 30_000);
    const docs = seedContacts(live.emulator.emu, loc, 8_000);
    const seq = lastSeq(live);
    const { id } = await previewed(live, loc, 'pull');
    live.services.operations.confirm(loc, id);
    // While the run pages: HighLevel edits arrive as webhooks (the loop applies them to contacts the
    // run may not have reached yet) and a Tandem edit waits in the outbox for the loop to push.
    const token = live.emulator.emu.world.locations[loc]!.privateToken;
    const renamed = [docs[7_990]!, docs[7_995]!, docs[10]!];
    for (const doc of renamed) {
      const res = await call(live.highlevelUrl, 'PUT', `/contacts/${doc.id}`, { token, body: { firstName: `Webhook${doc.id.slice(0, 4)}` } });
      expect(res.status).toBe(200);
    }
    const local = createContact(live.db, {
      locationId: loc,
      fields: { ...emptyContact(), firstName: 'Written', lastName: 'DuringPull', email: 'during.pull@example.com' },
      now: live.clock.now(),
      origin: 'local',
    });
    live.services.sync.wake(loc);
    const pushedWhile = await until(
      () => (getLinkByContact(live.db, loc, local.id) ? { status: live.services.operations.get(loc, id)!.status } : undefined),
      'the loop to push the Tandem edit',
      60_000,
    );
    const { row, progress } = await finished(live, loc, id);
    expect(row.status).toBe('completed');
    // Not starved: the loop's push went out while the run was still going.
    expect(pushedWhile.status).toBe('running');
    // Whoever wrote a contact first (a webhook through the loop, or the run), each is in Tandem once.
    const c = progress.counts.tandem;
    const items = new Map(listItems(live.db, id, { limit: 100_000 }).map((it) => [it.key, it.action]));
    for (const doc of docs) expect(['created', 'updated', 'unchanged']).toContain(items.get(`hl:${doc.id}`));
    // The contact the loop pushed meanwhile was added last in HighLevel: the run's last page may hold it.
    const pushedId = getLinkByContact(live.db, loc, local.id)!.highlevelId;
    expect(items.size).toBe(docs.length + (items.has(`hl:${pushedId}`) ? 1 : 0));
    expect(c.created + c.updated + c.unchanged).toBe(items.size);
    expect(c.failed + c.skipped).toBe(0);
    await settle(live);
    await until(() => queuedInboxEvents(live.db, loc, 10).length === 0 && outboxCounts(live.db, loc).pending === 0, 'the loop to settle', 30_000);
    expectNoDuplicates(live, loc);
    expect(contactIds(live.db, loc)).toHaveLength(docs.length + 1);
    for (const doc of renamed) expect(tandemOf(live, loc, doc.id)!.fields.firstName).toBe(`Webhook${doc.id.slice(0, 4)}`);
    expect(tandemRequestsSince(live, loc, seq).filter((r) => r.status === 429)).toHaveLength(0);
  }, 90_000);
});
