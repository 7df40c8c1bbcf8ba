// The words of the One-time operations card: names, explanations, counts and durations in plain
// English (kept apart from the components so the phrasing is in one place).
import type { Counts, Preview, Progress, SideCounts } from '../../server/sync/operations/types.ts';
import type { OperationView } from '../../server/routes/panel-operations.ts';
import { plural } from './plural.ts';
import { formatMoment, formatTimestamp, localizeUtcTimes, type TimestampOptions } from './time.ts';

export type RunKind = 'push' | 'pull' | 'sync_users';

export const RUN_KINDS: RunKind[] = ['push', 'pull', 'sync_users'];

export const KIND_LABEL: Record<OperationView['kind'], string> = {
  push: 'Push contacts',
  pull: 'Pull contacts',
  sync_users: 'Sync users',
  undo: 'Undo',
};

export const EXPLANATION: Record<RunKind, string> = {
  push: 'Sends every Tandem contact to HighLevel, creating the missing ones and updating the rest; Tandem’s values win. An empty field in Tandem never clears HighLevel’s.',
  pull: 'Brings every HighLevel contact into Tandem, creating the missing ones and updating the rest; HighLevel’s values win. An empty field in HighLevel never clears Tandem’s.',
  sync_users: 'Pairs each HighLevel user with the Tandem user of the same email (adding those Tandem lacks, unpairing those that no longer match), then sets each contact’s owner in Tandem to match HighLevel.',
};

/** "Last push contacts", as the line under each button starts. */
export const LAST_LABEL: Record<RunKind, string> = {
  push: 'Last push contacts',
  pull: 'Last pull contacts',
  sync_users: 'Last sync users',
};

export const SIDE_LABEL = { tandem: 'Tandem', highlevel: 'HighLevel' } as const;

export const COUNT_COLUMNS: Array<{ key: keyof SideCounts; label: string }> = [
  { key: 'created', label: 'Created' },
  { key: 'updated', label: 'Updated' },
  { key: 'unchanged', label: 'Unchanged' },
  { key: 'skipped', label: 'Skipped' },
  { key: 'failed', label: 'Failed' },
  { key: 'removed', label: 'Removed' },
];

const total = (s: SideCounts) => s.created + s.updated + s.unchanged + s.skipped + s.failed + s.removed;

/** The sides a run touches or looked at (none: nothing to show in the counts table). */
export function sidesWithCounts(counts: Counts): Array<keyof Counts> {
  return (['tandem', 'highlevel'] as const).filter((s) => total(counts[s]) > 0);
}

/** What "removed" is on each side: HighLevel deletes a contact, Tandem only archives it. */
const REMOVED_WORD = { highlevel: 'deleted', tandem: 'archived' } as const;

/**
 * The columns worth showing: those with a count on some side (created/updated/unchanged always).
 * Removed says what it is when one side alone has some: Deleted (HighLevel) or Archived (Tandem).
 */
export function columnsFor(counts: Counts): typeof COUNT_COLUMNS {
  const removedOn = (['highlevel', 'tandem'] as const).filter((s) => counts[s].removed > 0);
  return COUNT_COLUMNS.filter((c) => ['created', 'updated', 'unchanged'].includes(c.key) || counts.tandem[c.key] + counts.highlevel[c.key] > 0).map((c) =>
    c.key === 'removed' && removedOn.length === 1 ? { ...c, label: capitalize(REMOVED_WORD[removedOn[0]!]) } : c,
  );
}

const capitalize = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

/** A sample record's line: "new in HighLevel", "updated in Tandem", "deleted in HighLevel", "archived in Tandem". */
export function sampleAction(action: 'create' | 'update' | 'remove', side: keyof Counts): string {
  const word = action === 'create' ? 'new' : action === 'update' ? 'updated' : REMOVED_WORD[side];
  return `${word} in ${SIDE_LABEL[side]}`;
}

