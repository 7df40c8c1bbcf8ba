// Undo of a push: for each record the push wrote (updated or created), HighLevel's values from
// before the run are written back, but only where HighLevel still holds what the run wrote (else
// 'skipped', "changed since the run": someone's later edit is never overwritten); contacts the run
// created are deleted in HighLevel and unlinked. The link's ledger goes back to the base recorded
// before the run (none: the link is removed). HighLevel's current values are read in search pages
// (one request per 500 contacts, not one GET per record); the preview reads the same and decides
// with the same function. Records of the undo are keyed like the push's, so a resumed undo skips
// what it finished; a 'pending' record (crash after its write) is recognised by HighLevel holding
// the old values again (or the contact being gone).
// A value under a custom field id HighLevel does not define (`Sendable`, as the push and the
// continuous sync decide it: merge.ts) is left out, on both sides: it is not written back (HighLevel
// refuses or ignores an unknown id) nor compared with what HighLevel holds. Records written before
// pushes left such values out may hold them; the preview counts those contacts.
//
// Step points: 'before-highlevel-write', 'after-highlevel-write', 'after-record'.
import { getContact } from '../../../db/contacts.ts';
import { deleteLink, getLinkByContact, saveLink } from '../../../db/links.ts';
import { enqueueOutbox } from '../../../db/outbox.ts';
import type { SyncSettings } from '../../../db/sync-settings.ts';
import { listItems, type OperationItemRow, type OperationRow } from '../../../db/operations.ts';
import { fromHighLevel, restoreBody, type HighLevelContact, type UpdateContactBody } from '../../highlevel/contact-mapping.ts';
import { isContactNotFound } from '../../highlevel/contacts.ts';
import { HighLevelError } from '../../highlevel/http.ts';
import { ownerMapFor } from '../../../db/highlevel-users.ts';
import { transaction } from '../../../db/prepared.ts';
import { SCALAR_FIELDS, customValueEquals, fieldEquals, type ContactFields, type ScalarField } from '../contact-model.ts';
import { plainProblem } from '../describe-error.ts';
import { pendingLocal, type Sendable } from '../merge.ts';
import { remoteView, type Recorded, type RemoteView } from './push-plan.ts';
import { sendableIn } from '../outbound.ts';
import { stopsRun } from './push-record.ts';
import { counted, emptyCounts, OperationCancelled, SAMPLE_SIZE, type BaseContext, type FieldChange, type Preview, type RunContext } from './types.ts';
import type { UndoPart } from './undo.ts';

const PAGE = 500;
const KEEP_SHARE = 0.25;

interface Before {
  fields: Recorded;
  tags?: string[];
  base: ContactFields | null;
  created?: true;
}
interface After {
  fields: Recorded;
  tags: string[];
}

interface Restore {
  item: OperationItemRow;
  before: Before;
  after: After;
  current: RemoteView | null;
}

export interface UndoPlan {
  action: 'updated' | 'removed' | 'unchanged' | 'skipped';
  reason: string | null;
  /** The recorded values written back (those of custom fields HighLevel does not define left out). */
  fields: Recorded;
  /** Custom field ids whose recorded value is left out: HighLevel does not define them. */
  unsent: string[];
  body: UpdateContactBody | null;
  removeTags: string[];
  remove: boolean;
  changes: FieldChange[];
  requests: number;
}

/** The push's records that wrote to HighLevel (done, or pending: maybe written), in order. */
function writtenItems(ctx: BaseContext, target: OperationRow): OperationItemRow[] {
  const out: OperationItemRow[] = [];
  let after = 0;
  for (;;) {
    const rows = listItems(ctx.db, target.id, { afterSeq: after, limit: 1000, actions: ['updated', 'created'] });
    if (rows.length === 0) return out;
    for (const r of rows) if (r.before && r.highlevelId) out.push(r);
    after = rows.at(-1)!.seq;
  }
}

