// What moves where for one linked contact: the three-way, per-field merge against the ledger, the
// fill applied when a Tandem contact is linked to an existing HighLevel one, and echo detection.
// Pure: it decides and never writes.
//
// The ledger ("base") holds, per field, HighLevel's value as of the last sync, after our own writes.
// Hence:
//   local ≠ base   → Tandem changed the field and HighLevel has not received it (pending outbound);
//   remote ≠ base  → HighLevel changed the field since we last looked.
// With Bi-directional updates a merge sends Tandem's changes, so afterwards local = remote = base.
// With Inbound nothing is sent: newBase keeps HighLevel's value, so a Tandem-only change stays
// "local ≠ base", i.e. pending, for as long as Inbound lasts. Turning Bi-directional on later makes
// the next merge send exactly what changed in Tandem since (unless HighLevel changed the same field
// meanwhile, which is a conflict and resolved as below).
//
// A remote snapshot is a Partial: a field it does not carry (a thin webhook) is unknown, treated as
// "HighLevel still holds the base value" — never as cleared. Unknown fields are left for a later,
// complete read (the periodic reconciliation) to settle.
//
// A custom field HighLevel does not define (`sendable` says no: not among the location's listed
// fields) is merged as under Inbound whatever the direction: HighLevel's changes come into Tandem,
// Tandem's value is never sent, and the ledger keeps HighLevel's value, since nothing was synced.
// Tandem's value stays as it is, pending (pendingLocal with `sendable` leaves it out: it has
// nowhere to go until HighLevel defines the field).
import {
  SCALAR_FIELDS, SYNC_FIELDS, applyTags, customValueEquals, differingFields, fieldEquals, isEmpty, normalizeCustomValue, normalizeTags,
  type ContactFields, type ContactPatch, type CustomFieldValue, type FieldKey, type ScalarField,
} from './contact-model.ts';

export type UpdateDirection = 'bidirectional' | 'inbound';
export type Winner = 'local' | 'remote';

export interface Conflict {
  field: FieldKey;
  winner: Winner;
}

export interface TagOps {
  addLocal: string[];
  removeLocal: string[];
  addRemote: string[];
  removeRemote: string[];
}

export interface MergeResult {
  toLocal: ContactPatch;
  toRemote: ContactPatch;
  tags: TagOps;
  newBase: ContactFields;
  conflicts: Conflict[];
}

export interface MergeInput {
  base: ContactFields;
  local: ContactFields;
  /** What HighLevel sent; only the fields it carries are known. */
  remote: Partial<ContactFields>;
  /**
   * When each side last changed (epoch ms); decides Bi-directional conflicts. Tandem's time is the
   * field's own where Tandem recorded it (`localFieldChangedAt`, by field key), else the contact's;
   * HighLevel's is the contact's (HighLevel dates only the contact), so on HighLevel's side it is
   * an upper bound, and a doubt goes to HighLevel.
   */
  localChangedAt: number;
  localFieldChangedAt?: Readonly<Record<string, number>>;
  remoteChangedAt: number;
  updateDirection: UpdateDirection;
  sendable?: Sendable;
}

/** Whether a custom field's value may go to HighLevel (see the header); absent: every one may. */
export type Sendable = (customFieldId: string) => boolean;
const everyField: Sendable = () => true;

/** The fields without the custom values that are not `sendable`: what a create or a push sends. */
export function sendableFields(fields: ContactFields, sendable: Sendable | undefined): ContactFields {
  if (!sendable) return fields;
  const kept = Object.entries(fields.customFields).filter(([id]) => sendable(id));
  return kept.length === Object.keys(fields.customFields).length ? fields : { ...fields, customFields: Object.fromEntries(kept) };
}

interface Policy {
  outbound: boolean;
  /** Who wins a field both sides changed to different values. */
  winner: Winner;
}

/** The policy for one field: under Bi-directional, the more recent change of that field wins (a tie: HighLevel). */
function policyFor(input: MergeInput, outbound: boolean, key: FieldKey): Policy {
  const local = input.localFieldChangedAt?.[key] ?? input.localChangedAt;
  return { outbound, winner: outbound && local > input.remoteChangedAt ? 'local' : 'remote' };
}

interface Outcome<T> {
  toLocal?: { value: T };
  toRemote?: { value: T };
  base: T;
  conflict?: Winner;
}

