// Sync users' decisions, pure: which user pairings change (plan) and what each contact's owner
// becomes once they have (decideOwner). The preview and the run both decide through here, so the
// preview's counts are what the run then does.
//
// The rule is email equality, case-insensitive, between LIVE users: every active HighLevel user
// ends paired with the Tandem user of the same email (created when there is none, unless that
// Tandem user is deactivated); a stored pairing whose emails no longer match is replaced; users
// deleted or deactivated on either side are unpaired. Two exceptions, both about who the person is:
// - Emails equal ignoring case are one email. Live HighLevel users sharing one cannot be told apart
//   by it, so none of them is added or paired (a pairing they had is undone): pairing either would
//   give the other's contacts to the wrong person, and merging them would give both to one.
// - A paired HighLevel user is the same person whatever their email becomes (HighLevel's id does not
//   change). When the emails of a pair differ and no Tandem user has HighLevel's email, the Tandem
//   user's email becomes HighLevel's and they stay paired, rather than a second Tandem user being
//   made for the same person. HighLevel's wins because Sync users makes Tandem's users from
//   HighLevel's, never the other way. When another Tandem user has that email, the pairing moves
//   to them as before.
import type { SeenHighLevelUser, HighLevelUserRow } from '../../../db/highlevel-users.ts';
import type { User } from '../../../db/users.ts';
import type { UserChange } from './types.ts';

export type UserAction = 'added' | 'paired' | 'repaired' | 'unpaired' | 'unchanged' | 'skipped';

export interface UserDecision {
  /** The run's item key: 'user:' + email lowercase (made unique within the plan). */
  key: string;
  action: UserAction;
  /** The HighLevel user as listed now (a deleted one as last seen, with deleted: true). */
  hl: SeenHighLevelUser;
  /** Tandem user paired after the run: an existing id; null when unpaired or when 'added' (created by email). */
  userId: string | null;
  /** Stored pairing before the run. */
  fromUserId: string | null;
  label: string;
  reason: string;
  /** The paired Tandem user's email becomes HighLevel's (`from` is the Tandem user's now). */
  email?: { from: string; to: string };
  /** Other live HighLevel users with the same email (any case): this one is left unpaired. */
  sharedWith?: string[];
}

const lower = (email: string | null | undefined) => (email?.trim() ? email.trim().toLowerCase() : null);

const CHANGE: Record<Exclude<UserAction, 'unchanged' | 'skipped'>, UserChange['action']> = { added: 'add', paired: 'pair', repaired: 'repair', unpaired: 'unpair' };

const live = (h: SeenHighLevelUser) => h.active && !h.deleted;

/** "A", "A and B", "A, B and C". */
function names(list: string[]): string {
  return list.length < 2 ? (list[0] ?? '') : `${list.slice(0, -1).join(', ')} and ${list.at(-1)}`;
}

/** Why a HighLevel user sharing their email with `others` is left unpaired (the run's record). */
function sharedReason(email: string, others: string[]): string {
  const who = others.length === 1 ? `Another HighLevel user, ${others[0]}, has` : `Other HighLevel users, ${names(others)}, have`;
  return `${who} the same email (${email}, in any case): Tandem cannot tell which of them is the person, so it pairs ${others.length === 1 ? 'neither' : 'none of them'}.`;
}

/**
 * Pairs whose Tandem user's email becomes HighLevel's: HighLevel id → the Tandem user, with the
 * email it takes. In an order the run can apply them in (an email is free when its turn comes),
 * so a rename that frees the email another one takes goes first; a swap never frees one and is
 * left to the email match.
 */
function emailFollowUps(listed: SeenHighLevelUser[], storedById: Map<string, HighLevelUserRow>, byId: Map<string, User>, byEmail: Map<string, User>, shared: Set<string>) {
  const candidates = listed.filter((h) => {
    const email = lower(h.email);
    const userId = storedById.get(h.id)?.userId;
    const u = userId ? byId.get(userId) : undefined;
    return live(h) && email && !shared.has(email) && u && u.emailLower !== email;
  });
  // A Tandem user two live HighLevel users are paired with follows neither: which one it is, is unknown.
  const claims = new Map<string, number>();
  for (const h of listed) {
    const userId = storedById.get(h.id)?.userId;
    if (live(h) && userId) claims.set(userId, (claims.get(userId) ?? 0) + 1);
  }
  const out = new Map<string, { user: User; to: string }>();
  for (let moved = true; moved; ) {
    moved = false;
    for (const h of candidates) {
      const user = byId.get(storedById.get(h.id)!.userId!)!;
      const email = lower(h.email)!;
      if (out.has(h.id) || claims.get(user.id) !== 1 || byEmail.has(email)) continue;
      out.set(h.id, { user, to: h.email!.trim() });
      byEmail.delete(user.emailLower);
      byEmail.set(email, { ...user, email: h.email!.trim(), emailLower: email });
      moved = true;
    }
  }
  return out;
}