/** HighLevel's current copy of each contact in `ids` (absent: no longer there), read in pages. */
async function readCurrent(ctx: BaseContext, ids: Set<string>): Promise<{ docs: Map<string, HighLevelContact>; pages: number }> {
  const docs = new Map<string, HighLevelContact>();
  let pages = 0;
  let searchAfter: Array<string | number> | null = null;
  if (ids.size === 0) return { docs, pages };
  for (;;) {
    const page = await ctx.api.searchContacts({ sort: [{ field: 'dateAdded', direction: 'asc' }], pageLimit: PAGE, ...(searchAfter ? { searchAfter } : {}) });
    pages++;
    for (const doc of page.contacts) if (ids.has(doc.id)) docs.set(doc.id, doc);
    const last = page.contacts.at(-1);
    if (last) searchAfter = last.searchAfter?.length ? last.searchAfter : [last.dateAdded ? Date.parse(last.dateAdded) : 0, last.id];
    if (page.contacts.length < PAGE) return { docs, pages };
  }
}

/** The recorded values a write may carry: without those under custom field ids `sendable` refuses. */
function sendableRecorded(recorded: Recorded, sendable: Sendable | undefined): { kept: Recorded; unsent: string[] } {
  if (!sendable) return { kept: recorded, unsent: [] };
  const kept: Recorded = {};
  const unsent: string[] = [];
  for (const [key, value] of Object.entries(recorded)) {
    const id = key.startsWith('customFields.') ? key.slice('customFields.'.length) : null;
    if (id !== null && !sendable(id)) unsent.push(id);
    else kept[key] = value;
  }
  return { kept, unsent };
}

/** Whether HighLevel's `current` holds every value of `recorded` (keys as push-plan.ts names them). */
function holds(current: RemoteView, recorded: Recorded): boolean {
  const doc: Record<string, unknown> = { id: current.id };
  const custom: Array<{ id: string; value: unknown }> = [];
  for (const [key, value] of Object.entries(recorded)) {
    if (key.startsWith('customFields.')) custom.push({ id: key.slice('customFields.'.length), value });
    else doc[key] = value;
  }
  if (custom.length) doc.customFields = custom;
  const wanted = fromHighLevel(doc as HighLevelContact, () => null).fields;
  for (const key of Object.keys(recorded)) {
    if (key === 'assignedTo') {
      if ((current.assignedTo ?? null) !== ((recorded.assignedTo as string | null) || null)) return false;
    } else if (key.startsWith('customFields.')) {
      const id = key.slice('customFields.'.length);
      if (!customValueEquals(current.fields.customFields?.[id], wanted.customFields?.[id])) return false;
    } else {
      const f = key as ScalarField;
      if (!fieldEquals(f, current.fields[f] as never, wanted[f] as never)) return false;
    }
  }
  return true;
}

/** A record an earlier (cancelled) undo of the same run already put back. */
export const ALREADY_RESTORED = 'already as before the run';
/** A restored record some of whose recorded values are of custom fields HighLevel does not define. */
export const UNSENT_REASON = 'values of custom fields that HighLevel doesn’t have are not written back';

/**
 * What undoing one record does; `resumed` when this undo already recorded it pending (maybe
 * written). `sendable`: the custom fields HighLevel defines (absent: never listed, every value goes).
 */