function decide<T>(base: T, local: T, remote: { value: T } | undefined, eq: (a: T, b: T) => boolean, policy: Policy): Outcome<T> {
  const localChanged = !eq(local, base);
  const remoteChanged = remote !== undefined && !eq(remote.value, base);
  // What HighLevel holds, as far as we know: an unknown field still holds the base value.
  const held = remote ? remote.value : base;
  if (!remoteChanged) {
    if (localChanged && policy.outbound) return { toRemote: { value: local }, base: local };
    return { base: held };
  }
  if (!localChanged) return { toLocal: { value: held }, base: held };
  if (eq(local, held)) return { base: held };
  if (policy.winner === 'remote') return { toLocal: { value: held }, base: held, conflict: 'remote' };
  return { toRemote: { value: local }, base: local, conflict: 'local' };
}

function carried<F extends keyof ContactFields>(remote: Partial<ContactFields>, field: F): { value: ContactFields[F] } | undefined {
  const value = remote[field];
  return value === undefined ? undefined : { value: value as ContactFields[F] };
}

/**
 * Tags merge as sets: a tag is kept when no side removed it, and added when either side added it
 * (relative to base). Both sides are brought there by adds and removes only, never by replacing
 * the list, so a tag HighLevel gains between our read and our write survives.
 * With Inbound, Tandem gets HighLevel's adds and removes; Tandem's own stay pending.
 */
function mergeTags(base: string[], local: string[], remote: string[] | undefined, outbound: boolean): { ops: TagOps; base: string[] } {
  const B = new Set(base);
  const L = new Set(local);
  const R = remote ? new Set(remote) : B;
  const minus = (a: Set<string>, b: Set<string>) => [...a].filter((t) => !b.has(t)).sort();
  if (!outbound) {
    const next = new Set(applyTags(local, minus(R, B), minus(B, R)));
    return {
      ops: { addLocal: minus(next, L), removeLocal: minus(L, next), addRemote: [], removeRemote: [] },
      base: [...R].sort(),
    };
  }
  const all = new Set([...B, ...L, ...R]);
  const result = new Set([...all].filter((t) => (B.has(t) ? L.has(t) && R.has(t) : L.has(t) || R.has(t))));
  return {
    ops: { addLocal: minus(result, L), removeLocal: minus(L, result), addRemote: minus(result, R), removeRemote: minus(R, result) },
    base: [...result].sort(),
  };
}

function emptyResult(base: ContactFields): MergeResult {
  return {
    toLocal: {},
    toRemote: {},
    tags: { addLocal: [], removeLocal: [], addRemote: [], removeRemote: [] },
    newBase: { ...base, tags: [...base.tags], customFields: {} },
    conflicts: [],
  };
}

function setScalar(patch: ContactPatch | ContactFields, field: ScalarField, value: unknown): void {
  (patch as Record<string, unknown>)[field] = value;
}

function setCustom(patch: ContactPatch, id: string, value: CustomFieldValue | null): void {
  (patch.customFields ??= {})[id] = value;
}

/**
 * Per field: changed on one side only → that change wins (Inbound: a Tandem-only change is kept in
 * Tandem, not sent, and stays pending); changed on both to different values → Inbound: HighLevel;
 * Bi-directional: the side that changed the field more recently (policyFor; a tie goes to HighLevel).
 */
export function mergeContact(input: MergeInput): MergeResult {
  const { base, local, remote } = input;
  const outbound = input.updateDirection === 'bidirectional';
  const sendable = input.sendable ?? everyField;
  const out = emptyResult(base);
  const note = (field: FieldKey, o: Outcome<unknown>) => {
    if (o.conflict) out.conflicts.push({ field, winner: o.conflict });
  };

  for (const field of SCALAR_FIELDS) {
    const o = decide<unknown>(base[field], local[field], carried(remote, field), (a, b) => fieldEquals(field, a as never, b as never), policyFor(input, outbound, field));
    setScalar(out.newBase, field, o.base);
    if (o.toLocal) setScalar(out.toLocal, field, o.toLocal.value);
    if (o.toRemote) setScalar(out.toRemote, field, o.toRemote.value);
    note(field, o);
  }

  const remoteCustom = remote.customFields;
  const ids = new Set([...Object.keys(base.customFields), ...Object.keys(local.customFields), ...Object.keys(remoteCustom ?? {})]);
  for (const id of [...ids].sort()) {
    const r = remoteCustom ? { value: normalizeCustomValue(remoteCustom[id]) } : undefined;
    const o = decide(normalizeCustomValue(base.customFields[id]), normalizeCustomValue(local.customFields[id]), r, customValueEquals, policyFor(input, outbound && sendable(id), `customFields.${id}`));
    if (o.base !== null) out.newBase.customFields[id] = o.base;
    if (o.toLocal) setCustom(out.toLocal, id, o.toLocal.value);
    if (o.toRemote) setCustom(out.toRemote, id, o.toRemote.value);
    note(`customFields.${id}`, o);
  }

  const tags = mergeTags(base.tags, local.tags, remote.tags === undefined ? undefined : normalizeTags(remote.tags), outbound);
  out.tags = tags.ops;
  out.newBase.tags = tags.base;
  return out;
}