export function planUsers(listed: SeenHighLevelUser[], stored: HighLevelUserRow[], tandem: User[]): UserDecision[] {
  // Tandem's users by email as they will be once the emails that follow HighLevel's have changed.
  const byEmail = new Map(tandem.map((u) => [u.emailLower, u]));
  const byId = new Map(tandem.map((u) => [u.id, u]));
  const storedById = new Map(stored.map((r) => [r.highlevelId, r]));
  const listedIds = new Set(listed.map((u) => u.id));
  const sharing = new Map<string, SeenHighLevelUser[]>();
  for (const h of listed) {
    const email = lower(h.email);
    if (email && live(h)) sharing.set(email, [...(sharing.get(email) ?? []), h]);
  }
  const shared = new Set([...sharing].filter(([, hs]) => hs.length > 1).map(([email]) => email));
  const follows = emailFollowUps(listed, storedById, byId, byEmail, shared);
  const out: Omit<UserDecision, 'key'>[] = [];
  const was = (id: string | null) => {
    const u = id ? byId.get(id) : undefined;
    return u ? `${u.name} (${u.email})` : 'a Tandem user';
  };
  const labelOf = (h: SeenHighLevelUser) => h.name?.trim() || h.email || h.id;

  for (const h of [...listed].sort((a, b) => (lower(a.email) ?? '').localeCompare(lower(b.email) ?? '') || a.id.localeCompare(b.id))) {
    const email = lower(h.email);
    const label = labelOf(h);
    const fromUserId = storedById.get(h.id)?.userId ?? null;
    const from = fromUserId && byId.has(fromUserId) ? fromUserId : null;
    const match = email ? byEmail.get(email) : undefined;
    const follow = follows.get(h.id);
    const followed = follow && { email: { from: follow.user.email, to: follow.to } };
    const followReason = follow && `Emails differ: ${follow.to} in HighLevel, ${follow.user.email} in Tandem.`;
    const keep = (userId: string | null, reason: string) => out.push({ action: 'unchanged', hl: h, userId, fromUserId: from, label, reason });
    const unpair = (reason: string) => out.push({ action: 'unpaired', hl: h, userId: null, fromUserId: from, label, reason });
    if (!live(h)) {
      if (from) unpair('Deactivated in HighLevel.');
      else keep(null, 'Deactivated in HighLevel.');
    } else if (!email) {
      if (from) unpair('Has no email in HighLevel, so no Tandem user can be matched.');
      else keep(null, 'Has no email in HighLevel.');
    } else if (shared.has(email)) {
      const sharedWith = sharing.get(email)!.filter((o) => o.id !== h.id).map(labelOf);
      const reason = sharedReason(email, sharedWith);
      out.push({ action: from ? 'unpaired' : 'skipped', hl: h, userId: null, fromUserId: from, label, reason, sharedWith });
    } else if (match && !match.active) {
      if (follow) out.push({ action: 'unpaired', hl: h, userId: null, fromUserId: from, label, reason: `${followReason} Their Tandem user’s email becomes ${follow.to}; that user is deactivated, so they are unpaired.`, ...followed });
      else if (from) unpair(`Tandem user ${match.name} (${match.email}) is deactivated.`);
      else keep(null, `Tandem user ${match.name} is deactivated.`);
    } else if (match) {
      if (follow) out.push({ action: 'repaired', hl: h, userId: match.id, fromUserId: from, label, reason: `${followReason} Their Tandem user’s email becomes ${follow.to}, and they stay paired.`, ...followed });
      else if (from === match.id) keep(match.id, 'Same email in both.');
      else if (from === null) out.push({ action: 'paired', hl: h, userId: match.id, fromUserId: null, label, reason: `Same email as Tandem user ${match.name}.` });
      else {
        out.push({
          action: 'repaired', hl: h, userId: match.id, fromUserId: from, label,
          reason: `Was paired with ${was(from)}, whose email no longer matches; ${email} is Tandem user ${match.name}.`,
        });
      }
    } else {
      const repair = from ? ` It was paired with ${was(from)}, whose email no longer matches.` : '';
      out.push({
        action: 'added', hl: h, userId: null, fromUserId: from, label,
        reason: `No Tandem user has this email: one is created and paired with them, so any contacts they own in HighLevel get the same owner in Tandem.${repair}`,
      });
    }
  }

  // Users HighLevel no longer lists were deleted there.
  for (const r of stored) {
    if (listedIds.has(r.highlevelId)) continue;
    const from = r.userId && byId.has(r.userId) ? r.userId : null;
    if (!from && r.deleted) continue;
    const hl: SeenHighLevelUser = { id: r.highlevelId, email: r.email, name: r.name, active: false, deleted: true };
    const label = r.name?.trim() || r.email || r.highlevelId;
    out.push({ action: from ? 'unpaired' : 'unchanged', hl, userId: null, fromUserId: from, label, reason: 'Deleted in HighLevel.' });
  }

  // A pairing moved to another Tandem user: what becomes of the one it leaves.
  const pairedAfter = new Map(out.filter((d) => d.userId && d.action !== 'added').map((d) => [d.userId!, d.label]));
  for (const d of out) {
    if (d.action !== 'repaired' || d.email || !d.fromUserId || d.fromUserId === d.userId) continue;
    const to = byId.get(d.userId!)!.name;
    const other = pairedAfter.get(d.fromUserId);
    const left = other
      ? `${was(d.fromUserId)} stays, paired with ${other}.`
      : `${was(d.fromUserId)} stays as is, and any other contacts they own reach HighLevel without an owner.`;
    d.reason += ` The contacts ${d.label} owns in HighLevel get ${to} as their owner in Tandem; ${left}`;
  }

  // The run applies decisions in this order: emails that follow HighLevel's first (in the order
  // they free each other's), so an email they free is free when a user is created with it.
  const order = [...follows.keys()];
  out.sort((a, b) => rank(order, a) - rank(order, b));
  const used = new Set<string>();
  return out.map((d) => {
    const base = `user:${lower(d.hl.email) ?? `hl:${d.hl.id}`}`;
    const key = used.has(base) ? `${base}#${d.hl.id}` : base;
    used.add(key);
    return { ...d, key };
  });
}

