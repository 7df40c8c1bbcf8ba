// Push contacts (kind 'push'): every live Tandem contact of the location to HighLevel, Tandem's
// values winning (push-plan.ts decides, for the preview and the run alike). HighLevel is read in
// search pages of 500 sorted by dateAdded (a contact's place never moves while the run pages): a
// linked contact is compared with its copy on the page and only the differences are written (no
// per-contact GET); an unlinked HighLevel contact is remembered by email and E.164 phone. Then the
// Tandem contacts not met on the pages: linked ones whose copy was not seen are skipped (deleted in
// HighLevel: the continuous sync archives them), unlinked ones are matched in memory or created.
// HighLevel keeps one contact per email or phone: an unlinked contact whose email or phone another
// contact of the push already holds there, or a contact archived in Tandem whose HighLevel contact
// is still linked to it, is skipped, naming that contact (HeldKeys; after a resume the lookup
// before a create tells the same), so the preview counts what the run does.
//
// Crash safety, per record: the item is recorded 'pending' with `before` BEFORE the HighLevel write,
// and the ledger and the item 'done' are committed in one transaction after it. A resumed run meets
// a pending item as "maybe written": it re-decides against HighLevel now (the page, or a lookup for
// a create) and keeps the original `before`. After a resume the in-memory index of unlinked
// HighLevel contacts is incomplete, so every create is preceded by a lookup (findDuplicate); so is
// the retry of any ambiguous create (no answer, 5xx, "422 yet created"). A contact with neither
// email nor E.164 phone cannot be looked up: a crash between its create and the commit can leave a
// duplicate in HighLevel.
//
// Step points (tests crash here, T16): 'after-page' (a page done and checkpointed),
// 'before-highlevel-write' (item pending, nothing sent), 'after-highlevel-write' (sent, not
// committed), 'after-record' (committed).
import { getContact, listContacts, type Contact, type ContactCursor } from '../../../db/contacts.ts';
import { ownerMapFor, userMapFor } from '../../../db/highlevel-users.ts';
import { listItems } from '../../../db/operations.ts';
import { pendingInboxCount } from '../../../db/sync-status.ts';
import { getLinkByContact, getLinkByRemote } from '../../../db/links.ts';
import type { OwnerMap } from '../../highlevel/contact-mapping.ts';
import type { SearchedContact } from '../../highlevel/contacts.ts';
import { isE164, type ContactFields } from '../contact-model.ts';
import { emailKey, keysOf, phoneKey } from '../held-elsewhere.ts';
import { APPLY_SLICE, nextTurn } from '../reconcile.ts';
import { labelOf, remoteView, type DuplicateOf, type RemoteView } from './push-plan.ts';
import { sendableIn } from '../outbound.ts';
import { planFor, pushOne, type PushEnv, type Target } from './push-record.ts';
import { counted, emptyCounts, SAMPLE_SIZE, type BaseContext, type OperationHandler, type Preview, type RunContext } from './types.ts';
export { pushUndo } from './push-undo.ts';

export const PUSH_PAGE = 500;
/** Share of each burst window the runner leaves to the continuous loop (runner.ts KEEP_SHARE). */
const KEEP_SHARE = 0.25;

export interface PushCheckpoint {
  /** 'pages': reading HighLevel after `searchAfter`; 'tandem': the Tandem contacts not met on a page. */
  phase: 'pages' | 'tandem';
  searchAfter: Array<string | number> | null;
  pages: number;
}

/** Unlinked HighLevel contacts by email (lowercase) and E.164 phone; each matches one Tandem contact at most. */
class RemoteIndex {
  private byEmail = new Map<string, RemoteView>();
  private byPhone = new Map<string, RemoteView>();
  add(r: RemoteView): void {
    const email = r.fields.email?.toLowerCase();
    if (email && !this.byEmail.has(email)) this.byEmail.set(email, r);
    const phone = r.fields.phone ?? null;
    if (isE164(phone) && !this.byPhone.has(phone!)) this.byPhone.set(phone!, r);
  }
  claim(fields: ContactFields): RemoteView | null {
    const email = fields.email?.toLowerCase();
    const found = (email ? this.byEmail.get(email) : undefined) ?? (isE164(fields.phone) ? this.byPhone.get(fields.phone!) : undefined);
    if (!found) return null;
    const foundEmail = found.fields.email?.toLowerCase();
    if (foundEmail && this.byEmail.get(foundEmail) === found) this.byEmail.delete(foundEmail);
    const foundPhone = found.fields.phone;
    if (foundPhone && this.byPhone.get(foundPhone) === found) this.byPhone.delete(foundPhone);
    return found;
  }
}

