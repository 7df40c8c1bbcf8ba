// Undo of a Pull contacts run: Tandem only (the side a pull overwrites), no HighLevel request.
// For each item of the run that wrote something: when Tandem still holds what the run wrote, the
// values it overwrote are restored, the tags it added removed, and the ledger put back as it was
// (a link the run made is removed); a contact the run created is archived, its link kept as any
// archived contact's is (origin 'remote': nothing is deleted in HighLevel). A record changed since the run is left alone
// ('skipped', "changed since the run"). Items are taken in the run's order, a batch per
// transaction with its checkpoint; an item already undone is never redone.
//
// Step points: 'undo-batch' (between batches, after one committed), 'in-batch' (between two
// records, inside the batch's transaction: a crash rolls the batch back).
import type { Db } from '../../../db/client.ts';
import { archiveContact, getContact, queueIfOutOfStep, updateContact, type Contact } from '../../../db/contacts.ts';
import { deleteLink, getLinkByContact, saveLink } from '../../../db/links.ts';
import { itemTally, listItems, type OperationItemRow, type OperationRow } from '../../../db/operations.ts';
import { transaction } from '../../../db/prepared.ts';
import {
  SCALAR_FIELDS, SYNC_FIELDS, customValueEquals, emptyContact, fieldEquals,
  type ContactFields, type ContactPatch, type CustomFieldValue,
} from '../contact-model.ts';
import { labelOf, type PullBefore, type WrittenFields } from './pull-decide.ts';
import {
  OperationCancelled, SAMPLE_SIZE, counted, emptyCounts, type ContactSample, type Counts, type FieldChange, type Preview, type PreviewContext, type RunContext,
} from './types.ts';
import type { UndoPart } from './undo.ts';

const BATCH = 500;
const CHANGED_SINCE = 'changed since the run';
const ALREADY_RESTORED = 'already as before the run';

interface UndoCheckpoint {
  phase: 'undo';
  /** The target's last item seq handled. */
  afterSeq: number;
  done: number;
}

type UndoDecision =
  | {
      action: 'updated';
      contact: Contact;
      patch: ContactPatch;
      removeTags: string[];
      base: ContactFields | null;
      changes: FieldChange[];
      /** The Tandem change the run made moot (its outbox row's kind), waiting again once undone. */
      outbox?: 'upsert' | 'fill';
    }
  | { action: 'removed'; contact: Contact; changes: FieldChange[] }
  | { action: 'skipped'; reason: string };

/** The target's items an undo looks at: the ones that wrote to Tandem, in the run's order. */
function batch(db: Db, target: OperationRow, afterSeq: number): OperationItemRow[] {
  return listItems(db, target.id, { afterSeq, limit: BATCH, state: 'done', actions: ['created', 'updated'] });
}

function holds(contact: ContactFields, field: string, value: unknown): boolean {
  return fieldEquals(field as keyof ContactFields, contact[field as keyof ContactFields] as never, value as never);
}

