// Pull contacts: every HighLevel contact of the location into Tandem, HighLevel's values winning
// (rules in pull-decide.ts). HighLevel is read in search pages of 500 sorted by dateAdded (a
// contact's place never moves while the run pages; one added meanwhile comes last), paged with
// `searchAfter`, which also reaches past the 10,000-record ceiling of page numbers. Nothing is
// written to HighLevel: a run costs one request per page, its preview the same.
//
// Each slice of a page (APPLY_SLICE records) is applied in ONE transaction: the Tandem writes
// (origin 'remote', so nothing is queued to HighLevel), the ledgers, the items and the checkpoint
// (the cursor of the last record applied). A crash anywhere leaves either the whole slice or none of
// it, and the run resumes after the last committed record; an item already recorded is never
// redone (keys are `hl:<HighLevel id>`). A cancel takes effect between two records: the records
// before it are committed with the cursor.
//
// Step points (tests crash here, T16): 'after-read' (a page read, nothing of it written),
// 'in-page' (between two records, inside a slice's transaction: a crash rolls the slice back),
// 'after-page' (a page and its checkpoint committed).
import { dropOutboxIfInStep, insertContact, updateContact } from '../../../db/contacts.ts';
import { ownerMapFor } from '../../../db/highlevel-users.ts';
import { insertLink, saveLink } from '../../../db/links.ts';
import type { OutboxKind } from '../../../db/outbox.ts';
import { transaction } from '../../../db/prepared.ts';
import { fromHighLevel, type OwnerMap, type RemoteContact } from '../../highlevel/contact-mapping.ts';
import type { SearchedContact } from '../../highlevel/contacts.ts';
import { APPLY_SLICE, nextTurn, PAGE_LIMIT } from '../reconcile.ts';
import { changesOf, createdFields, decidePull, labelOf, readSlice, SKIP_REASON, UNMATCHED_OWNER_REASON, type PullBefore, type PullDecision } from './pull-decide.ts';
import { tandemSaveProblem } from '../describe-error.ts';
import {
  OperationCancelled, SAMPLE_SIZE, counted, emptyCounts,
  type BaseContext, type ContactSample, type OperationHandler, type Preview, type PreviewContext, type RunContext,
} from './types.ts';
export { pullUndo } from './pull-undo.ts';

/** Share of each burst window the runner leaves to the continuous loop (runner.ts KEEP_SHARE). */
const KEEP_SHARE = 0.25;

interface PullCheckpoint {
  phase: 'pull';
  /** The cursor of the last record applied; null before the first page. */
  searchAfter: Array<string | number> | null;
  pages: number;
  /** Records looked at so far (progress). */
  done: number;
}

type Page = { contacts: SearchedContact[]; total: number };

/**
 * One page after `searchAfter`. ctx.api waits out budget deferrals and transient failures (with
 * backoff, patient-api.ts): a page read fails only when HighLevel refuses it or stays down.
 */
export async function readPage(ctx: BaseContext, searchAfter: Array<string | number> | null, pageLimit = PAGE_LIMIT): Promise<Page> {
  return ctx.api.searchContacts({
    sort: [{ field: 'dateAdded', direction: 'asc' }],
    pageLimit,
    ...(searchAfter ? { searchAfter } : {}),
  });
}

function cursorOf(doc: SearchedContact): Array<string | number> {
  return doc.searchAfter?.length ? doc.searchAfter : [doc.dateAdded ? Date.parse(doc.dateAdded) : 0, doc.id];
}

/** At least how long the rate limits make `requests` take, given the share left to the loop. */
export function floorDurationMs(requests: number, rate: BaseContext['rate'], keepShare = KEEP_SHARE): number {
  const usable = Math.max(1, rate.max - Math.ceil(keepShare * rate.max));
  return Math.max(0, Math.ceil(requests / usable) - 1) * rate.intervalMs;
}