/**
 * The emails and phones HighLevel holds (or will hold once this push wrote them) on the contacts
 * linked to Tandem contacts met so far, by owner: HighLevel refuses a second contact with one of
 * them (held-elsewhere.ts compares them as its duplicate rule does), so a second Tandem contact with
 * the same email or phone is skipped, in the preview and the run alike.
 */
class HeldKeys {
  private held = new Map<string, { contactId: string; label: string; archived?: true }>();
  /** What HighLevel holds after the push: Tandem's value where it has one (empty never clears). */
  hold(contact: Contact, remote: RemoteView | null): void {
    this.holdKeys({ contactId: contact.id, label: labelOf(contact.fields, contact.id) }, contact.fields.email ?? remote?.fields.email, contact.fields.phone ?? remote?.fields.phone);
  }
  /** What HighLevel holds of a contact the push does not write: its own values. */
  holdAsIs(owner: { contactId: string; label: string; archived: true }, remote: RemoteView): void {
    this.holdKeys(owner, remote.fields.email, remote.fields.phone);
  }
  private holdKeys(owner: { contactId: string; label: string; archived?: true }, email: string | null | undefined, phone: string | null | undefined): void {
    for (const key of keysOf(email, phone)) if (!this.held.has(key)) this.held.set(key, owner);
  }
  /** The other contact holding one of the keys `contact` would write to HighLevel (only those that differ from `remote`'s). */
  conflict(contact: Contact, remote: RemoteView | null): DuplicateOf | undefined {
    const { email, phone } = contact.fields;
    const writesEmail = emailKey(email) !== emailKey(remote?.fields.email);
    const writesPhone = phoneKey(phone) !== phoneKey(remote?.fields.phone);
    for (const [field, key] of [['email', writesEmail ? emailKey(email) : null], ['phone', writesPhone ? phoneKey(phone) : null]] as const) {
      const owner = key ? this.held.get(key) : undefined;
      if (owner && owner.contactId !== contact.id) return { ...owner, field };
    }
    return undefined;
  }
}

export function cursorOf(doc: SearchedContact): Array<string | number> {
  return doc.searchAfter?.length ? doc.searchAfter : [doc.dateAdded ? Date.parse(doc.dateAdded) : 0, doc.id];
}

/** At least how long the rate limits make `requests` take, given the share left to the loop. */
export function floorMs(requests: number, rate: BaseContext['rate']): number {
  const usable = Math.max(1, rate.max - Math.ceil(KEEP_SHARE * rate.max));
  return Math.max(0, Math.ceil(requests / usable) - 1) * rate.intervalMs;
}

interface Walk {
  ctx: BaseContext;
  ownerMap: OwnerMap;
  resume: PushCheckpoint | null;
  /** Already decided in this run (preview: met; run: an item 'done'). */
  handled(contactId: string): boolean;
  visit(t: Target): Promise<void>;
  /** After each page (the run checkpoints here). */
  afterPage(cp: PushCheckpoint): void;
}

