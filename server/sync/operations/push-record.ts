// Push contacts, one record's writes (the rules are in push.ts's header): item 'pending' with
// `before`, the HighLevel writes, then the ledger and the item 'done' in one transaction. Transient
// failures (network, timeout, 5xx) are tried up to TRIES times; an ambiguous create is looked up
// before anything is retried; a permanent HighLevel error is recorded as 'failed' with its reason.
// A cancel or a failure between two writes of one record (the PUT went, the tags did not) commits
// exactly what was written, so every record is either untouched or recorded as HighLevel holds it.
import { dropOutboxIfInStep, getContact, type Contact } from '../../../db/contacts.ts';
import { getLinkByRemote, saveLink, type Link } from '../../../db/links.ts';
import type { OperationItemRow } from '../../../db/operations.ts';
import { transaction } from '../../../db/prepared.ts';
import type { OwnerMap, UserMap } from '../../highlevel/contact-mapping.ts';
import { isContactNotFound } from '../../highlevel/contacts.ts';
import { classifyHighLevelError, HighLevelError } from '../../highlevel/http.ts';
import { LocationPausedError, ReauthRequiredError } from '../../highlevel/token-provider.ts';
import { isE164 } from '../contact-model.ts';
import { plainProblem, recordProblem } from '../describe-error.ts';
import type { Sendable } from '../merge.ts';
import { findOwnCreate } from '../own-create.ts';
import { LocationGoneError } from './patient-api.ts';
import {
  decidePush, duplicateReason, labelOf, ledgerAfter, remoteView, type DuplicateOf, type PushPlan, type Recorded, type RemoteView,
} from './push-plan.ts';
import { OperationCancelled, type ItemInput, type RunContext } from './types.ts';

/** A contact to push, with what the walk knows of its HighLevel side. */
export interface Target {
  contact: Contact;
  link: Link | null;
  remote: RemoteView | null;
  /** Linked, but its HighLevel contact was not on any page. */
  gone: boolean;
  /** No match in memory, and memory is incomplete (a resumed run): look HighLevel up before creating. */
  lookup: boolean;
  /** Unlinked, and its email or phone belongs to another contact of this push in HighLevel. */
  duplicateOf?: DuplicateOf;
}

export function planFor(t: Target, locationId: string, userMap: UserMap, sendable: Sendable | undefined): PushPlan {
  return decidePush({ contact: t.contact.fields, remote: t.remote, goneRemote: t.gone, ...(t.duplicateOf ? { duplicateOf: t.duplicateOf } : {}), locationId, userMap, sendable });
}

/** Tries of one record on a transient failure. */
const TRIES = 3;

/** A linked contact whose HighLevel copy is gone, as its skipped record says. */
const DELETED_THERE = 'deleted in HighLevel: a push does not recreate it (the continuous sync archives it in Tandem)';

export interface PushEnv {
  ctx: RunContext;
  userMap: UserMap;
  ownerMap: OwnerMap;
  sendable: Sendable | undefined;
  /** Each record's item state in this run ('pending' or 'done'), by key. */
  states: Map<string, string>;
  /** Records done so far (progress). */
  done: number;
  total: number | null;
}

/** What an item's `after` holds: the fields written (push-plan.ts names them) and the tags added. */
interface After {
  fields: Recorded;
  tags: string[];
}

/** A record HighLevel will not take, in plain words (recorded as 'failed'). */
class RecordRefused extends Error {}

/**
 * HighLevel holds this email or phone on the contact of another Tandem contact: recorded as
 * 'skipped', as the walk decides it when it knows (a resumed run learns it here).
 */
class HeldByAnother extends Error {
  constructor(readonly other: DuplicateOf) {
    super(duplicateReason(other));
  }
}

type ItemBase = Pick<ItemInput, 'key' | 'entity' | 'side' | 'contactId' | 'label'>;