/**
 * The warning a preview that deletes contacts in HighLevel carries above everything else (an undo of
 * a push that created contacts there), or null: HighLevel has no restore, unlike Tandem's archive.
 */
export function deletionWarning(preview: Preview): string | null {
  const n = preview.counts.highlevel.removed;
  if (n === 0) return null;
  return `${plural(n, 'contact')} Tandem created in HighLevel will be deleted there; HighLevel cannot restore ${n === 1 ? 'it' : 'them'}.`;
}

// Kept importable from here: the operation components take their words from this file.
export { plural };

/**
 * Whether confirming `preview` would leave everything as it is: the dialog then says so and offers
 * no Confirm, whichever operation it is. Push and pull: only when there is no contact at all (a
 * contact they find unchanged may still be linked by the run). Sync users: no user listed (to add,
 * pair, repair, unpair, or skip for a shared email), no owner to change and no note (owners it sets
 * going, users it cannot pair); the contacts it skips are left as they are. An undo always has its
 * run to mark undone.
 */
export function changesNothing(kind: OperationView['kind'], preview: Preview): boolean {
  if (kind === 'undo' || preview.users?.length) return false;
  if (kind !== 'sync_users') return sidesWithCounts(preview.counts).length === 0;
  const c = preview.counts;
  const writes = (['tandem', 'highlevel'] as const).some((s) => c[s].created + c[s].updated + c[s].removed + c[s].failed > 0);
  return !writes && !preview.owners?.change && preview.notes.length === 0;
}

/**
 * "35 updated, 17 unchanged, 8 failed in HighLevel" for a history entry, Sync users' users after the
 * contacts ("2 users added, 1 paired"). `failed: false` leaves the failures out, for a line that
 * says them first on their own (failureSummary).
 */
export function summarize(counts: Counts, users?: Record<string, number>, empty = 'Nothing to change', options: { failed?: boolean } = {}): string {
  const withFailed = options.failed !== false;
  const parts: string[] = [];
  for (const side of ['highlevel', 'tandem'] as const) {
    const c = counts[side];
    const words = COUNT_COLUMNS.filter((col) => c[col.key] > 0 && (withFailed || col.key !== 'failed')).map(
      (col) => `${c[col.key].toLocaleString('en-US')} ${col.key === 'removed' ? REMOVED_WORD[side] : col.label.toLowerCase()}`,
    );
    if (words.length) parts.push(`${words.join(', ')} in ${SIDE_LABEL[side]}`);
  }
  // "2 users added, 1 paired": the noun once, as for contacts.
  const u = Object.entries(users ?? {}).filter(([action, n]) => n > 0 && (withFailed || action !== 'failed'));
  if (u.length) parts.push(u.map(([action, n], i) => `${i === 0 ? plural(n, 'user') : n.toLocaleString('en-US')} ${action}`).join(', '));
  return parts.length ? parts.join('; ') : empty;
}

type Outcome = Pick<Progress, 'counts' | 'users'>;

/** Records a run could not write: contacts on either side, and users (Sync users). */
export function failedCount(progress: Outcome | null | undefined): number {
  if (!progress) return 0;
  return progress.counts.tandem.failed + progress.counts.highlevel.failed + (progress.users?.failed ?? 0);
}

/** Records a run skipped, each recorded with why: contacts on either side, and users (Sync users). */
export function skippedCount(progress: Outcome | null | undefined): number {
  if (!progress) return 0;
  return progress.counts.tandem.skipped + progress.counts.highlevel.skipped + (progress.users?.skipped ?? 0);
}

/** "1 contact failed in HighLevel", "2 contacts failed in HighLevel; 1 user failed", or null when none did. */
export function failureSummary(progress: Outcome | null | undefined): string | null {
  if (!progress) return null;
  const parts: string[] = [];
  for (const side of ['highlevel', 'tandem'] as const) {
    const n = progress.counts[side].failed;
    if (n > 0) parts.push(`${plural(n, 'contact')} failed in ${SIDE_LABEL[side]}`);
  }
  const users = progress.users?.failed ?? 0;
  if (users > 0) parts.push(`${plural(users, 'user')} failed`);
  return parts.length ? parts.join('; ') : null;
}