function sampleOf(d: PullDecision, remote: RemoteContact): ContactSample | undefined {
  if (d.action !== 'created' && d.action !== 'updated') return undefined;
  return {
    ...(d.action === 'updated' ? { contactId: d.contact.id } : {}),
    highlevelId: remote.id,
    label: labelOf(d.action === 'created' ? d.fields : d.contact.fields, remote.id),
    side: 'tandem',
    action: d.action === 'created' ? 'create' : 'update',
    changes: changesOf(d),
  };
}

async function preview(ctx: PreviewContext): Promise<Preview> {
  const ownerMap = ownerMapFor(ctx.db, ctx.locationId);
  const claimed = new Set<string>();
  const counts = emptyCounts();
  const samples: ContactSample[] = [];
  let unmatchedOwners = 0;
  let archived = 0;
  let searchAfter: Array<string | number> | null = null;
  let pages = 0;
  let done = 0;
  for (;;) {
    const page = await readPage(ctx, searchAfter);
    pages++;
    for (let from = 0; from < page.contacts.length; from += APPLY_SLICE) {
      // Nothing to wait for in a preview: the event loop runs what waits every APPLY_SLICE records.
      if (from > 0) await nextTurn();
      const remotes = page.contacts.slice(from, from + APPLY_SLICE).map((doc) => fromHighLevel(doc, ownerMap, { complete: true }));
      const known = readSlice(ctx.db, ctx.locationId, remotes);
      for (const remote of remotes) {
        const d = decidePull(ctx.db, ctx.locationId, remote, claimed, known?.get(remote.id));
        counts.tandem[d.action]++;
        if (d.action !== 'skipped' && d.reason === UNMATCHED_OWNER_REASON) unmatchedOwners++;
        if (d.action === 'skipped' && d.reason === SKIP_REASON.archived) archived++;
        const sample = samples.length < SAMPLE_SIZE ? sampleOf(d, remote) : undefined;
        if (sample) samples.push(sample);
      }
    }
    done += page.contacts.length;
    ctx.progress({ phase: 'preview', total: page.total, done });
    const last = page.contacts.at(-1);
    if (!last || page.contacts.length < PAGE_LIMIT) break;
    searchAfter = cursorOf(last);
  }
  const notes: string[] = ['Pull writes to Tandem only; HighLevel is read, never changed.'];
  if (unmatchedOwners) notes.push(`${counted(unmatchedOwners, 'contact has', 'contacts have')} a HighLevel owner with no paired Tandem user: the owner in Tandem is left as it is (Sync users repairs pairings).`);
  if (archived) notes.push(`${counted(archived, 'contact archived in Tandem is', 'contacts archived in Tandem are')} skipped: a pull does not bring back what was archived in Tandem (restored through Tandem’s REST API, a pull brings it again).`);
  // Reads only: a page per 500 contacts, and one more when the last page is exactly full.
  return { counts, samples, requests: pages, durationMs: floorDurationMs(pages, ctx.rate), notes };
}

/** Writes one decision to Tandem (inside the page's transaction) and records its item. */
function apply(ctx: RunContext, remote: RemoteContact, d: PullDecision): void {
  const { db, locationId } = ctx;
  const now = ctx.clock.now();
  const key = `hl:${remote.id}`;
  const base = { key, entity: 'contact' as const, side: 'tandem' as const, highlevelId: remote.id };
  if (d.action === 'skipped') {
    ctx.record({ ...base, action: 'skipped', contactId: d.contactId, label: labelOf(remote.fields, remote.id), reason: d.reason });
    return;
  }
  if (d.action === 'created') {
    const created = insertContact(db, { locationId, fields: d.fields, now, origin: 'remote' });
    insertLink(db, { locationId, contactId: created.id, highlevelId: remote.id, base: d.base, remoteUpdatedAt: remote.dateUpdated ?? null, now });
    ctx.record({
      ...base,
      action: 'created',
      contactId: created.id,
      label: labelOf(created.fields, remote.id),
      reason: d.reason,
      before: { fields: {}, base: null, created: true },
      after: { fields: createdFields(created.fields) },
    });
    return;
  }
  if (d.action === 'updated') {
    updateContact(db, { locationId, id: d.contact.id, patch: d.patch, tags: { add: d.addTags, remove: [] }, now, origin: 'remote' });
  }
  // A link made now, or a ledger that took the written values; an unchanged linked contact keeps its ledger.
  let dropped: OutboxKind | undefined;
  if (d.link === null || d.action === 'updated') {
    saveLink(db, { locationId, contactId: d.contact.id, highlevelId: remote.id, base: d.base, remoteUpdatedAt: d.link ? undefined : (remote.dateUpdated ?? null), now });
    // A Tandem edit HighLevel's value replaced no longer waits (nor counts as held); undo puts it back.
    if (d.action === 'updated') dropped = dropOutboxIfInStep(db, locationId, d.contact.id);
  }
  const before: PullBefore | undefined = d.action !== 'updated' ? undefined : dropped === 'upsert' || dropped === 'fill' ? { ...d.before, outbox: dropped } : d.before;
  ctx.record({
    ...base,
    action: d.action,
    contactId: d.contact.id,
    label: labelOf(d.contact.fields, remote.id),
    reason: d.reason,
    ...(before ? { before, after: { fields: d.after, ...(d.addTags.length ? { tags: d.addTags } : {}) } } : {}),
  });
}