function rank(order: string[], d: Omit<UserDecision, 'key'>): number {
  const i = d.email ? order.indexOf(d.hl.id) : -1;
  return i < 0 ? order.length : i;
}

/** The preview's notes about HighLevel users left unpaired because they share an email (one per email). */
export function sharedEmailNotes(plan: UserDecision[]): string[] {
  const groups = new Map<string, string[]>();
  for (const d of plan) {
    if (!d.sharedWith) continue;
    const email = lower(d.hl.email)!;
    groups.set(email, [...(groups.get(email) ?? []), d.label]);
  }
  return [...groups].map(([email, labels]) => {
    const two = labels.length === 2;
    return `${names([...labels].sort())} have the same email in HighLevel (${email}, in any case): Tandem cannot tell which of them is the person, so it pairs ${two ? 'neither' : 'none of them'} and leaves their contacts’ owners as they are. Give ${two ? 'one of them' : 'all but one of them'} another email in HighLevel, then run Sync users again.`;
  });
}

/** The preview's list: every change, with its reason in plain words. */
export function userChanges(plan: UserDecision[]): UserChange[] {
  return plan
    .filter((d): d is UserDecision & { action: keyof typeof CHANGE } => d.action in CHANGE)
    .map((d) => ({ name: d.label, email: d.hl.email ?? '', action: CHANGE[d.action], reason: d.reason }));
}

// ---- owners ----------------------------------------------------------------------------------------

/** Pairings as they are once the plan is applied (the preview resolves added users to placeholders). */
export interface Pairings {
  /** Tandem user paired with this HighLevel user, or why there is none. */
  owner(highlevelUserId: string): { userId: string; name: string } | { why: string };
  /** Why this Tandem user cannot be a HighLevel owner, or null when it can (it is paired). */
  tandemUnpaired(userId: string): string | null;
  name(userId: string | null): string | null;
}