export function decideUndo(r: Restore, resumed: boolean, sendable?: Sendable): UndoPlan {
  const before = sendableRecorded(r.before.fields, sendable);
  const after = sendableRecorded(r.after.fields, sendable).kept;
  const plan: UndoPlan = { action: 'skipped', reason: null, fields: before.kept, unsent: [], body: null, removeTags: [], remove: false, changes: [], requests: 0 };
  const { current } = r;
  if (r.before.created) {
    if (!current) return resumed ? { ...plan, action: 'removed' } : { ...plan, reason: 'already deleted in HighLevel' };
    if (!holds(current, after)) return { ...plan, reason: 'changed since the run' };
    // No field changes: the sample says "deleted in HighLevel" and the panel warns before confirming.
    return { ...plan, action: 'removed', remove: true, requests: 1 };
  }
  if (!current) return { ...plan, reason: 'deleted in HighLevel' };
  if (!holds(current, after)) {
    // Back to the old values already: this undo wrote them before a crash, or an earlier,
    // cancelled undo of the same run did.
    if (holds(current, before.kept)) return resumed ? { ...plan, action: 'updated' } : { ...plan, reason: ALREADY_RESTORED };
    return { ...plan, reason: 'changed since the run' };
  }
  const body = restoreBody(before.kept);
  for (const [key, value] of Object.entries(before.kept)) plan.changes.push({ field: key, from: after[key] ?? null, to: value ?? null });
  const held = new Set(current.fields.tags ?? []);
  plan.removeTags = (r.after.tags ?? []).filter((t) => held.has(t));
  if (plan.removeTags.length) plan.changes.push({ field: 'tags', from: [...held], to: [...held].filter((t) => !plan.removeTags.includes(t)) });
  const hasBody = Object.keys(body).length > 0;
  const reason = before.unsent.length ? UNSENT_REASON : null;
  // The push wrote only such values: nothing left to write back, and the ledger stays as it is.
  if (!hasBody && !plan.removeTags.length && reason) return { ...plan, action: 'unchanged', reason, unsent: before.unsent };
  return { ...plan, action: 'updated', reason, unsent: before.unsent, body: hasBody ? body : null, requests: (hasBody ? 1 : 0) + (plan.removeTags.length ? 1 : 0) };
}

async function gather(ctx: BaseContext, target: OperationRow, sendable: Sendable | undefined): Promise<{ restores: Restore[]; pages: number }> {
  const items = writtenItems(ctx, target);
  const { docs, pages } = await readCurrent(ctx, new Set(items.map((i) => i.highlevelId!)));
  const ownerMap = ownerMapFor(ctx.db, ctx.locationId);
  const restores: Restore[] = [];
  for (const item of items) {
    const doc = docs.get(item.highlevelId!);
    const r: Restore = {
      item,
      before: JSON.parse(item.before!) as Before,
      after: (item.after ? JSON.parse(item.after) : { fields: {}, tags: [] }) as After,
      current: doc ? remoteView(doc, ownerMap) : null,
    };
    // A record the push left pending (stopped before its write) was never written: nothing to undo.
    if (item.state === 'pending' && !(r.current && holds(r.current, sendableRecorded(r.after.fields, sendable).kept))) continue;
    restores.push(r);
  }
  return { restores, pages };
}

async function preview(ctx: Parameters<UndoPart['preview']>[0], target: OperationRow): Promise<Preview> {
  const sendable = sendableIn(ctx.db, ctx.locationId);
  const { restores, pages } = await gather(ctx, target, sendable);
  const counts = emptyCounts();
  const samples: Preview['samples'] = [];
  let writes = 0;
  let changed = 0;
  let resent = 0;
  /** Of those, contacts HighLevel had also changed the same fields of before the push: HighLevel's come back. */
  let overridden = 0;
  /** Contacts whose records hold values of custom fields HighLevel does not define: those stay out. */
  let unsent = 0;
  for (const r of restores) {
    const plan = decideUndo(r, false, sendable);
    counts.highlevel[plan.action]++;
    writes += plan.requests;
    if (plan.reason === 'changed since the run') changed++;
    if (plan.unsent.length) unsent++;
    const pending = plan.action === 'updated' ? pendingAgain(ctx, r, sendable) : [];
    if (pending.length) {
      resent++;
      if (changedOnBoth(r, pending)) overridden++;
    }
    if ((plan.action === 'updated' || plan.action === 'removed') && samples.length < SAMPLE_SIZE) {
      samples.push({
        ...(r.item.contactId ? { contactId: r.item.contactId } : {}),
        highlevelId: r.item.highlevelId!,
        label: r.item.label ?? r.item.key,
        side: 'highlevel',
        action: plan.action === 'removed' ? 'remove' : 'update',
        changes: plan.changes,
      });
    }
  }
  const notes: string[] = [];
  if (changed) notes.push(`${counted(changed, 'contact', 'contacts')} changed in HighLevel since the push: left as ${changed === 1 ? 'it is' : 'they are'} now.`);
  if (resent > overridden) notes.push(resentNote(resent - overridden, ctx.settings));
  if (overridden) notes.push(overriddenNote(overridden));
  if (unsent) {
    notes.push(`${counted(unsent, 'contact has', 'contacts have')} values from before the push in custom fields that HighLevel doesn’t have: those values aren’t written back.`);
  }
  const requests = pages + writes;
  const usable = Math.max(1, ctx.rate.max - Math.ceil(KEEP_SHARE * ctx.rate.max));
  return { counts, samples, requests, durationMs: Math.max(0, Math.ceil(requests / usable) - 1) * ctx.rate.intervalMs, notes };
}