/**
 * Linking a contact to an existing HighLevel one (same email or phone): HighLevel's data is never
 * overwritten. HighLevel's empty fields are filled from Tandem (when `outbound`, i.e. creation is
 * Bi-directional); where HighLevel has a value, Tandem takes it (reported as a conflict won by
 * HighLevel when Tandem's differed). DND counts as empty when off, because HighLevel cannot tell
 * "off" from "never set": a link may turn DND on, never off.
 * Tags are sets and end as the union: HighLevel's tags Tandem lacks are added to Tandem, and (when
 * `outbound`) Tandem's tags HighLevel lacks are added to HighLevel; no tag is removed on either
 * side (a link has no ledger saying who removed what). mergeFill keeps this for tags.
 * Fields the snapshot does not carry are left alone on both sides (pass a complete read).
 * Without `outbound`, Tandem's extra values stay pending, exactly as with an Inbound merge; so do
 * the values of custom fields that are not `sendable`.
 * For a link made earlier, whose ledger exists, see mergeFill.
 */
export function linkFill(local: ContactFields, remote: Partial<ContactFields>, opts: { outbound?: boolean; sendable?: Sendable } = {}): MergeResult {
  const outbound = opts.outbound ?? true;
  const sendable = opts.sendable ?? everyField;
  const out = emptyResult(local);
  const fill = <T>(field: FieldKey, l: T, r: { value: T } | undefined, empty: (v: T) => boolean, eq: (a: T, b: T) => boolean, outbound: boolean): Outcome<T> => {
    if (!r) return { base: l };
    if (empty(r.value)) {
      if (!empty(l) && outbound) return { toRemote: { value: l }, base: l };
      return { base: r.value };
    }
    if (eq(l, r.value)) return { base: r.value };
    out.conflicts.push({ field, winner: 'remote' });
    return { toLocal: { value: r.value }, base: r.value };
  };

  for (const field of SCALAR_FIELDS) {
    const empty = (v: unknown) => emptyAtLink(field, v);
    const o = fill<unknown>(field, local[field], carried(remote, field), empty, (a, b) => fieldEquals(field, a as never, b as never), outbound);
    setScalar(out.newBase, field, o.base);
    if (o.toLocal) setScalar(out.toLocal, field, o.toLocal.value);
    if (o.toRemote) setScalar(out.toRemote, field, o.toRemote.value);
  }

  const remoteCustom = remote.customFields;
  const ids = new Set([...Object.keys(local.customFields), ...Object.keys(remoteCustom ?? {})]);
  for (const id of [...ids].sort()) {
    const r = remoteCustom ? { value: normalizeCustomValue(remoteCustom[id]) } : undefined;
    const o = fill(`customFields.${id}`, normalizeCustomValue(local.customFields[id]), r, (v) => v === null, customValueEquals, outbound && sendable(id));
    if (o.base !== null) out.newBase.customFields[id] = o.base;
    if (o.toLocal) setCustom(out.toLocal, id, o.toLocal.value);
    if (o.toRemote) setCustom(out.toRemote, id, o.toRemote.value);
  }

  if (remote.tags !== undefined) {
    const L = new Set(local.tags);
    const R = new Set(normalizeTags(remote.tags));
    const addLocal = [...R].filter((t) => !L.has(t)).sort();
    const addRemote = outbound ? [...L].filter((t) => !R.has(t)).sort() : [];
    out.tags = { addLocal, removeLocal: [], addRemote, removeRemote: [] };
    out.newBase.tags = [...new Set([...R, ...addRemote])].sort();
  }
  return out;
}

/** Empty as a link's fill sees a field: DND off counts as empty (HighLevel cannot tell it from unset). */
const emptyAtLink = (field: ScalarField, v: unknown) => (field === 'dnd' ? v !== true : isEmpty(v));