export async function pushOne(env: PushEnv, t: Target): Promise<void> {
  const { ctx } = env;
  const { contact } = t;
  const item: ItemBase = { key: contact.id, entity: 'contact', side: 'highlevel', contactId: contact.id, label: labelOf(contact.fields, contact.id) };
  if (t.gone) return finish(env, { ...item, action: 'skipped', reason: DELETED_THERE, highlevelId: t.link?.highlevelId ?? null });
  if (t.duplicateOf) return finish(env, { ...item, action: 'skipped', reason: duplicateReason(t.duplicateOf), highlevelId: null });
  let pending = env.states.get(contact.id) === 'pending' ? ctx.item(contact.id) : undefined;
  const pendingBefore = pending !== undefined;
  let remote = t.remote;
  // A resumed run or an ambiguous failure does not know whether HighLevel holds the contact: ask.
  let ask = t.lookup || (pending !== undefined && remote === null);
  for (let attempt = 1; ; attempt++) {
    try {
      if (ask && remote === null) remote = await lookup(env, contact);
      ask = false;
      const plan = planFor({ ...t, remote }, ctx.locationId, env.userMap, env.sendable);
      const result = await write(env, t, item, plan, remote, pending);
      if (result === 'done') return;
      // HighLevel already had the contact (a duplicate): push to it as a match instead.
      remote = result.existing;
      pending = undefined;
    } catch (err) {
      if (err instanceof HeldByAnother) return finish(env, { ...item, action: 'skipped', reason: err.message, highlevelId: null });
      // Not this record's fault (authorization, a paused location): the run stops and says why. A
      // record this call marked pending was certainly not written: it says so rather than "maybe".
      if (notSent(err)) {
        if (attempt === 1 && !pendingBefore && env.states.get(contact.id) === 'pending') {
          ctx.record({ ...item, action: 'failed', reason: `not sent: ${err instanceof LocationGoneError ? err.message : plainProblem(err)}`, highlevelId: remote?.id ?? null });
          env.states.set(contact.id, 'done');
        }
        throw err;
      }
      if (!(err instanceof HighLevelError) && !(err instanceof RecordRefused)) throw err;
      if (isContactNotFound(err)) return finish(env, { ...item, action: 'skipped', reason: DELETED_THERE, highlevelId: remote?.id ?? null });
      if (err instanceof HighLevelError && classifyHighLevelError(err) === 'retry' && attempt < TRIES) {
        // The failed attempt may have recorded (and made) a write: go on from what the item says.
        pending = env.states.get(contact.id) === 'pending' ? ctx.item(contact.id) : undefined;
        ask = remote === null;
        ctx.log.warn({ err, operationId: ctx.operation.id, contactId: contact.id, attempt }, 'push: record failed, trying again');
        continue;
      }
      return finish(env, { ...item, action: 'failed', reason: reasonOf(err), highlevelId: remote?.id ?? null });
    }
  }
}