/**
 * What becomes of the Tandem edits the push sent once the undo puts HighLevel's values back: they
 * wait to go out again, and when they go depends on the settings as they are now (what holds them).
 */
export function resentNote(resent: number, settings: Pick<SyncSettings, 'updateDirection' | 'paused'>): string {
  const lead = `${counted(resent, 'contact holds', 'contacts hold')} Tandem edits the push sent: after the undo they wait to go out again`;
  if (settings.updateDirection === 'inbound') {
    return `${lead}, and the continuous sync sends them once Contact update is Bi-directional${settings.paused ? ' and sync is resumed' : ''}.`;
  }
  if (settings.paused) return `${lead}, and the continuous sync sends them when sync resumes, unless Contact update is set to Inbound first.`;
  return `${lead}, and since Contact update is Bi-directional, the continuous sync sends them again within seconds: in HighLevel those fields end up as Tandem has them.`;
}

async function run(ctx: RunContext, target: OperationRow): Promise<void> {
  ctx.progress({ phase: 'reading HighLevel' });
  const sendable = sendableIn(ctx.db, ctx.locationId);
  const { restores } = await gather(ctx, target, sendable);
  let done = 0;
  ctx.progress({ phase: 'restoring', total: restores.length, done });
  for (const r of restores) {
    const mine = ctx.item(r.item.key);
    if (mine?.state !== 'done') await restoreOne(ctx, r, mine?.state === 'pending', sendable);
    ctx.progress({ done: ++done });
    ctx.step('after-record');
  }
}

async function restoreOne(ctx: RunContext, r: Restore, resumed: boolean, sendable: Sendable | undefined): Promise<void> {
  const highlevelId = r.item.highlevelId!;
  const item = { key: r.item.key, entity: 'contact' as const, side: 'highlevel' as const, contactId: r.item.contactId, highlevelId, label: r.item.label };
  const plan = decideUndo(r, resumed, sendable);
  if (plan.action === 'skipped' || plan.action === 'unchanged') return ctx.record({ ...item, action: plan.action, reason: plan.reason });
  ctx.record({ ...item, state: 'pending', action: plan.action, reason: plan.reason, after: { fields: plan.fields, tags: plan.removeTags } });
  ctx.step('before-highlevel-write');
  try {
    if (plan.remove) await ctx.api.deleteContact(highlevelId);
    if (plan.body) await ctx.api.updateContact(highlevelId, plan.body);
    if (plan.removeTags.length) await ctx.api.removeTags(highlevelId, plan.removeTags);
  } catch (err) {
    // ctx.api waited out transient failures (patient-api.ts); HighLevel staying down stops the run.
    if (err instanceof OperationCancelled || !(err instanceof HighLevelError) || stopsRun(err)) throw err;
    if (isContactNotFound(err)) return ctx.record({ ...item, action: 'skipped', reason: 'deleted in HighLevel' });
    // A finished undo cannot run again: what is left to the admin is to set the values back by hand.
    return ctx.record({ ...item, action: 'failed', reason: `${plainProblem(err)} This contact’s values from before the push were not put back; set them back in HighLevel by hand if they matter.` });
  }
  try {
    ctx.step('after-highlevel-write');
  } catch (err) {
    if (err instanceof OperationCancelled) settle(ctx, r, item, plan, sendable);
    throw err;
  }
  settle(ctx, r, item, plan, sendable);
}

