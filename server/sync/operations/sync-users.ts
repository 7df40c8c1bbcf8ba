// Sync users (kind 'sync_users'): pairs HighLevel and Tandem users by email (sync-users-plan.ts
// decides), then re-applies owners over HighLevel's contacts, read in search pages of 500: a
// linked contact's Tandem owner becomes the user paired with its HighLevel owner (origin 'remote',
// the ledger's owner too). Contacts whose owner cannot be matched are left as they are on both
// sides (Tandem keeps its owner, HighLevel its own) and recorded as skipped with the reason. A Tandem
// owner that HighLevel never got and that now has a HighLevel user is queued to the outbox: the
// continuous sync sends it (three-way merge, direction settings) right after the run.
// Not undoable (a Tandem user's email it sets to HighLevel's is recorded, before and after, on the
// user's item). Users are applied in the plan's order: emails that follow HighLevel's first, so an
// email one frees is free when another user is created with it. Crash points (ctx.step): 'user'
// before each user, 'user-created' between creating a Tandem user and recording its pairing,
// 'owner' before each owner change, 'after-page' after each page's checkpoint.
// Checkpoint: { phase: 'users' | 'owners', plan, searchAfter, seen }; the plan is decided once per
// run, so a resumed run applies the same decisions and every record is keyed (no double counts).
import type { Db } from '../../../db/client.ts';
import { getContact, updateContact } from '../../../db/contacts.ts';
import { listHighLevelUsers, saveHighLevelUserPairing, type SeenHighLevelUser } from '../../../db/highlevel-users.ts';
import { getLinkByRemote, saveLink } from '../../../db/links.ts';
import { enqueueOutbox } from '../../../db/outbox.ts';
import { transaction } from '../../../db/prepared.ts';
import { createUser, findUserByEmail, listUsers, updateUser, UserEmailTakenError, type User } from '../../../db/users.ts';
import { normalizeText } from '../contact-model.ts';
import type { SearchedContact } from '../../highlevel/contacts.ts';
import { tandemSaveProblem } from '../describe-error.ts';
import { decideOwner, pairingsAfter, planUsers, sharedEmailNotes, userChanges, type OwnerDecision, type Pairings, type UserDecision } from './sync-users-plan.ts';
import {
  emptyCounts, OperationCancelled, RunStopped, SAMPLE_SIZE, SimulatedCrash,
  type BaseContext, type OperationHandler, type OwnerChanges, type Preview, type PreviewContext, type RunContext,
} from './types.ts';

export const OWNER_PAGE = 500;
const KEEP_SHARE = 0.25;

interface Checkpoint {
  phase: 'users' | 'owners';
  plan: UserDecision[];
  searchAfter: Array<string | number> | null;
  /** Contacts looked at in the owners phase (progress only). */
  seen: number;
}

async function decidePlan(ctx: BaseContext): Promise<{ plan: UserDecision[]; tandem: User[] }> {
  // ctx.api waits out transient failures with backoff (patient-api.ts), as it does every read below.
  const listed: SeenHighLevelUser[] = await ctx.api.listUsers();
  const tandem = listUsers(ctx.db, ctx.locationId, { includeInactive: true });
  return { plan: planUsers(listed, listHighLevelUsers(ctx.db, ctx.locationId), tandem), tandem };
}

/** Every HighLevel contact, page by page, from `after` on (dateAdded never changes: nothing is skipped). */
async function* pages(ctx: BaseContext, after: Array<string | number> | null) {
  let searchAfter = after;
  for (;;) {
    const page = await ctx.api.searchContacts({ pageLimit: OWNER_PAGE, sort: [{ field: 'dateAdded', direction: 'asc' }], ...(searchAfter ? { searchAfter } : {}) });
    const last = page.contacts.at(-1);
    if (last) searchAfter = last.searchAfter?.length ? last.searchAfter : [last.dateAdded ? Date.parse(last.dateAdded) : 0, last.id];
    yield { contacts: page.contacts, total: page.total, searchAfter };
    if (page.contacts.length < OWNER_PAGE) return;
  }
}

interface Judged {
  decision: OwnerDecision;
  contactId: string;
  highlevelId: string;
  label: string;
  baseOwner: string | null;
}

/** The owner decision for one HighLevel contact; null when it is not a live linked Tandem contact. */
function judge(db: Db, locationId: string, doc: SearchedContact, pairings: Pairings): Judged | null {
  const link = getLinkByRemote(db, locationId, doc.id);
  if (!link || link.remoteDeletedAt !== null) return null;
  const contact = getContact(db, locationId, link.contactId);
  if (!contact || contact.archivedAt !== null) return null;
  const f = contact.fields;
  const label = [f.firstName, f.lastName].filter(Boolean).join(' ') || f.email || f.phone || contact.id;
  const decision = decideOwner({ hlOwner: normalizeText(doc.assignedTo), current: f.ownerUserId, baseOwner: link.base.ownerUserId }, pairings);
  return { decision, contactId: contact.id, highlevelId: doc.id, label, baseOwner: link.base.ownerUserId };
}