/** The one traversal preview and run share: pages first, then the Tandem contacts not met. */
async function walk(w: Walk): Promise<{ pages: number }> {
  const { db, locationId, api } = w.ctx;
  const index = new RemoteIndex();
  const held = new HeldKeys();
  const complete = w.resume === null || (w.resume.phase === 'pages' && w.resume.searchAfter === null);
  let pages = w.resume?.pages ?? 0;
  // Without a write to wait for (a preview, records in step), a page would be one synchronous
  // stretch: the event loop runs what waits every APPLY_SLICE contacts, as in the pulls.
  let seen = 0;
  const breathe = () => (++seen % APPLY_SLICE === 0 ? nextTurn() : undefined);
  if (w.resume?.phase !== 'tandem') {
    let searchAfter = w.resume?.searchAfter ?? null;
    for (;;) {
      const page = await api.searchContacts({ sort: [{ field: 'dateAdded', direction: 'asc' }], pageLimit: PUSH_PAGE, ...(searchAfter ? { searchAfter } : {}) });
      pages++;
      for (const doc of page.contacts) {
        await breathe();
        const link = getLinkByRemote(db, locationId, doc.id);
        if (!link) {
          index.add(remoteView(doc, w.ownerMap));
          continue;
        }
        const contact = getContact(db, locationId, link.contactId);
        if (!contact || contact.archivedAt !== null) {
          // Not pushed, yet still linked: the run's create of a contact with its email or phone is
          // refused as a duplicate of it (push-record.ts), so the walk skips that contact up front.
          const owner = { contactId: link.contactId, label: contact ? labelOf(contact.fields, contact.id) : 'a contact no longer in Tandem', archived: true as const };
          held.holdAsIs(owner, remoteView(doc, w.ownerMap));
          continue;
        }
        const remote = remoteView(doc, w.ownerMap);
        held.hold(contact, remote);
        if (w.handled(contact.id)) continue;
        await w.visit({ contact, link, remote, gone: false, lookup: false });
      }
      const last = page.contacts.at(-1);
      if (last) searchAfter = cursorOf(last);
      const finished = page.contacts.length < PUSH_PAGE;
      w.afterPage({ phase: finished ? 'tandem' : 'pages', searchAfter, pages });
      if (finished) break;
    }
  }
  let cursor: ContactCursor | undefined;
  for (;;) {
    const batch = listContacts(db, locationId, { limit: 500, ...(cursor ? { cursor } : {}) });
    for (const contact of batch.contacts) {
      await breathe();
      // A tombstoned link of a live contact (restored in Tandem after HighLevel deleted it) counts as
      // none: the contact goes to HighLevel as a new one, as the continuous sync sends it.
      const found = getLinkByContact(db, locationId, contact.id);
      const link = found && found.remoteDeletedAt === null ? found : undefined;
      if (w.handled(contact.id)) {
        // Pushed before a resume: HighLevel holds its values now.
        if (link) held.hold(contact, null);
        continue;
      }
      if (link) {
        await w.visit({ contact, link, remote: null, gone: true, lookup: false });
        continue;
      }
      const match = index.claim(contact.fields);
      const duplicateOf = held.conflict(contact, match);
      if (duplicateOf) {
        await w.visit({ contact, link: null, remote: null, gone: false, lookup: false, duplicateOf });
        continue;
      }
      held.hold(contact, match);
      await w.visit({ contact, link: null, remote: match, gone: false, lookup: !match && !complete });
    }
    const last = batch.contacts.at(-1);
    if (!batch.nextCursor || !last) break;
    cursor = { updatedAt: last.updatedAt, id: last.id };
  }
  return { pages };
}

async function preview(ctx: Parameters<OperationHandler['preview']>[0]): Promise<Preview> {
  const userMap = userMapFor(ctx.db, ctx.locationId);
  const sendable = sendableIn(ctx.db, ctx.locationId);
  const counts = emptyCounts();
  const samples: Preview['samples'] = [];
  const met = new Set<string>();
  const unpairedOwners = new Set<string>();
  /** Skipped records by why: their linked HighLevel contact is gone, or another Tandem contact's HighLevel contact has their email or phone. */
  const skippedAs = { gone: 0, duplicate: 0 };
  /** Contacts holding values of custom fields HighLevel does not define, which stay in Tandem. */
  let unsent = 0;
  let writes = 0;
  const { pages } = await walk({
    ctx,
    ownerMap: ownerMapFor(ctx.db, ctx.locationId),
    resume: null,
    handled: (id) => met.has(id),
    async visit(t) {
      met.add(t.contact.id);
      const plan = planFor(t, ctx.locationId, userMap, sendable);
      counts.highlevel[plan.action]++;
      if (plan.action === 'skipped') skippedAs[t.duplicateOf ? 'duplicate' : 'gone']++;
      if (plan.unsent.length) unsent++;
      writes += plan.requests;
      if (!plan.ownerSent && t.contact.fields.ownerUserId) unpairedOwners.add(t.contact.fields.ownerUserId);
      if ((plan.action === 'created' || plan.action === 'updated') && samples.length < SAMPLE_SIZE) {
        samples.push({
          contactId: t.contact.id,
          ...(t.remote ? { highlevelId: t.remote.id } : {}),
          label: labelOf(t.contact.fields, t.contact.id),
          side: 'highlevel',
          action: plan.action === 'created' ? 'create' : 'update',
          changes: plan.changes,
        });
      }
      ctx.progress({ done: met.size });
    },
    afterPage: (cp) => ctx.progress({ phase: cp.phase === 'pages' ? 'reading HighLevel' : 'deciding', done: met.size }),
  });
  const notes: string[] = [];
  if (skippedAs.gone) {
    notes.push(`${counted(skippedAs.gone, 'linked contact was', 'linked contacts were')} deleted in HighLevel: not recreated (the continuous sync archives ${skippedAs.gone === 1 ? 'it' : 'them'} in Tandem).`);
  }
  if (skippedAs.duplicate) {
    notes.push(
      `${counted(skippedAs.duplicate, 'contact has', 'contacts have')} the email or phone of another Tandem contact that HighLevel already holds: not created twice (change the email or phone of one of the two on the Contacts tab, or delete the other in HighLevel; History names each).`,
    );
  }
  if (unpairedOwners.size) {
    notes.push(`${counted(unpairedOwners.size, 'Tandem owner has', 'Tandem owners have')} no paired HighLevel user: their contacts are pushed without an owner change (Sync users repairs pairings).`);
  }
  if (unsent) {
    notes.push(`${counted(unsent, 'contact has', 'contacts have')} values in custom fields that HighLevel doesn’t have: those values stay in Tandem and aren’t sent.`);
  }
  notes.push('Fields that are empty in Tandem never clear HighLevel’s values, and tags only present in HighLevel are kept.');
  const waiting = pendingInboxCount(ctx.db, ctx.locationId);
  if (waiting) notes.push(waitingInboundNote(waiting, ctx.settings.paused));
  const requests = pages + writes;
  return { counts, samples, requests, durationMs: floorMs(requests, ctx.rate), notes };
}