/**
 * A finished run's outcome in two parts: what failed, said first and on its own (null: nothing
 * failed), and the rest of the counts ("" when failures are all there is; `empty` when nothing
 * happened at all).
 */
export function resultParts(progress: Outcome, empty: string): { failures: string | null; rest: string } {
  const failures = failureSummary(progress);
  if (!failures) return { failures, rest: summarize(progress.counts, progress.users, empty) };
  return { failures, rest: summarize(progress.counts, progress.users, '', { failed: false }) };
}

/** What a run does not do to the records it skips, said before their reasons. */
const SKIPPED_HEADING: Record<OperationView['kind'], string> = {
  push: 'Skipped, not sent to HighLevel',
  pull: 'Skipped, left as they are in Tandem',
  sync_users: 'Skipped, owner left as it is in Tandem and HighLevel',
  undo: 'Skipped, left as they are',
};

/** One reason of a run's summary: whose (a record's name, or "3 contacts"), and why. */
export interface ReasonLine {
  who: string;
  text: string;
  /** HighLevel's own words, shown after Tandem's as a detail (null: none). */
  detail: string | null;
}

/**
 * Why a finished run's records of one outcome failed or were skipped, each reason as the run
 * recorded it (QA: one generic sentence per kind of run): the largest groups, how many records of
 * that outcome they leave out (`more`; the run's records list each), and whether they name every
 * record already (`named`: a list of the records would add nothing). Null when there are none, or
 * for a run finished before reasons were kept.
 */
export function outcomeReasons(
  kind: OperationView['kind'],
  progress: Pick<Progress, 'counts' | 'users' | 'reasons'> | null | undefined,
  outcome: 'failed' | 'skipped',
): { heading: string; lines: ReasonLine[]; more: number; named: boolean } | null {
  const groups = progress?.reasons?.[outcome];
  const total = outcome === 'failed' ? failedCount(progress) : skippedCount(progress);
  if (!groups?.length || total === 0) return null;
  const lines = groups.map((g) => ({ who: g.count === 1 && g.label ? g.label : plural(g.count, g.entity), ...reasonParts(g.reason) }));
  const more = Math.max(0, total - groups.reduce((n, g) => n + g.count, 0));
  const named = more === 0 && groups.every((g) => g.count === 1 && g.label);
  return { heading: outcome === 'failed' ? 'Failed' : SKIPPED_HEADING[kind], lines, more, named };
}

/** HighLevel's own words at the end of a recorded reason (describe-error.ts recordProblem). */
const HIGHLEVEL_SAID = /\s*(HighLevel said: “.*”)$/s;

/** A recorded reason split into Tandem's words and HighLevel's own after them (null when it has none). */
export function reasonParts(reason: string): { text: string; detail: string | null } {
  const m = HIGHLEVEL_SAID.exec(reason);
  return m ? { text: reason.slice(0, m.index), detail: m[1]! } : { text: reason, detail: null };
}

/**
 * What the confirmation says while the continuous sync is paused: the run still goes ahead (nothing
 * in it waits for the loop), and everything else keeps waiting for the resume.
 */
export function pausedNotice(kind: OperationView['kind']): string {
  const rest = 'Other changes, both ways, keep waiting until you resume sync.';
  if (kind === 'push') return `Sync is paused, but this push still runs when you confirm: it sends Tandem’s contacts to HighLevel now. ${rest}`;
  if (kind === 'pull') return `Sync is paused, but this pull still runs when you confirm: it brings HighLevel’s contacts into Tandem now. ${rest}`;
  if (kind === 'sync_users') return `Sync is paused, but Sync users still runs when you confirm: it pairs users and sets owners in Tandem now. ${rest}`;
  return `Sync is paused, but this undo still runs when you confirm. ${rest}`;
}