async function run(ctx: RunContext): Promise<void> {
  const { db } = ctx;
  const saved = ctx.checkpoint as PullCheckpoint | null;
  const cp: PullCheckpoint = saved?.phase === 'pull' ? { ...saved } : { phase: 'pull', searchAfter: null, pages: 0, done: 0 };
  const ownerMap: OwnerMap = ownerMapFor(db, ctx.locationId);
  const claimed = new Set<string>();
  ctx.progress({ phase: 'pulling' });
  for (;;) {
    ctx.step();
    const page = await readPage(ctx, cp.searchAfter);
    ctx.step('after-read');
    let cancelled: OperationCancelled | undefined;
    // A slice of the page at a time (APPLY_SLICE, as the continuous pull), each committed with the
    // cursor of its last record, with a turn of the event loop between two: the app thread's other
    // work (the panel, the REST API, moving webhooks into the inbox) goes on while a large location
    // is pulled.
    for (let from = 0; from < page.contacts.length && !cancelled; from += APPLY_SLICE) {
      if (from > 0) await nextTurn();
      const last = from + APPLY_SLICE >= page.contacts.length;
      // Synchronous from here to the commit: no await inside a transaction.
      transaction(db, () => {
        const docs = page.contacts.slice(from, from + APPLY_SLICE);
        const remotes = docs.map((doc) => fromHighLevel(doc, ownerMap, { complete: true }));
        const known = readSlice(db, ctx.locationId, remotes);
        for (const [i, doc] of docs.entries()) {
          try {
            ctx.step('in-page');
          } catch (err) {
            if (!(err instanceof OperationCancelled)) throw err;
            cancelled = err;
            break;
          }
          const key = `hl:${doc.id}`;
          if (ctx.item(key)?.state !== 'done') {
            const remote = remotes[i]!;
            try {
              // A savepoint per record: a record that cannot be written fails alone.
              transaction(db, () => apply(ctx, remote, decidePull(db, ctx.locationId, remote, claimed, known?.get(remote.id))));
            } catch (err) {
              ctx.log.warn({ err, locationId: ctx.locationId, highlevelId: doc.id }, 'pull: record failed');
              ctx.record({ key, entity: 'contact', side: 'tandem', action: 'failed', highlevelId: doc.id, label: labelOf(remote.fields, doc.id), reason: tandemSaveProblem('contact', 'run Pull contacts again') });
            }
          }
          cp.searchAfter = cursorOf(doc);
          cp.done++;
        }
        if (last && !cancelled) cp.pages++;
        ctx.progress({ total: page.total, done: cp.done });
        ctx.saveCheckpoint(cp);
      });
    }
    if (cancelled) throw cancelled;
    ctx.step('after-page');
    if (page.contacts.length < PAGE_LIMIT) break;
  }
}

export const pullHandler: OperationHandler = { kind: 'pull', preview, run };