/**
 * HighLevel's changes stored and not yet applied in Tandem (sync paused, or a backlog): the push
 * compares with Tandem as it is, so it sends Tandem's values over the fields they change, and
 * those changes then arrive older than what the push wrote and are dropped (QA: edits lost on
 * both sides). Said before the admin confirms.
 */
export function waitingInboundNote(waiting: number, paused: boolean): string {
  const what = `${counted(waiting, 'change', 'changes')} from HighLevel ${waiting === 1 ? 'has' : 'have'} not come into Tandem yet${paused ? ' (sync is paused)' : ''}`;
  const keep = paused ? 'To keep them, resume sync, wait until nothing waits to come in, then preview again.' : 'To keep them, wait until nothing waits to come in (seconds, as a rule), then preview again.';
  return `${what}: the push compares HighLevel with Tandem as it is now, so where Tandem holds another value, HighLevel’s change is lost on both sides. ${keep}`;
}

async function run(ctx: RunContext): Promise<void> {
  const resume = (ctx.checkpoint as PushCheckpoint | null) ?? null;
  const stored = ctx.operation.preview ? (JSON.parse(ctx.operation.preview) as Preview) : null;
  const total = stored ? Object.values(stored.counts.highlevel).reduce((a, b) => a + b, 0) : null;
  const env: PushEnv = {
    ctx,
    userMap: userMapFor(ctx.db, ctx.locationId),
    ownerMap: ownerMapFor(ctx.db, ctx.locationId),
    sendable: sendableIn(ctx.db, ctx.locationId),
    states: itemStates(ctx),
    done: 0,
    total,
  };
  for (const state of env.states.values()) if (state === 'done') env.done++;
  // One phase: the walk writes each HighLevel page's contacts as it reads it, then Tandem's others.
  ctx.progress({ phase: 'pushing', total });
  await walk({
    ctx,
    ownerMap: env.ownerMap,
    resume,
    handled: (id) => env.states.get(id) === 'done',
    visit: (t) => pushOne(env, t),
    afterPage(cp) {
      ctx.saveCheckpoint(cp);
      ctx.step('after-page');
    },
  });
}

/** The state of every record a resumed run already has (one read, kept up to date by pushOne). */
function itemStates(ctx: RunContext): Map<string, string> {
  const states = new Map<string, string>();
  let after = 0;
  for (;;) {
    const rows = listItems(ctx.db, ctx.operation.id, { afterSeq: after, limit: 1000 });
    if (rows.length === 0) return states;
    for (const r of rows) states.set(r.key, r.state);
    after = rows.at(-1)!.seq;
  }
}

export const pushHandler: OperationHandler = { kind: 'push', preview, run };