/** "about 3 min", "less than a minute", "about 1 h 20 min". */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return 'less than a minute';
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `about ${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `about ${h} h${m ? ` ${m} min` : ''}`;
}

/** Share of the records at most left when a run estimated to need no more time is "finishing". */
const FINISHING_SHARE = 0.05;

/**
 * The time left as a progress line says it: "about 3 min left", "finishing" once next to nothing is
 * left, or null (nothing said): no estimate, no total, or an estimate of no time left while a good
 * share of the records is still to do, which would only mislead (QA: "finishing" at 2,000 of 5,012).
 */
export function timeLeft(progress: Pick<Progress, 'etaMs' | 'total' | 'done'>): string | null {
  const { etaMs, total: records, done } = progress;
  if (etaMs === null || etaMs === undefined || !records) return null;
  if (etaMs > 0) return `${formatDuration(etaMs)} left`;
  return records - done <= records * FINISHING_SHARE ? 'finishing' : null;
}

const FIELD_LABEL: Record<string, string> = {
  firstName: 'First name',
  lastName: 'Last name',
  email: 'Email',
  phone: 'Phone',
  companyName: 'Company',
  address1: 'Address',
  city: 'City',
  state: 'State',
  postalCode: 'Postal code',
  country: 'Country',
  website: 'Website',
  timezone: 'Time zone',
  dateOfBirth: 'Date of birth',
  source: 'Source',
  tags: 'Tags',
  owner: 'Owner',
  ownerUserId: 'Owner',
  assignedTo: 'Owner',
  customFields: 'Custom fields',
};

/**
 * "First name" for firstName; a custom field (`customFields.<id>`) by its name in HighLevel when
 * `names` has it, else as "Custom field <id>" (one HighLevel no longer defines); anything else as
 * it is named.
 */
export function fieldLabel(field: string, names: Readonly<Record<string, string>> = {}): string {
  if (field.startsWith('customFields.')) return names[field] ?? `Custom field ${field.slice('customFields.'.length)}`;
  return FIELD_LABEL[field] ?? field;
}

export function formatValue(value: unknown): string {
  if (value === null || value === undefined || value === '') return 'empty';
  if (Array.isArray(value)) return value.length ? value.join(', ') : 'none';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export const STATUS_LABEL: Record<OperationView['status'], string> = {
  previewing: 'Previewing',
  previewed: 'Waiting for confirmation',
  running: 'Running',
  completed: 'Completed',
  cancelled: 'Cancelled',
  failed: 'Failed',
  discarded: 'Not started',
};

type RunWhen = Pick<OperationView, 'kind' | 'finishedAt' | 'createdAt'>;

/**
 * Which run `target` is: "pull contacts of Dec 7, 2026, 4:19 AM PST" (when it finished, in the
 * viewer's zone). It names each history entry's Undo button ("Undo this run: pull contacts of …"),
 * so that the buttons, all saying "Undo this run", can be told apart by their names.
 */
export function runOf(target: RunWhen, options: TimestampOptions = {}): string {
  return `${KIND_LABEL[target.kind].toLowerCase()} of ${formatTimestamp(target.finishedAt ?? target.createdAt, options)}`;
}

/** The undo dialog's title: "Undo pull contacts of Dec 7, 2026, 4:19 AM PST". */
export function undoTitle(target: RunWhen, options: TimestampOptions = {}): string {
  return `Undo ${runOf(target, options)}`;
}

/**
 * Why a preview or run waits, for its progress: HighLevel's daily limit used up, a 429, a token
 * refresh backing off, HighLevel not answering (no answer, a timeout, a 5xx: it tries again with
 * growing pauses), and when it goes on, in the viewer's zone with how long that is from `now`.
 * Progress saved before the reason came as data has the server's words alone: their UTC times are
 * written in the viewer's zone too. Null while nothing holds it up.
 */
export function waitingLine(
  progress: Pick<Progress, 'waiting' | 'waitingFor' | 'waitingUntil'>,
  now: number,
  subject: 'the run' | 'the preview' = 'the run',
  options: Omit<TimestampOptions, 'omitYearIn'> = {},
): string | null {
  const { waitingFor, waitingUntil } = progress;
  if (waitingFor && waitingUntil) {
    const at = formatMoment(waitingUntil, now, options);
    if (waitingFor === 'daily') return `HighLevel’s daily request limit for this sub-account is used up; ${subject} goes on at ${at}.`;
    if (waitingFor === 'token') return `Tandem could not renew its access to HighLevel just now; ${subject} tries again at ${at}.`;
    if (waitingFor === 'retry') return `HighLevel is not answering right now (it may be down or busy); ${subject} tries again at ${at}.`;
    return `HighLevel asked Tandem to slow down; ${subject} tries again at ${at}.`;
  }
  return progress.waiting ? localizeUtcTimes(progress.waiting, now, options) : null;
}

/** What a run is, in the history: "Push contacts", or "Undo of Push contacts". */
export function runTitle(op: OperationView, history: OperationView[]): string {
  if (op.kind !== 'undo') return KIND_LABEL[op.kind];
  const target = history.find((h) => h.id === op.undoOf);
  return target ? `Undo of ${KIND_LABEL[target.kind].toLowerCase()}` : 'Undo of a run';
}

/** A run that completed although some records failed: not the all-clear of "Completed". */
export const FINISHED_WITH_PROBLEMS = 'Finished with problems';

type StatusOf = Pick<OperationView, 'status' | 'confirmedAt'> & { progress?: OperationView['progress']; cancelRequested?: boolean };

/**
 * A history entry's status: a preview that failed ran nothing (it was never confirmed), so it says
 * "Preview failed" rather than the "Failed" of a run that stopped part way; a run that completed
 * with records failing says it finished with problems; a run at work says what the card says
 * (runningLabel: "Waiting to retry", never "Running" while it waits).
 */
export function statusLabel(op: StatusOf): string {
  if (op.status === 'failed' && op.confirmedAt === null) return 'Preview failed';
  if (op.status === 'completed' && failedCount(op.progress) > 0) return FINISHED_WITH_PROBLEMS;
  if (op.status === 'running' || op.status === 'previewing') return runningLabel({ status: op.status, cancelRequested: op.cancelRequested ?? false, progress: op.progress ?? null });
  return STATUS_LABEL[op.status];
}

/** Whether HighLevel holds the work up now (its progress says why and until when). */
function waits(p: Progress | null | undefined): boolean {
  return !!(p?.waitingFor || p?.waiting);
}

/**
 * The colour a status is shown in: green for a clean run, amber for one that finished with
 * problems, red for one that stopped on a failure, blue while it works, gray otherwise (a wait
 * included: nothing moves, as the card's gray bar says).
 */
export function statusTone(op: StatusOf): 'ok' | 'warn' | 'error' | 'active' | 'neutral' {
  if (op.status === 'completed') return failedCount(op.progress) > 0 ? 'warn' : 'ok';
  if (op.status === 'failed') return 'error';
  if ((op.status === 'running' || op.status === 'previewing') && !waits(op.progress)) return 'active';
  return 'neutral';
}

/**
 * The status of a run (or preview) at work, for the card and History alike: "Stopping…" once
 * cancelled; "Waiting to retry" while it waits out a 429, a token refresh or HighLevel not
 * answering, "Waiting for the daily
 * limit to reset" while the day's requests are used up (waitingLine says why and until when), so a
 * wait is never shown as "Running".
 */
export function runningLabel(op: Pick<OperationView, 'status' | 'cancelRequested' | 'progress'>): string {
  if (op.cancelRequested && op.status === 'running') return 'Stopping…';
  const p = op.progress;
  if ((op.status === 'running' || op.status === 'previewing') && waits(p)) {
    // Progress saved before the reason came as data says why in words only.
    return p!.waitingFor === 'daily' ? 'Waiting for the daily limit to reset' : p!.waitingFor ? 'Waiting to retry' : 'Waiting for HighLevel';
  }
  return STATUS_LABEL[op.status];
}

/**
 * What the confirmation dialog's live region says once the preview arrives: the gist of what a run
 * would do and whether it can be confirmed (`confirmLabel`: the Confirm button's words), so someone
 * on a screen reader, whose focus sits on Cancel, knows the preview is there to read.
 */
export function previewAnnouncement(kind: OperationView['kind'], preview: Preview, confirmLabel: string): string {
  if (changesNothing(kind, preview)) return 'Preview ready: nothing to change, so there is nothing to confirm.';
  const users = new Map<string, number>();
  for (const u of preview.users ?? []) users.set(u.action, (users.get(u.action) ?? 0) + 1);
  const parts = [summarize(preview.counts, undefined, ''), ...[...users].map(([action, n]) => `${plural(n, 'user')} to ${action}`)].filter(Boolean);
  if (preview.owners?.change) parts.push(`${plural(preview.owners.change, 'contact')} ${preview.owners.change === 1 ? 'changes' : 'change'} owner`);
  const what = parts.length ? `${parts.join('; ')}.` : 'see the details below.';
  const warning = deletionWarning(preview);
  const paused = preview.syncPaused ? pausedNotice(kind) : null;
  return `Preview ready: ${what}${warning ? ` ${warning}` : ''}${paused ? ` ${paused}` : ''} ${confirmLabel} is available.`;
}

/**
 * A preview opened and not confirmed: being read, or ready and waiting for an admin. The card shows
 * it wherever it was opened (this panel before a reload, another tab, another admin), with a way
 * back to it.
 */
export function isOpenPreview(op: Pick<OperationView, 'status'>): boolean {
  return op.status === 'previewing' || op.status === 'previewed';
}

/**
 * What the card says of an open preview: being prepared and, while HighLevel holds it up, what for
 * (waitingLine says until when), as a run at work says it; or ready for review.
 */
export function previewLabel(op: Pick<OperationView, 'status' | 'progress'>): string {
  if (op.status === 'previewed') return 'Preview ready — review and confirm';
  if (!waits(op.progress)) return 'Preparing the preview';
  const why = runningLabel({ status: 'previewing', cancelRequested: false, progress: op.progress });
  return `Preparing the preview: ${why.charAt(0).toLowerCase()}${why.slice(1)}`;
}

/**
 * Until when an open preview stands: Tandem drops one not confirmed by `expiresAt`, reading
 * included. A preview HighLevel holds up past then cannot be ready in time, and the admin is told
 * so rather than left waiting for it. Null when it has no such time (not an open preview).
 */
export function previewExpiry(
  op: Pick<OperationView, 'status' | 'expiresAt' | 'progress'>,
  now: number,
  options: Omit<TimestampOptions, 'omitYearIn'> = {},
): string | null {
  if (!op.expiresAt) return null;
  const line = `Nothing has been changed. Unless confirmed by ${formatMoment(op.expiresAt, now, options)}, it is dropped.`;
  const until = op.status === 'previewing' ? op.progress?.waitingUntil : null;
  if (until && Date.parse(until) >= Date.parse(op.expiresAt)) {
    return `${line} HighLevel holds it up past then, so it cannot be ready in time: cancel it, and preview again once the wait is over.`;
  }
  return line;
}

/**
 * Why the start buttons wait, or what starting one does, while an operation is at work in the
 * sub-account (null: nothing is). One runs at a time: while it runs the buttons are disabled; an
 * open preview is replaced by the next one started, from any tab or admin, as the server does.
 */
export function oneAtATime(status: OperationView['status'] | undefined): string | null {
  if (status === 'running') return 'One operation runs at a time in a sub-account: these wait until the run below finishes or is cancelled.';
  if (status === 'previewing' || status === 'previewed') return 'A sub-account has one preview open at a time: starting an operation replaces the one below.';
  return null;
}