async function write(env: PushEnv, t: Target, item: ItemBase, plan: PushPlan, remote: RemoteView | null, pending: OperationItemRow | undefined): Promise<'done' | { existing: RemoteView }> {
  const { ctx } = env;
  const api = ctx.api;
  const action = pending && plan.action !== 'created' ? pending.action : plan.action;
  const intended = merged(pending, { fields: plan.after, tags: plan.addedTags });
  if (plan.action === 'unchanged' || plan.action === 'skipped') {
    commit(env, t, item, plan, remote, remote?.id ?? null, action, pending ? intended : { fields: {}, tags: [] }, plan.reason);
    return 'done';
  }
  env.states.set(item.key, 'pending');
  ctx.record({
    ...item,
    state: 'pending',
    action,
    highlevelId: remote?.id ?? null,
    reason: plan.reason,
    // A resumed record keeps the values HighLevel had before the FIRST attempt.
    before: pending ? undefined : { fields: plan.before, tags: plan.addedTags, base: t.link?.base ?? null, ...(plan.action === 'created' ? { created: true } : {}) },
    after: intended,
  });
  ctx.step('before-highlevel-write');
  const written: After = { fields: {}, tags: [] };
  let highlevelId = remote?.id ?? null;
  let stored = remote;
  try {
    if (plan.create) {
      let res;
      const triedAt = ctx.clock.now();
      try {
        res = await api.createContact(plan.create);
      } catch (err) {
        if (!isAmbiguous(err)) throw err;
        // HighLevel may have created it anyway ("422 yet created", an answer lost): look first,
        // by name among the contacts added since for a contact with no email or usable phone.
        const found = (await lookup(env, t.contact)) ?? (await ownCreate(env, t.contact, triedAt));
        if (!found) throw err;
        res = { contact: found.doc };
      }
      if ('duplicate' in res) {
        const doc = await api.getContact(res.duplicate.contactId);
        if (!doc) throw new RecordRefused('HighLevel said another of its contacts has this email or phone, then could not find that contact. Run Push contacts again.');
        const other = getLinkByRemote(ctx.db, ctx.locationId, doc.id);
        if (other && other.contactId !== t.contact.id) throw heldBy(env, other.contactId, t.contact, res.duplicate.matchingField);
        return { existing: remoteView(doc, env.ownerMap) };
      }
      stored = remoteView(res.contact, env.ownerMap);
      highlevelId = res.contact.id;
      written.fields = plan.after;
      written.tags = plan.addedTags;
    } else if (plan.update && highlevelId) {
      if (Object.keys(plan.update.body).length) {
        await api.updateContact(highlevelId, plan.update.body);
        written.fields = plan.after;
      }
      if (plan.update.addTags.length) {
        await api.addTags(highlevelId, plan.update.addTags);
        written.tags = plan.update.addTags;
      }
    }
  } catch (err) {
    if (!wroteAnything(written)) throw err;
    // Part of the record went (the PUT, not the tags): record what HighLevel holds, then stop or go on.
    const partial = pending ? merged(pending, written) : written;
    if (err instanceof OperationCancelled) {
      commit(env, t, item, plan, stored, highlevelId, action, partial, plan.reason);
      throw err;
    }
    if (!(err instanceof HighLevelError)) throw err;
    commit(env, t, item, plan, stored, highlevelId, 'failed', partial, reasonOf(err));
    return 'done';
  }
  const final = pending ? merged(pending, written) : written;
  try {
    ctx.step('after-highlevel-write');
  } catch (err) {
    // A cancel here still commits what was written; a crash (process death) commits nothing.
    if (err instanceof OperationCancelled) commit(env, t, item, plan, stored, highlevelId, action, final, plan.reason);
    throw err;
  }
  commit(env, t, item, plan, stored, highlevelId, action, final, plan.reason);
  return 'done';
}

/**
 * One transaction: the link's ledger (a new link, or the written fields applied to the old base)
 * and the item 'done'. An unchanged linked contact's ledger is left alone.
 */
function commit(env: PushEnv, t: Target, item: ItemBase, plan: PushPlan, remote: RemoteView | null, highlevelId: string | null, action: string, written: After, reason: string | null): void {
  const { ctx } = env;
  const now = ctx.clock.now();
  const done: ItemInput = { ...item, state: 'done', action, highlevelId, reason, before: undefined, after: written };
  if (highlevelId && (t.link === null || wroteAnything(written))) {
    const base = ledgerAfter({
      baseBefore: t.link?.base ?? null, contact: t.contact.fields, remote, ownerSent: plan.ownerSent, written: written.fields, addedTags: written.tags, sendable: env.sendable,
    });
    transaction(ctx.db, () => {
      saveLink(ctx.db, { locationId: ctx.locationId, contactId: t.contact.id, highlevelId, base, remoteUpdatedAt: remote?.dateUpdated ?? null, now });
      // The edit this push sent no longer waits (nor counts as held).
      dropOutboxIfInStep(ctx.db, ctx.locationId, t.contact.id);
      ctx.record(done);
    });
  } else ctx.record(done);
  env.states.set(item.key, 'done');
  env.done++;
  ctx.progress({ done: env.done });
  ctx.step('after-record');
}