/** What undoing one item does to Tandem now (read-only; the run applies it). */
function decideUndo(db: Db, locationId: string, item: OperationItemRow): UndoDecision {
  const before = item.before ? (JSON.parse(item.before) as PullBefore) : null;
  const after = item.after ? (JSON.parse(item.after) as { fields: WrittenFields; tags?: string[] }) : null;
  if (!before || !after || !item.contactId) return { action: 'skipped', reason: 'nothing recorded to restore' };
  const contact = getContact(db, locationId, item.contactId);
  if (!contact) return { action: 'skipped', reason: 'no longer in Tandem' };
  if (contact.archivedAt !== null) return { action: 'skipped', reason: before.created ? ALREADY_RESTORED : CHANGED_SINCE };

  if (before.created) {
    // Exactly as created: every field the run wrote, and nothing else since.
    const expected: ContactFields = { ...emptyContact(), ...(after.fields as Partial<ContactFields>) };
    if (!SYNC_FIELDS.every((f) => holds(contact.fields, f, expected[f]))) return { action: 'skipped', reason: CHANGED_SINCE };
    // No field changes: the sample says "archived in Tandem".
    return { action: 'removed', contact, changes: [] };
  }

  const { customFields: writtenCustom, ...writtenScalars } = after.fields;
  const scalarsHold = Object.entries(writtenScalars).every(([f, v]) => holds(contact.fields, f, v));
  const customHold = Object.entries(writtenCustom ?? {}).every(([id, v]) => customValueEquals(contact.fields.customFields[id], v));
  const added = before.tags ?? [];
  const tagsHold = added.every((t) => contact.fields.tags.includes(t));
  if (!scalarsHold || !customHold || !tagsHold) {
    // Back to the old values already (an earlier, cancelled undo of the same run put them back).
    const { customFields: oldCustom = {}, ...oldScalars } = before.fields;
    const restored =
      Object.entries(oldScalars).every(([f, v]) => holds(contact.fields, f, v)) &&
      Object.entries(oldCustom).every(([id, v]) => customValueEquals(contact.fields.customFields[id], v)) &&
      !added.some((t) => contact.fields.tags.includes(t));
    return { action: 'skipped', reason: restored ? ALREADY_RESTORED : CHANGED_SINCE };
  }

  const patch: ContactPatch = {};
  const changes: FieldChange[] = [];
  const { customFields: oldCustom, ...oldScalars } = before.fields;
  for (const [f, v] of Object.entries(oldScalars)) {
    if (!(SCALAR_FIELDS as readonly string[]).includes(f)) continue;
    (patch as Record<string, unknown>)[f] = v;
    changes.push({ field: f, from: contact.fields[f as keyof ContactFields], to: v });
  }
  for (const [id, v] of Object.entries(oldCustom ?? {})) {
    (patch.customFields ??= {})[id] = v as CustomFieldValue | null;
    changes.push({ field: `customFields.${id}`, from: contact.fields.customFields[id] ?? null, to: v });
  }
  if (added.length) changes.push({ field: 'tags', from: contact.fields.tags, to: contact.fields.tags.filter((t) => !added.includes(t)) });
  return { action: 'updated', contact, patch, removeTags: added, base: before.base, changes, ...(before.outbox ? { outbox: before.outbox } : {}) };
}

function applyUndo(ctx: RunContext, item: OperationItemRow, d: UndoDecision): void {
  const { db, locationId } = ctx;
  const now = ctx.clock.now();
  const base = { key: item.key, entity: 'contact' as const, side: 'tandem' as const, contactId: item.contactId, highlevelId: item.highlevelId, label: item.label };
  if (d.action === 'skipped') {
    ctx.record({ ...base, action: 'skipped', reason: d.reason });
    return;
  }
  if (d.action === 'removed') {
    // Archived as any contact archived in Tandem is, link kept: the continuous sync then leaves its
    // HighLevel contact out of Tandem. Unlinked, it read that contact as new and created it again,
    // a second Tandem contact beside the archived one.
    archiveContact(db, { locationId, id: d.contact.id, now, origin: 'remote' });
    ctx.record({ ...base, action: 'removed', before: { fields: {} }, after: { archived: true } });
    return;
  }
  updateContact(db, { locationId, id: d.contact.id, patch: d.patch, tags: { add: [], remove: d.removeTags }, now, origin: 'remote' });
  if (d.base === null) deleteLink(db, locationId, d.contact.id);
  else {
    const link = getLinkByContact(db, locationId, d.contact.id);
    if (link) saveLink(db, { locationId, contactId: d.contact.id, highlevelId: link.highlevelId, base: d.base, now });
  }
  // The Tandem change that waited to go to HighLevel when the run replaced it (an edit, a contact
  // not yet created there) waits again, as before the run: with the ledger put back, nothing else
  // would ever send it, while the panel said all was sent.
  if (d.outbox) queueIfOutOfStep(db, locationId, d.contact.id, d.outbox, now);
  ctx.record({ ...base, action: 'updated', after: { fields: d.patch, removedTags: d.removeTags } });
}