/**
 * The fill of a link Tandem's inbound side made (HighLevel's contact came in matching a Tandem
 * one), sent later with Contact creation Bi-directional while updates are Inbound. The link
 * already has a ledger (`base`: HighLevel's values as last read), and either side may have changed
 * the contact since, so linkFill, which knows no ledger and gives every non-empty HighLevel value
 * to Tandem, would overwrite a Tandem edit made after the link: under Inbound such an edit is
 * held, never lost. Per field:
 * - HighLevel's value empty, in the ledger too, and Tandem's not → sent (the fill; DND off counts
 *   as empty), whether Tandem's value dates from before the link or after it; a field HighLevel
 *   cleared after the link is its change, merged as below;
 * - otherwise the Inbound three-way merge (mergeContact): a field only HighLevel changed comes into
 *   Tandem; one only Tandem changed stays Tandem's, unsent and pending against the new base; one
 *   both changed takes HighLevel's value;
 * - tags: the Inbound merge (HighLevel's additions and removals since the ledger come into Tandem;
 *   Tandem's removals stay held), and the fill: Tandem's tags HighLevel neither has nor had (not in
 *   the ledger) are added to HighLevel. Unlike linkFill's union, a tag one side removed after the
 *   link is not put back.
 * A custom field that is not `sendable` is not filled: it merges as Inbound.
 * Pass a complete read as `remote`.
 */
export function mergeFill(input: { base: ContactFields; local: ContactFields; remote: Partial<ContactFields>; sendable?: Sendable }): MergeResult {
  // Inbound: nothing is sent and a field both sides changed goes to HighLevel (times do not matter).
  const out = mergeContact({ ...input, localChangedAt: 0, remoteChangedAt: 0, updateDirection: 'inbound' });
  // linkFill's toRemote is exactly "carried, empty in HighLevel, not empty in Tandem": those fields
  // go out instead of whatever the Inbound merge decided for them.
  const fill = linkFill(input.local, input.remote, { outbound: true, sendable: input.sendable });
  const filled = new Set<FieldKey>();
  for (const field of SCALAR_FIELDS) {
    const value = fill.toRemote[field];
    // Empty in HighLevel now but not in the ledger: HighLevel cleared it after the link, its change.
    if (value === undefined || !emptyAtLink(field, input.base[field])) continue;
    setScalar(out.toRemote, field, value);
    setScalar(out.newBase, field, value);
    delete out.toLocal[field];
    filled.add(field);
  }
  for (const [id, value] of Object.entries(fill.toRemote.customFields ?? {})) {
    if (value === null || normalizeCustomValue(input.base.customFields[id]) !== null) continue;
    setCustom(out.toRemote, id, value);
    out.newBase.customFields[id] = value;
    if (out.toLocal.customFields) {
      delete out.toLocal.customFields[id];
      if (Object.keys(out.toLocal.customFields).length === 0) delete out.toLocal.customFields;
    }
    filled.add(`customFields.${id}`);
  }
  out.conflicts = out.conflicts.filter((c) => !filled.has(c.field));
  if (input.remote.tags !== undefined) {
    const had = new Set([...normalizeTags(input.remote.tags), ...input.base.tags]);
    const addRemote = input.local.tags.filter((t) => !had.has(t)).sort();
    out.tags = { ...out.tags, addRemote, removeRemote: [] };
    out.newBase.tags = [...new Set([...out.newBase.tags, ...addRemote])].sort();
  }
  return out;
}

/**
 * True when everything the snapshot carries equals the ledger: the change is one Tandem wrote
 * itself (or one already applied), so it must not be merged or pushed again. A snapshot carrying
 * no synced field at all is also "nothing new".
 */
export function isEcho(remote: Partial<ContactFields>, base: ContactFields): boolean {
  return SYNC_FIELDS.every((field) => remote[field] === undefined || fieldEquals(field, remote[field], base[field]));
}

/**
 * Fields Tandem changed that HighLevel has not received (the panel's "pending outbound"); with
 * `sendable`, only those a push can send (a custom field HighLevel does not define is left out).
 */
export function pendingLocal(base: ContactFields, local: ContactFields, sendable?: Sendable): FieldKey[] {
  const differing = differingFields(local, base);
  return sendable ? differing.filter((f) => !f.startsWith('customFields.') || sendable(f.slice('customFields.'.length))) : differing;
}

/** Nothing to write on either side. */
export function isNoop(result: MergeResult): boolean {
  const t = result.tags;
  const patchEmpty = (p: ContactPatch) => Object.keys(p).length === 0;
  return patchEmpty(result.toLocal) && patchEmpty(result.toRemote) && !t.addLocal.length && !t.removeLocal.length && !t.addRemote.length && !t.removeRemote.length;
}