/**
 * The ledger back to its base before the push (or no link), and the record done, in one transaction.
 * Where Tandem holds values the restored ledger does not (a Tandem edit the push had sent), that edit
 * is pending again, and it is queued as any pending Tandem change is: the push had emptied its
 * outbox row (the loop found it sent), and without one the two sides stayed apart while the panel
 * said nothing was waiting. The loop then sends it, or holds it, as Contact update says. A value of
 * a custom field HighLevel does not define (`sendable`) is not such an edit: no push sends it.
 */
function settle(ctx: RunContext, r: Restore, item: { key: string; contactId: string | null; highlevelId: string }, plan: UndoPlan, sendable: Sendable | undefined): void {
  const now = ctx.clock.now();
  transaction(ctx.db, () => {
    const contactId = item.contactId;
    if (contactId) {
      if (plan.action === 'removed' || r.before.base === null) deleteLink(ctx.db, ctx.locationId, contactId);
      else {
        const link = getLinkByContact(ctx.db, ctx.locationId, contactId);
        saveLink(ctx.db, { locationId: ctx.locationId, contactId, highlevelId: link?.highlevelId ?? item.highlevelId, base: r.before.base, now });
        if (pendingAgain(ctx, r, sendable).length) enqueueOutbox(ctx.db, ctx.locationId, contactId, 'upsert', now);
      }
    }
    ctx.record({ ...item, entity: 'contact', side: 'highlevel', label: r.item.label, state: 'done', action: plan.action, reason: plan.reason, after: { fields: plan.fields, tags: plan.removeTags } });
  });
}

/**
 * Contacts whose Tandem edits the push had sent over a change HighLevel had made to the same field
 * since the last sync: the undo puts HighLevel's change back, and it is then the more recent
 * change of the two, so it comes into Tandem over Tandem's edit, whatever Contact update says (QA:
 * the note promised those edits would go out again).
 */
export function overriddenNote(overridden: number): string {
  return `For ${counted(overridden, 'contact', 'contacts')}, HighLevel had changed the same fields before the push: the undo puts HighLevel’s values back, and they then come into Tandem over Tandem’s edits of those fields, as the more recent change.`;
}

/** Whether a field the push wrote had changed on both sides since the last sync: in HighLevel (its recorded value is not the ledger's) and in Tandem (`pending`, pendingAgain's). */
function changedOnBoth(r: Restore, pending: readonly string[]): boolean {
  const base = r.before.base;
  if (base === null) return false;
  const remote = fromHighLevel({ ...(r.before.fields as Record<string, unknown>), id: r.item.highlevelId ?? '' } as HighLevelContact, () => undefined, {}).fields;
  return SCALAR_FIELDS.some((f) => f !== 'ownerUserId' && pending.includes(f) && remote[f] !== undefined && !fieldEquals(f, remote[f] as never, base[f] as never));
}

/** The fields a restored (still linked) record's live Tandem contact holds apart from its restored ledger, that a push can send (none: nothing waits again). */
function pendingAgain(ctx: BaseContext, r: Restore, sendable: Sendable | undefined): string[] {
  const base = r.before.base;
  if (!r.item.contactId || base === null || r.before.created) return [];
  const contact = getContact(ctx.db, ctx.locationId, r.item.contactId);
  return contact !== undefined && contact.archivedAt === null ? pendingLocal(base, contact.fields, sendable) : [];
}

export const pushUndo: UndoPart = { preview, run };