function estimate(ctx: BaseContext, requests: number): number {
  const perWindow = Math.max(1, ctx.rate.max * (1 - KEEP_SHARE));
  return Math.round((Math.max(0, requests - 1) / perWindow) * ctx.rate.intervalMs);
}

async function preview(ctx: PreviewContext): Promise<Preview> {
  const { plan, tandem } = await decidePlan(ctx);
  const pairings = pairingsAfter(plan, tandem, (d) => `new:${d.key}`);
  const counts = emptyCounts();
  const owners: OwnerChanges = { change: 0, lose: 0, reasons: [], sample: [] };
  const reasons = new Map<string, number>();
  const samples: Preview['samples'] = [];
  let requests = 1;
  let queued = 0;
  let seen = 0;
  for await (const page of pages(ctx, null)) {
    requests++;
    for (const doc of page.contacts) {
      const j = judge(ctx.db, ctx.locationId, doc, pairings);
      if (!j) continue;
      const d = j.decision;
      if (d.kind === 'update') {
        counts.tandem.updated++;
        owners.change++;
        const from = pairings.name(d.from);
        const to = pairings.name(d.to);
        if (owners.sample.length < SAMPLE_SIZE) owners.sample.push({ contactId: j.contactId, label: j.label, from, to });
        if (samples.length < SAMPLE_SIZE) {
          samples.push({ contactId: j.contactId, highlevelId: j.highlevelId, label: j.label, side: 'tandem', action: 'update', changes: [{ field: 'owner', from, to }] });
        }
      } else if (d.kind === 'skip') {
        counts.tandem.skipped++;
        owners.lose++;
        reasons.set(d.reason, (reasons.get(d.reason) ?? 0) + 1);
      } else {
        // The owner stays as it is in Tandem (sent to HighLevel later, for a queued one).
        counts.tandem.unchanged++;
        if (d.kind === 'queue') queued++;
      }
    }
    seen += page.contacts.length;
    ctx.progress({ phase: 'preview', total: page.total, done: seen });
  }
  owners.reasons = [...reasons].map(([reason, contacts]) => ({ reason, contacts })).sort((a, b) => b.contacts - a.contacts);
  // HighLevel users no one can be paired with because they share an email (the run records them as
  // skipped users), and what else the run sets going. Skipped contacts need no note: the run leaves
  // them as they are on both sides, and the panel says so beside their reasons; it reads a preview
  // with no user change, no owner change and no note as one with nothing to change.
  const notes: string[] = sharedEmailNotes(plan);
  if (queued) {
    // Sent by the continuous sync: not while it is paused, nor while contact updates are Inbound.
    const held = [ctx.settings.paused ? 'you resume sync' : null, ctx.settings.updateDirection === 'bidirectional' ? null : 'contact updates are set to Bi-directional'].filter(Boolean);
    const when = held.length ? `once ${held.join(' and ')}` : 'after the run';
    notes.push(
      queued === 1
        ? `1 contact has a Tandem owner HighLevel never got, who now has a HighLevel user: the continuous sync sends this owner to HighLevel ${when}.`
        : `${queued.toLocaleString('en-US')} contacts have a Tandem owner HighLevel never got, who now has a HighLevel user: the continuous sync sends these owners to HighLevel ${when}.`,
    );
  }
  return { counts, samples, users: userChanges(plan), owners, requests, durationMs: estimate(ctx, requests), notes };
}

/** Applies one user decision; idempotent (a resumed run may apply it again). */
function applyUser(ctx: RunContext, d: UserDecision): void {
  const now = ctx.clock.now();
  let userId = d.userId;
  if (d.action === 'added') {
    const email = d.hl.email!.trim();
    try {
      userId = createUser(ctx.db, { locationId: ctx.locationId, name: d.hl.name?.trim() || email, email, now }).id;
    } catch (err) {
      // Created before a crash (or meanwhile): the user with this email is the one to pair.
      if (!(err instanceof UserEmailTakenError)) throw err;
      userId = err.existingId;
    }
    ctx.step('user-created');
  }
  const follow = d.email;
  transaction(ctx.db, () => {
    // The same person's email, changed on one side: the Tandem user takes HighLevel's, in the same
    // transaction as the record that says so (again after a crash: the email is theirs already).
    if (follow) updateUser(ctx.db, { locationId: ctx.locationId, id: d.fromUserId!, patch: { email: follow.to }, now });
    saveHighLevelUserPairing(ctx.db, ctx.locationId, d.hl, userId, now);
    const before = { userId: d.fromUserId, ...(follow ? { email: follow.from } : {}) };
    const after = { userId, ...(follow ? { email: follow.to } : {}) };
    ctx.record({ key: d.key, entity: 'user', side: 'tandem', action: d.action, label: d.label, reason: d.reason, before, after });
  });
}

