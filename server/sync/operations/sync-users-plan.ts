// Sync users' decisions, pure: which user pairings change (plan) and what each contact's owner
// becomes once they have (decideOwner). The preview and the run both decide through here, so the
// preview's counts are what the run then does.
//
// The rule is email equality, case-insensitive, between LIVE users: every active HighLevel user
// ends paired with the Tandem user of the same email (created when there is none, unless that
// Tandem user is deactivated); a stored pairing whose emails no longer match is replaced; users
// deleted or deactivated on either side are unpaired.
import type { SeenHighLevelUser, HighLevelUserRow } from '../../../db/highlevel-users.ts';
import type { User } from '../../../db/users.ts';
import type { UserChange } from './types.ts';

export type UserAction = 'added' | 'paired' | 'repaired' | 'unpaired' | 'unchanged';

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
}

const lower = (email: string | null | undefined) => (email?.trim() ? email.trim().toLowerCase() : null);

const CHANGE: Record<Exclude<UserAction, 'unchanged'>, UserChange['action']> = { added: 'add', paired: 'pair', repaired: 'repair', unpaired: 'unpair' };

export function planUsers(listed: SeenHighLevelUser[], stored: HighLevelUserRow[], tandem: User[]): UserDecision[] {
  const byEmail = new Map(tandem.map((u) => [u.emailLower, u]));
  const byId = new Map(tandem.map((u) => [u.id, u]));
  const storedById = new Map(stored.map((r) => [r.highlevelId, r]));
  const listedIds = new Set(listed.map((u) => u.id));
  const out: Omit<UserDecision, 'key'>[] = [];
  const was = (id: string | null) => {
    const u = id ? byId.get(id) : undefined;
    return u ? `${u.name} (${u.email})` : 'a Tandem user';
  };

  for (const h of [...listed].sort((a, b) => (lower(a.email) ?? '').localeCompare(lower(b.email) ?? '') || a.id.localeCompare(b.id))) {
    const email = lower(h.email);
    const label = h.name?.trim() || h.email || h.id;
    const fromUserId = storedById.get(h.id)?.userId ?? null;
    const from = fromUserId && byId.has(fromUserId) ? fromUserId : null;
    const match = email ? byEmail.get(email) : undefined;
    const keep = (userId: string | null, reason: string) => out.push({ action: 'unchanged', hl: h, userId, fromUserId: from, label, reason });
    const unpair = (reason: string) => out.push({ action: 'unpaired', hl: h, userId: null, fromUserId: from, label, reason });
    if (!h.active || h.deleted) {
      if (from) unpair('Deactivated in HighLevel.');
      else keep(null, 'Deactivated in HighLevel.');
    } else if (!email) {
      if (from) unpair('Has no email in HighLevel, so no Tandem user can be matched.');
      else keep(null, 'Has no email in HighLevel.');
    } else if (match && !match.active) {
      if (from) unpair(`Tandem user ${match.name} (${match.email}) is deactivated.`);
      else keep(null, `Tandem user ${match.name} is deactivated.`);
    } else if (match) {
      if (from === match.id) keep(match.id, 'Same email in both.');
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

  const used = new Set<string>();
  return out.map((d) => {
    const base = `user:${lower(d.hl.email) ?? `hl:${d.hl.id}`}`;
    const key = used.has(base) ? `${base}#${d.hl.id}` : base;
    used.add(key);
    return { ...d, key };
  });
}

/** The preview's list: every change, with its reason in plain words. */
export function userChanges(plan: UserDecision[]): UserChange[] {
  return plan
    .filter((d): d is UserDecision & { action: Exclude<UserAction, 'unchanged'> } => d.action !== 'unchanged')
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
