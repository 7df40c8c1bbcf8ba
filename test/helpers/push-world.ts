// A location already in sync, seeded fast for push tests and benchmarks: contacts written straight
// into the emulator's world and, in one transaction, the same contacts into Tandem with their links
// and ledgers (as the continuous sync would have left them). Plus drift on either side, and the
// one-time operation's preview → confirm → settle cycle with its HighLevel requests counted from
// the emulator's request log (Tandem's app token only).
import { insertContact, updateContact, type Contact } from '../../db/contacts.ts';
import { saveLink } from '../../db/links.ts';
import { seedContacts } from '../../emulator/contact-seed.ts';
import type { ContactDoc } from '../../emulator/state.ts';
import type { OperationRow } from '../../db/operations.ts';
import type { OperationKind } from '../../db/schema.ts';
import { fromHighLevel, type HighLevelContact } from '../../server/highlevel/contact-mapping.ts';
import type { ContactFields, ContactPatch } from '../../server/sync/contact-model.ts';
import type { Preview, Progress } from '../../server/sync/operations/types.ts';
import type { TestTandem } from './tandem.ts';

type World = Pick<TestTandem, 'db' | 'emulator' | 'services' | 'clock' | 'app'> & { location: { id: string } };

export interface Synced {
  doc: ContactDoc;
  contact: Contact;
}

/** `n` contacts in HighLevel and the same, linked, in Tandem. */
export function seedSynced(t: World, n: number): Synced[] {
  const docs = seedContacts(t.emulator.emu, t.location.id, n);
  const now = t.clock.now();
  return t.db.transaction(() =>
    docs.map((doc) => {
      const fields = fromHighLevel(doc as HighLevelContact, () => null, { complete: true }).fields as ContactFields;
      const contact = insertContact(t.db, { locationId: t.location.id, fields, now, origin: 'remote' });
      saveLink(t.db, { locationId: t.location.id, contactId: contact.id, highlevelId: doc.id, base: fields, remoteUpdatedAt: Date.parse(String(doc.dateUpdated)), now });
      return { doc, contact };
    }),
  );
}

/** A Tandem-side edit that the ledger does not know yet (as if made while the loop was away). */
export function editTandem(t: World, id: string, patch: ContactPatch, tags?: { add: string[]; remove: string[] }): Contact {
  return updateContact(t.db, { locationId: t.location.id, id, patch, ...(tags ? { tags } : {}), now: t.clock.now(), origin: 'remote' });
}

/** A HighLevel-side edit straight in the emulator's world (no webhook). */
export function editHighLevel(t: World, id: string, patch: Record<string, unknown>): ContactDoc {
  const doc = t.emulator.emu.contact(id);
  if (!doc) throw new Error(`no HighLevel contact ${id}`);
  const next = { ...doc, ...patch, dateUpdated: new Date(t.clock.now()).toISOString() } as ContactDoc;
  t.emulator.emu.writeContact(id, t.location.id, next);
  return next;
}

export function deleteHighLevel(t: World, id: string): void {
  t.emulator.emu.writeContact(id, t.location.id, null);
}

/** The location's live HighLevel contacts. */
export function highLevelContacts(t: World): ContactDoc[] {
  const out: ContactDoc[] = [];
  for (const id of t.emulator.emu.contactIds(t.location.id)) {
    const doc = t.emulator.emu.contact(id);
    if (doc) out.push(doc);
  }
  return out;
}

export function lastSeq(t: World): number {
  return t.emulator.emu.requestLog.at(-1)?.seq ?? 0;
}

/** Tandem's requests (its app token) after `seq`. */
export function requestsSince(t: World, seq: number) {
  return t.emulator.emu.requestLog.filter((r) => r.seq > seq && r.appId === t.app.appId);
}

export const ADMIN = { userId: 'u_admin', userName: 'Ada Admin' };

/** Starts a preview and waits for it. */
export async function previewOf(t: World, kind: OperationKind, undoOf?: string): Promise<{ row: OperationRow; preview: Preview; requests: number }> {
  const seq = lastSeq(t);
  const started = t.services.operations.preview({ locationId: t.location.id, ...ADMIN }, kind, undoOf);
  const row = await t.services.operations.settled(started.id);
  if (row.status !== 'previewed') throw new Error(`preview ended ${row.status}: ${row.error}`);
  return { row, preview: JSON.parse(row.preview!) as Preview, requests: requestsSince(t, seq).length };
}

/** Confirms a previewed operation and waits for it to finish. */
export async function confirmAndSettle(t: World, id: string): Promise<{ row: OperationRow; progress: Progress; requests: number; ms: number }> {
  const seq = lastSeq(t);
  const started = performance.now();
  t.services.operations.confirm(t.location.id, id);
  const row = await t.services.operations.settled(id);
  return { row, progress: JSON.parse(row.progress!) as Progress, requests: requestsSince(t, seq).length, ms: performance.now() - started };
}