export const REASONS = {
  hlDeleted: 'Their HighLevel owner was deleted in HighLevel',
  hlDeactivated: 'Their HighLevel owner is deactivated in HighLevel',
  hlNoEmail: 'Their HighLevel owner has no email, so no Tandem user matches',
  hlSharedEmail: 'Their HighLevel owner has the same email as another HighLevel user, so Tandem cannot tell which of them is the person',
  hlTandemDeactivated: 'Their HighLevel owner’s Tandem user is deactivated',
  hlUnknown: 'Their HighLevel owner is not a user of this sub-account',
  hlNotAdded: 'Their HighLevel owner could not be added to Tandem',
  tandemNoUser: 'Their Tandem owner has no HighLevel user with the same email',
  tandemDeactivated: 'Their Tandem owner is deactivated',
} as const;

/**
 * @param resolve the Tandem user id of an 'added' decision (run: the created user, null when it
 *   could not be created; preview: a placeholder)
 */
export function pairingsAfter(plan: UserDecision[], tandem: User[], resolve: (d: UserDecision) => string | null): Pairings {
  const byId = new Map(tandem.map((u) => [u.id, u]));
  const byHl = new Map(plan.map((d) => [d.hl.id, d]));
  const paired = new Map<string, { userId: string; name: string }>();
  const pairedTandem = new Set<string>();
  const addedNames = new Map<string, string>();
  for (const d of plan) {
    const userId = d.action === 'added' ? resolve(d) : d.userId;
    if (!userId || !d.hl.active || d.hl.deleted) continue;
    if (d.action === 'added') addedNames.set(userId, d.label);
    const name = byId.get(userId)?.name ?? d.label;
    paired.set(d.hl.id, { userId, name });
    pairedTandem.add(userId);
  }
  const lowerEmails = new Map(tandem.map((u) => [u.emailLower, u]));
  return {
    owner(id) {
      const p = paired.get(id);
      if (p) return p;
      const d = byHl.get(id);
      if (!d) return { why: REASONS.hlUnknown };
      if (d.hl.deleted) return { why: REASONS.hlDeleted };
      if (!d.hl.active) return { why: REASONS.hlDeactivated };
      if (d.action === 'added') return { why: REASONS.hlNotAdded };
      if (d.sharedWith) return { why: REASONS.hlSharedEmail };
      // Their Tandem user takes HighLevel's email but is deactivated.
      if (d.email) return { why: REASONS.hlTandemDeactivated };
      const email = lower(d.hl.email);
      if (!email) return { why: REASONS.hlNoEmail };
      if (lowerEmails.get(email)?.active === false) return { why: REASONS.hlTandemDeactivated };
      return { why: REASONS.hlUnknown };
    },
    tandemUnpaired(userId) {
      if (pairedTandem.has(userId)) return null;
      return byId.get(userId)?.active === false ? REASONS.tandemDeactivated : REASONS.tandemNoUser;
    },
    name(userId) {
      if (userId === null) return null;
      return byId.get(userId)?.name ?? addedNames.get(userId) ?? userId;
    },
  };
}

export type OwnerDecision =
  /** Nothing to do. */
  | { kind: 'none' }
  /** Both sides agree already; only the ledger's owner catches up (not counted). */
  | { kind: 'base'; to: string }
  /** Tandem's owner becomes the user paired with HighLevel's owner. */
  | { kind: 'update'; from: string | null; to: string }
  /** Tandem's owner now has a HighLevel user but never reached HighLevel: the continuous sync sends it. */
  | { kind: 'queue' }
  /** The owner cannot be matched between the two: the contact is left as it is on both sides. */
  | { kind: 'skip'; reason: string };

/**
 * One linked contact: HighLevel's owner wins when it is paired; a Tandem owner HighLevel never got
 * (Tandem's differs from the ledger while HighLevel has none) travels once it is paired.
 */
export function decideOwner(input: { hlOwner: string | null; current: string | null; baseOwner: string | null }, pairings: Pairings): OwnerDecision {
  const { hlOwner, current, baseOwner } = input;
  if (hlOwner) {
    const p = pairings.owner(hlOwner);
    if ('why' in p) return { kind: 'skip', reason: p.why };
    if (current === p.userId) return baseOwner === p.userId ? { kind: 'none' } : { kind: 'base', to: p.userId };
    return { kind: 'update', from: current, to: p.userId };
  }
  if (current === null || current === baseOwner) return { kind: 'none' };
  const why = pairings.tandemUnpaired(current);
  return why ? { kind: 'skip', reason: why } : { kind: 'queue' };
}