async function preview(ctx: PreviewContext, target: OperationRow): Promise<Preview> {
  const counts = emptyCounts();
  const samples: ContactSample[] = [];
  let afterSeq = 0;
  let done = 0;
  let waitAgain = 0;
  for (;;) {
    const items = batch(ctx.db, target, afterSeq);
    for (const item of items) {
      const d = decideUndo(ctx.db, ctx.locationId, item);
      counts.tandem[d.action]++;
      if (d.action === 'updated' && d.outbox) waitAgain++;
      if (d.action !== 'skipped' && samples.length < SAMPLE_SIZE) {
        samples.push({
          contactId: d.contact.id,
          ...(item.highlevelId ? { highlevelId: item.highlevelId } : {}),
          label: item.label ?? labelOf(d.contact.fields, d.contact.id),
          side: 'tandem',
          action: d.action === 'removed' ? 'remove' : 'update',
          changes: d.changes,
        });
      }
      afterSeq = item.seq;
    }
    done += items.length;
    ctx.progress({ phase: 'preview', done });
    if (items.length < BATCH) break;
  }
  return { counts, samples, requests: 0, durationMs: 0, notes: pullUndoNotes(counts, waitAgain) };
}

/**
 * What a pull's undo preview says besides its counts, in plain words (counts as the tables show
 * them). `waitAgain`: contacts whose Tandem edit, waiting to go to HighLevel when the pull replaced
 * it with HighLevel's value, is put back and waits again.
 */
export function pullUndoNotes(counts: Counts, waitAgain = 0): string[] {
  const notes = ['Undo writes to Tandem only: HighLevel keeps its contacts, including those the pull copied into Tandem.'];
  if (waitAgain) {
    notes.push(
      `Tandem’s own edits of ${counted(waitAgain, 'contact', 'contacts')}, which were waiting to go to HighLevel when the pull replaced them with HighLevel’s values, are put back and wait to go to HighLevel again, as before the run (the Contacts tab shows each).`,
    );
  }
  if (counts.tandem.updated > waitAgain) {
    notes.push(
      'Other values put back that differ from HighLevel’s come into Tandem again from HighLevel: when the contact next changes there, or at the continuous sync’s daily full check at the latest.',
    );
  }
  const { removed, skipped } = counts.tandem;
  if (removed) {
    notes.push(`${counted(removed, 'contact', 'contacts')} the pull created in Tandem will be archived (restorable); their HighLevel contacts stay in HighLevel and are not copied again.`);
  }
  if (skipped) notes.push(`${counted(skipped, 'contact', 'contacts')} changed since the run ${skipped === 1 ? 'is' : 'are'} left as ${skipped === 1 ? 'it is' : 'they are'}.`);
  return notes;
}

async function run(ctx: RunContext, target: OperationRow): Promise<void> {
  const saved = ctx.checkpoint as UndoCheckpoint | null;
  const cp: UndoCheckpoint = saved?.phase === 'undo' ? { ...saved } : { phase: 'undo', afterSeq: 0, done: 0 };
  // The items an undo looks at: what the run created or updated.
  const total = itemTally(ctx.db, target.id)
    .filter((r) => r.entity === 'contact' && r.state === 'done' && (r.action === 'created' || r.action === 'updated'))
    .reduce((n, r) => n + r.n, 0);
  ctx.progress({ phase: 'undoing', total, done: cp.done });
  for (;;) {
    ctx.step('undo-batch');
    const items = batch(ctx.db, target, cp.afterSeq);
    let cancelled: OperationCancelled | undefined;
    transaction(ctx.db, () => {
      for (const item of items) {
        try {
          ctx.step('in-batch');
        } catch (err) {
          if (!(err instanceof OperationCancelled)) throw err;
          cancelled = err;
          break;
        }
        if (ctx.item(item.key)?.state !== 'done') {
          try {
            transaction(ctx.db, () => applyUndo(ctx, item, decideUndo(ctx.db, ctx.locationId, item)));
          } catch (err) {
            ctx.log.warn({ err, locationId: ctx.locationId, key: item.key }, 'pull undo: record failed');
            ctx.record({
              key: item.key, entity: 'contact', side: 'tandem', action: 'failed', contactId: item.contactId, highlevelId: item.highlevelId, label: item.label,
              // A finished undo cannot run again; the database's own words stay in the log.
              reason: 'Tandem could not put this contact back as it was before the pull; correct it in Tandem by hand if it matters, and contact support with the time of this run.',
            });
          }
        }
        cp.afterSeq = item.seq;
        cp.done++;
      }
      ctx.progress({ done: cp.done });
      ctx.saveCheckpoint(cp);
    });
    if (cancelled) throw cancelled;
    if (items.length < BATCH) break;
  }
}

export const pullUndo: UndoPart = { preview, run };