/** Why a user decision could not be applied, for the run's record. */
function userProblem(err: unknown, d: UserDecision): string {
  if (err instanceof UserEmailTakenError && d.email) {
    return `Another Tandem user took ${d.email.to} after the run began, so this Tandem user’s email was left as it is. Run Sync users again.`;
  }
  return tandemSaveProblem('user', 'run Sync users again');
}

function applyOwner(ctx: RunContext, j: Judged): void {
  const d = j.decision;
  const now = ctx.clock.now();
  const base = () => {
    const link = getLinkByRemote(ctx.db, ctx.locationId, j.highlevelId);
    if (link && (d.kind === 'update' || d.kind === 'base')) saveLink(ctx.db, { locationId: ctx.locationId, contactId: link.contactId, highlevelId: link.highlevelId, base: { ...link.base, ownerUserId: d.to }, now });
  };
  const item = { key: j.contactId, entity: 'contact' as const, side: 'tandem' as const, contactId: j.contactId, highlevelId: j.highlevelId, label: j.label };
  // Unchanged in Tandem: counted as the preview counts them (a contact table of only changes read as wrong).
  const unchanged = () => ctx.record({ ...item, action: 'unchanged' });
  if (d.kind === 'none') unchanged();
  else if (d.kind === 'base') transaction(ctx.db, () => (base(), unchanged()));
  else if (d.kind === 'queue') transaction(ctx.db, () => (enqueueOutbox(ctx.db, ctx.locationId, j.contactId, 'upsert', now), unchanged()));
  else if (d.kind === 'skip') ctx.record({ ...item, action: 'skipped', reason: d.reason });
  else if (d.kind === 'update') {
    transaction(ctx.db, () => {
      updateContact(ctx.db, { locationId: ctx.locationId, id: j.contactId, patch: { ownerUserId: d.to }, now, origin: 'remote' });
      base();
      ctx.record({ ...item, action: 'updated', reason: 'Owner set to the user paired with their HighLevel owner.', before: { fields: { ownerUserId: d.from }, base: { ownerUserId: j.baseOwner } }, after: { fields: { ownerUserId: d.to } } });
    });
  }
}

async function run(ctx: RunContext): Promise<void> {
  let cp = ctx.checkpoint as Checkpoint | null;
  if (!cp) {
    const { plan } = await decidePlan(ctx);
    // The users' changes are what the admin confirmed: when HighLevel's or Tandem's users changed
    // since the preview, the run would do what it did not show (QA), so it stops before any write.
    const shown = ctx.operation.preview ? (JSON.parse(ctx.operation.preview) as Preview).users : undefined;
    if (shown && JSON.stringify(userChanges(plan)) !== JSON.stringify(shown)) {
      throw new RunStopped('HighLevel’s or Tandem’s users changed since the preview, so Sync users changed nothing. Preview it again to see what it would do now.');
    }
    cp = { phase: 'users', plan, searchAfter: null, seen: 0 };
    ctx.saveCheckpoint(cp);
  }
  if (cp.phase === 'users') {
    ctx.progress({ phase: 'users', total: cp.plan.length, done: 0 });
    for (const [i, d] of cp.plan.entries()) {
      if (ctx.item(d.key)?.state === 'done') continue;
      ctx.step('user');
      try {
        applyUser(ctx, d);
      } catch (err) {
        if (err instanceof OperationCancelled || err instanceof SimulatedCrash) throw err;
        ctx.log.warn({ err, operationId: ctx.operation.id }, 'sync users: a user could not be applied');
        ctx.record({ key: d.key, entity: 'user', side: 'tandem', action: 'failed', label: d.label, reason: userProblem(err, d) });
      }
      ctx.progress({ done: i + 1 });
    }
    cp = { ...cp, phase: 'owners' };
    ctx.saveCheckpoint(cp);
  }

  const tandem = listUsers(ctx.db, ctx.locationId, { includeInactive: true });
  const pairings = pairingsAfter(cp.plan, tandem, (d) => findUserByEmail(ctx.db, ctx.locationId, d.hl.email ?? '')?.id ?? null);
  ctx.progress({ phase: 'owners', total: null, done: cp.seen });
  for await (const page of pages(ctx, cp.searchAfter)) {
    for (const doc of page.contacts) {
      const j = judge(ctx.db, ctx.locationId, doc, pairings);
      // Recorded before a crash: its record stands (applied again, an owner set then reads as unchanged).
      if (!j || ctx.item(j.contactId)?.state === 'done') continue;
      ctx.step('owner');
      applyOwner(ctx, j);
    }
    cp = { ...cp, searchAfter: page.searchAfter, seen: cp.seen + page.contacts.length };
    ctx.progress({ total: Math.max(page.total, cp.seen), done: cp.seen });
    ctx.saveCheckpoint(cp);
    ctx.step('after-page');
  }
}

export const syncUsersHandler: OperationHandler = { kind: 'sync_users', preview, run };