function finish(env: PushEnv, input: ItemInput): void {
  env.ctx.record(input);
  env.states.set(input.key, 'done');
  env.done++;
  env.ctx.progress({ done: env.done });
  env.ctx.step('after-record');
}

function merged(pending: OperationItemRow | undefined, now: After): After {
  const prior = pending?.after ? (JSON.parse(pending.after) as Partial<After>) : {};
  return { fields: { ...(prior.fields ?? {}), ...now.fields }, tags: [...new Set([...(prior.tags ?? []), ...now.tags])] };
}

function wroteAnything(w: After): boolean {
  return Object.keys(w.fields).length > 0 || w.tags.length > 0;
}

/** HighLevel's contact with the same email, else the same E.164 phone, unless linked to another Tandem contact. */
async function lookup(env: PushEnv, contact: Contact): Promise<RemoteView | null> {
  const { email, phone } = contact.fields;
  const usable = isE164(phone) ? phone : null;
  if (!email && !usable) return null;
  const doc = await env.ctx.api.findDuplicate({ email, phone: usable });
  if (!doc) return null;
  const other = getLinkByRemote(env.ctx.db, env.ctx.locationId, doc.id);
  // Creating it would be refused as a duplicate of the other Tandem contact's HighLevel copy.
  if (other && other.contactId !== contact.id) throw heldBy(env, other.contactId, contact);
  return remoteView(doc, env.ownerMap);
}

/** The copy of this run's own create of a contact without email or usable phone (own-create.ts), unless another Tandem contact holds it. */
async function ownCreate(env: PushEnv, contact: Contact, since: number): Promise<RemoteView | null> {
  if (contact.fields.email || isE164(contact.fields.phone)) return null;
  const doc = await findOwnCreate(env.ctx.api, contact.fields, since, (d) => remoteView(d, env.ownerMap).fields);
  if (!doc) return null;
  const other = getLinkByRemote(env.ctx.db, env.ctx.locationId, doc.id);
  return other && other.contactId !== contact.id ? null : remoteView(doc, env.ownerMap);
}

function heldBy(env: PushEnv, otherId: string, contact: Contact, matching?: string): HeldByAnother {
  const other = getContact(env.ctx.db, env.ctx.locationId, otherId);
  const field = matching === 'phone' || matching === 'email' ? matching : contact.fields.email && other?.fields.email?.toLowerCase() === contact.fields.email.toLowerCase() ? 'email' : 'phone';
  return new HeldByAnother({ contactId: otherId, label: other ? labelOf(other.fields, otherId) : otherId, field });
}

/** The run stops here and HighLevel took nothing of the request: refused authorization, no token to send it with, or the location gone while waiting. */
export function notSent(err: unknown): boolean {
  return (err instanceof HighLevelError && stopsRun(err)) || err instanceof ReauthRequiredError || err instanceof LocationPausedError || err instanceof LocationGoneError;
}

export function stopsRun(err: HighLevelError): boolean {
  const kind = classifyHighLevelError(err);
  return (err.kind === 'http' && err.status === 401) || kind === 'reauth' || kind === 'paused';
}

/** No answer, a server error, or a 422 (which HighLevel has been seen to send after creating). */
function isAmbiguous(err: unknown): boolean {
  if (!(err instanceof HighLevelError)) return false;
  return err.kind === 'network' || err.kind === 'timeout' || err.kind === 'invalid_response' || err.status >= 500 || err.status === 422;
}

/** Why the record failed and what to do, in plain words; HighLevel's own reason for a refusal is kept after them. */
function reasonOf(err: unknown): string {
  if (err instanceof RecordRefused) return err.message;
  // A transient failure was tried TRIES times by then.
  const retried = err instanceof HighLevelError && classifyHighLevelError(err) === 'retry';
  return recordProblem(err, { again: 'run Push contacts again', ...(retried ? { tries: TRIES } : {}) });
}
