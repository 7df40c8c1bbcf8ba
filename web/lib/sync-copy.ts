// The Sync tab's words: what each direction does and when to use it, how a change to a setting
// reads in the history, what a save that releases held work sends, what to do about a problem, and
// what the status strip says (held back by HighLevel, and until when). Pure, so it is tested
// without a browser.
import type { Direction } from '../../db/schema.ts';
import { fieldLabel, formatValue } from './operations-copy.ts';
import { isDuplicateRefusal } from './contacts-copy.ts';
import { plural, verb } from './plural.ts';
import { formatMoment, type TimestampOptions } from './time.ts';
import type { FormSetting, ReleasePreviewView, SettingsChangeView, SyncSettingsView, SyncStatusView } from '../../server/routes/panel-sync.ts';

export interface DirectionOption {
  value: Direction;
  label: string;
  arrow: string;
  /** Screen readers read this instead of the arrow. */
  arrowLabel: string;
  description: string;
}

export const CREATION_OPTIONS: DirectionOption[] = [
  {
    value: 'bidirectional',
    label: 'Bi-directional',
    arrow: '↔',
    arrowLabel: 'both ways',
    description: 'New contacts in either system appear in the other. Use when both teams add contacts.',
  },
  {
    value: 'inbound',
    label: 'Inbound',
    arrow: '←',
    arrowLabel: 'from HighLevel to Tandem',
    // Not "stay in Tandem" alone: they are created in HighLevel once creation is Bi-directional.
    description:
      'Contacts created in HighLevel come into Tandem; Tandem’s new contacts stay in Tandem until you switch to Bi-directional, which then creates them in HighLevel. Use when HighLevel is where contacts start.',
  },
];

export const UPDATE_OPTIONS: DirectionOption[] = [
  {
    value: 'bidirectional',
    label: 'Bi-directional',
    arrow: '↔',
    arrowLabel: 'both ways',
    description:
      'Edits in either system reach the other; when both change the same field, the most recent edit wins. Use when both teams keep contacts up to date.',
  },
  {
    value: 'inbound',
    label: 'Inbound',
    arrow: '←',
    arrowLabel: 'from HighLevel to Tandem',
    // Edits wait and go out on the switch; archives do not (README, Deletions), so it says so.
    description:
      'HighLevel is the source of truth: Tandem never overwrites data already in HighLevel. Tandem’s edits wait and are sent when you switch to Bi-directional; contacts archived in Tandem meanwhile stay in HighLevel.',
  },
];

const SETTING_LABELS: Record<string, string> = {
  creationDirection: 'Contact creation',
  updateDirection: 'Contact update',
};

const DIRECTION_LABELS: Record<string, string> = { bidirectional: 'Bi-directional', inbound: 'Inbound' };

/** "changed Contact update from Inbound to Bi-directional", "paused sync". */
export function describeChange(change: Pick<SettingsChangeView, 'setting' | 'oldValue' | 'newValue'>): string {
  if (change.setting === 'paused') return change.newValue === 'true' ? 'paused sync' : 'resumed sync';
  const name = SETTING_LABELS[change.setting] ?? change.setting;
  const from = change.oldValue === null ? null : (DIRECTION_LABELS[change.oldValue] ?? change.oldValue);
  const to = DIRECTION_LABELS[change.newValue] ?? change.newValue;
  return from ? `changed ${name} from ${from} to ${to}` : `set ${name} to ${to}`;
}

/** How many of the latest settings changes the Sync tab lists until asked for the older ones. */
export const HISTORY_SHOWN = 10;

/** The settings history's toggle: "Show 7 older changes", then back to the latest ten. */
export function historyToggle(older: number, expanded: boolean): string {
  return expanded ? `Show only the latest ${HISTORY_SHOWN}` : `Show ${plural(older, 'older change')}`;
}

/**
 * Why what waits to go out is not moving, one line per setting that holds some of it: Contact
 * creation Inbound holds contacts not yet in HighLevel, Contact update Inbound holds edits of
 * contacts already there. Empty when nothing waiting is held by a setting (the pause is the status
 * strip's to say).
 */
export function heldOutbound(
  settings: Pick<SyncSettingsView, 'creationDirection' | 'updateDirection'>,
  status: Pick<SyncStatusView, 'pendingOutboundNew' | 'pendingOutboundEdits'>,
): string[] {
  const lines: string[] = [];
  if (settings.creationDirection === 'inbound' && status.pendingOutboundNew > 0) {
    lines.push(`${plural(status.pendingOutboundNew, 'new contact')} held: Contact creation is Inbound.`);
  }
  if (settings.updateDirection === 'inbound' && status.pendingOutboundEdits > 0) {
    lines.push(`${plural(status.pendingOutboundEdits, 'edit')} held: Contact update is Inbound.`);
  }
  return lines;
}

// ---- a save that releases held work ----------------------------------------------------------------

export const RELEASE_TITLE = 'Send held changes to HighLevel?';

/**
 * The release dialog's first line: which settings turn Bi-directional and what that does. "Saving
 * turns Contact update to Bi-directional: what Tandem held back while it was Inbound goes to
 * HighLevel as soon as you save." While sync is paused it goes once sync resumes.
 */
export function releaseLead(changes: Partial<Record<FormSetting, Direction>>, paused = false): string {
  const opened = (['creationDirection', 'updateDirection'] as const).filter((k) => changes[k] === 'bidirectional').map((k) => SETTING_LABELS[k]!);
  const names = opened.join(' and ') || 'a setting';
  const when = paused ? 'once you resume sync (it is paused now)' : 'as soon as you save';
  return `Saving turns ${names} to Bi-directional: what Tandem held back while ${opened.length > 1 ? 'they were' : 'it was'} Inbound goes to HighLevel ${when}.`;
}

/** "3 new contacts will be created in HighLevel." */
export function releaseCreatedLine(n: number): string {
  return `${plural(n, 'new contact')} will be created in HighLevel.`;
}

/** "Edits of 2 contacts will be sent to HighLevel." */
export function releaseUpdatedLine(n: number): string {
  return `Edits of ${plural(n, 'contact')} will be sent to HighLevel.`;
}

/**
 * "2 contacts will be refused: their email or phone is already on another contact in HighLevel."
 * When edits among them send their other changes all the same (`othersSent` of them), it says so.
 */
export function releaseRefusedLine(n: number, othersSent = 0): string {
  if (othersSent === 0) return `${plural(n, 'contact')} will be refused: ${verb(n, 'its', 'their')} email or phone is already on another contact in HighLevel.`;
  const others = othersSent === n ? `${verb(n, 'its', 'their')} other changes are sent` : `the other changes of ${othersSent.toLocaleString('en-US')} are sent`;
  return `${plural(n, 'contact')} will be refused ${verb(n, 'its', 'their')} email or phone, already on another contact in HighLevel; ${others}.`;
}

/**
 * One refused contact of the sample: "Not created: its email is already on the HighLevel contact
 * linked to Ben Ortiz."; an edit whose other changes go: "New phone not sent: … Its other changes are sent."
 */
export function refusedReason(s: Pick<ReleasePreviewView['refused']['samples'][number], 'change' | 'field' | 'holder'> & { othersSent?: boolean }): string {
  const where = `already on the HighLevel contact linked to ${s.holder}`;
  if (s.change === 'edit' && s.othersSent) return `New ${s.field} not sent: it is ${where}. Its other changes are sent.`;
  const what = s.change === 'create' ? 'Not created' : 'Edit not sent';
  return `${what}: its ${s.change === 'edit' ? 'new ' : ''}${s.field} is ${where}.`;
}

export const RELEASE_REFUSED_NOTE =
  'HighLevel refuses a second contact with the same email or phone, unless the location allows duplicates. Tandem still tries these and marks each one refused. To send one, change its email or phone in Tandem.';

export const RELEASE_CREATED_NOTE = 'A contact HighLevel already has with the same email or phone is linked to it instead, and only its empty fields are filled.';
export const RELEASE_UPDATED_NOTE = 'Tandem’s values replace HighLevel’s in these fields. Where someone changed the same field in HighLevel since, the more recent change wins.';
export const RELEASE_NOTHING = 'Nothing is waiting to go to HighLevel now: saving changes the settings only.';

/** Below a sample: "and 4 more" (empty when the sample is all of them). */
export function moreThanShown(count: number, shown: number): string {
  return count > shown ? `and ${(count - shown).toLocaleString('en-US')} more` : '';
}

/** A changed field's name: "Lead score" for a custom field HighLevel lists, "Do not disturb" for dnd. */
export function changeField(field: string, names: Readonly<Record<string, string>>): string {
  return field === 'dnd' ? 'Do not disturb' : fieldLabel(field, names);
}

/** A changed field's value: "empty", "On"/"Off" for Do not disturb, tags as a list. */
export function changeValue(field: string, value: unknown): string {
  if (field === 'dnd') return value === true ? 'On' : 'Off';
  return formatValue(value);
}

/** What a release preview counts, as the copy reads it (`refused`: absent counts as none). */
type Counted = Pick<ReleasePreviewView, 'created' | 'updated'> & { refused?: { count: number; othersSent?: number } };

/** What the dialog's live region says once the preview is on screen. */
export function releaseAnnouncement(preview: Counted): string {
  const refused = preview.refused?.count ?? 0;
  const parts = [
    preview.created.count ? releaseCreatedLine(preview.created.count) : '',
    preview.updated.count ? releaseUpdatedLine(preview.updated.count) : '',
    refused ? releaseRefusedLine(refused, preview.refused?.othersSent ?? 0) : '',
  ].filter(Boolean);
  if (!parts.length) return `${RELEASE_NOTHING} Save changes is available.`;
  return `${parts.join(' ')} Save and send is available; Cancel keeps your changes unsaved.`;
}

/** The dialog when what a save would send could not be read: nothing is saved without it. */
export function releaseCheckFailed(message: string): string {
  return `Tandem could not check what saving would send to HighLevel: ${sentence(message)} Nothing is saved. Retry, or cancel to keep your changes unsaved.`;
}

/**
 * Said in the dialog when what saving sends changed since the preview on screen was read (a refresh
 * while it is open, or, `refused`, the save confirming it refused because of it): "What goes out
 * changed since this was shown: 1 more edit." Counts as the dialog's lines count them (contacts
 * created, contacts whose edits go, contacts HighLevel will refuse).
 */
export function releaseChanged(before: Counted, after: Counted, refused = false): string {
  const lead = 'What goes out changed since this was shown';
  const differences = [
    difference(after.created.count - before.created.count, 'new contact', 'new contacts'),
    difference(after.updated.count - before.updated.count, 'edit', 'edits'),
    difference((after.refused?.count ?? 0) - (before.refused?.count ?? 0), 'contact refused', 'contacts refused'),
  ].filter(Boolean);
  const what =
    after.created.count + after.updated.count + (after.refused?.count ?? 0) === 0
      ? `${lead}: nothing is held back any more.`
      : differences.length
        ? `${lead}: ${differences.join(' and ')}.`
        : // As many as before (a contact edited again, one sent and another held, sync paused): the counts cannot say what.
          `${lead}. Check it again before sending.`;
  return refused ? `${what} Nothing was saved or sent yet.` : what;
}

/** "1 more edit", "2 fewer new contacts"; empty for no difference. */
function difference(n: number, one: string, many: string): string {
  if (n === 0) return '';
  return `${Math.abs(n).toLocaleString('en-US')} ${n > 0 ? 'more' : 'fewer'} ${Math.abs(n) === 1 ? one : many}`;
}

/** The dialog's title and words when the settings were saved as the draft has them meanwhile: nothing is left to save or send. */
export const RELEASE_SETTLED_TITLE = 'Settings already saved';
export const RELEASE_SETTLED =
  'Someone saved these settings meanwhile (another admin, or you in another tab or window), so they are already as you chose. Nothing is left to save or send from here.';

/** The notice once that dialog is closed. */
export const RELEASE_SETTLED_NOTICE = 'Nothing to save: these settings were saved meanwhile, in another tab or by another admin.';

export const RELEASE_CANCELLED = 'Not saved, and nothing was sent. Your changes stay here until you save or discard them.';

/** The saved notice: a save that released held work says so, and when it goes (paused: on resuming). */
export function savedNotice(sent: number, paused = false): string {
  if (sent === 0) return 'Settings saved. Tandem syncs with them from now on.';
  const what = verb(sent, 'held change', 'held changes');
  return paused ? `Settings saved. The ${what} ${verb(sent, 'goes', 'go')} to HighLevel once you resume sync.` : `Settings saved. Tandem is sending the ${what} to HighLevel now.`;
}

export interface Problem {
  /** What happened, in plain words. */
  message: string;
  /** What to do about it. */
  action: string;
  /** When it happened (ISO), when known. */
  at: string | null;
  tone: 'warn' | 'error';
  /** What it holds back while sync is on and connected (the status strip says so); null when it holds back nothing else. */
  hold: SyncHold | null;
}

/**
 * What holds automatic sync back while it is on and connected: HighLevel's daily request limit,
 * HighLevel refusing Tandem's requests as too many, or failures Tandem tries again after (HighLevel
 * down, Tandem's own disk). The status strip says so instead of "usually within seconds" (QA: it
 * stayed green through an outage while the problem below said HighLevel was not answering).
 */
export interface SyncHold {
  reason: 'daily' | 'rate_limited' | 'retrying';
  /** When Tandem tries again (ISO), when known. */
  next: string | null;
  /** The problem's message says already when Tandem tries again (the loop's words do): the box does not say it twice. */
  nextInMessage: boolean;
}

/**
 * The loop's error when its latest pass did not go through: held back by HighLevel's limits, or
 * failed and tried again (server/sync/describe-error.ts describeError says what happens next in
 * these words). The pairing notice a pass that went through leaves is not one. Read from the words
 * because the panel receives no more than them (db/sync-status.ts lastError).
 */
const LOOP_HELD = /\bTandem will try again\b|\btries again at\b|\bsync resumes at\b|\bchanges wait\b/i;
const DAILY = /daily request (limit|budget)/i;
const TOO_MANY = /\btoo many\b|slow down/i;
/** "2026-12-08 00:00 UTC", as the server writes a moment into its text (web/lib/time.ts). */
const UTC_MOMENT = /\b(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}) UTC\b/g;

/** The loop's error as a hold, or null when it holds nothing back (a notice, or no error). */
function loopHold(message: string): SyncHold | null {
  if (!LOOP_HELD.test(message)) return null;
  // The last moment the message names is when it goes on ("since 10:02 …; tries again at 10:05").
  const moments = [...message.matchAll(UTC_MOMENT)];
  const last = moments.at(-1);
  const next = last ? new Date(Date.UTC(Number(last[1]), Number(last[2]) - 1, Number(last[3]), Number(last[4]), Number(last[5]))).toISOString() : null;
  const reason = DAILY.test(message) ? 'daily' : TOO_MANY.test(message) ? 'rate_limited' : 'retrying';
  return { reason, next, nextInMessage: true };
}

/** "Tandem tries again at Dec 7, 3:37 PM PST (in 2 minutes).", or that it does now or shortly. */
export function nextAttempt(hold: SyncHold, now: number, options: Omit<TimestampOptions, 'omitYearIn'> = {}): string {
  if (hold.next === null) return 'Tandem tries again shortly, by itself.';
  if (Date.parse(hold.next) <= now) return 'Tandem is trying again now.';
  const at = formatMoment(hold.next, now, options);
  return hold.reason === 'daily' ? `Sync goes on at ${at}.` : `Tandem tries again at ${at}.`;
}

export interface StatusStrip {
  tone: 'ok' | 'warn' | 'error';
  label: string;
  detail: string;
  /** For tests and styles: what the strip says. */
  state: 'on' | 'paused' | 'stopped' | SyncHold['reason'];
}

/**
 * The status strip: paused by an admin, stopped (HighLevel no longer lets Tandem in, or the
 * sub-account is inactive), held back by what the latest problem says, or on. `now`: when the
 * status was read, for "in 2 minutes"; times in the viewer's zone.
 */
export function statusStrip(status: SyncStatusView, now: number, options: Omit<TimestampOptions, 'omitYearIn'> = {}): StatusStrip {
  if (status.paused) {
    return { state: 'paused', tone: 'warn', label: 'Paused', detail: 'Automatic sync is paused: changes made meanwhile wait and sync when you resume. One-time operations you confirm still run.' };
  }
  if (status.installation.status === 'needs_reauth' || status.installation.status === 'paused') {
    return { state: 'stopped', tone: 'error', label: 'Stopped', detail: 'Tandem cannot reach this sub-account in HighLevel; see the problem below.' };
  }
  // The same problem the box below shows: the strip never says "on" beside a problem that holds sync back.
  const hold = latestProblem(status, false)?.hold;
  if (!hold) return { state: 'on', tone: 'ok', label: 'Sync on', detail: 'Changes move automatically, usually within seconds.' };
  const when = nextAttempt(hold, now, options);
  if (hold.reason === 'daily') {
    return { state: 'daily', tone: 'warn', label: 'Daily limit reached', detail: `Changes wait until HighLevel’s daily request limit for this sub-account resets; none are lost. ${when}` };
  }
  if (hold.reason === 'rate_limited') {
    return { state: 'rate_limited', tone: 'warn', label: 'Slowed down', detail: `Changes wait: HighLevel is refusing Tandem’s requests as too many; none are lost. ${when}` };
  }
  return { state: 'retrying', tone: 'warn', label: 'Retrying', detail: `Changes wait: Tandem’s latest attempt did not get through (see the problem below); none are lost. ${when}` };
}

/**
 * The one problem worth showing first: lost access to HighLevel stops everything, then what holds
 * sync back now (the loop's latest pass held back by HighLevel's limits or failed, then changes
 * HighLevel could not take for now: an outage going on), then the more recent of the loop's latest
 * notice, a change HighLevel refused for good (naming its contact) and a deletion it refused of a
 * contact archived in Tandem, and last HighLevel's custom fields that could not be listed (contacts
 * sync; only the REST API's checks wait). Null when all is well.
 */
export function latestProblem(status: SyncStatusView, canEdit: boolean): Problem | null {
  if (status.installation.status === 'needs_reauth') {
    return {
      message: status.installation.reason ? sentence(status.installation.reason) : 'HighLevel no longer accepts Tandem’s access to this sub-account, so nothing syncs.',
      action: canEdit
        ? 'Reconnect Tandem from the banner above; syncing resumes where it stopped.'
        : 'Ask an admin of this sub-account or your agency to reconnect Tandem.',
      at: null,
      tone: 'error',
      hold: null,
    };
  }
  if (status.installation.status === 'paused') {
    return {
      message: status.installation.reason ? sentence(status.installation.reason) : 'HighLevel reports this sub-account as inactive, so nothing syncs.',
      action: 'Syncing resumes by itself once the sub-account is active again in HighLevel.',
      at: null,
      tone: 'warn',
      hold: null,
    };
  }
  // The loop's latest pass did not go through: it holds back every change, those retrying too
  // (they go with its next pass), so it comes before them, however recent a refusal is.
  const error = status.lastError;
  const held = error ? loopHold(error.message) : null;
  if (error && held) return { message: sentence(error.message), action: adviceFor(error.message), at: error.at, tone: 'warn', hold: held };
  // Changes HighLevel could not take just now (down, a server error): going on as it is shown, and when.
  const retrying = status.retrying;
  if (retrying) {
    const which = retrying.count > 1 ? `${retrying.count} of Tandem’s changes yet (the latest: to ${retrying.contact})` : `Tandem’s change to ${retrying.contact} yet`;
    return {
      message: `HighLevel could not take ${which}: ${sentence(retrying.message)}`,
      action: 'Nothing for now: Tandem tries again by itself, and nothing is lost meanwhile. If this is still here in an hour, check HighLevel’s status, then contact support.',
      at: null,
      tone: 'warn',
      hold: { reason: 'retrying', next: retrying.nextAttemptAt, nextInMessage: false },
    };
  }
  // The most recent of the loop's latest notice, a change HighLevel refused for good, and custom
  // fields HighLevel would not list is the one to act on (an older notice that cannot clear by
  // itself, such as unpairable owners, would otherwise hide a newer one for good).
  const failure = status.lastFailure;
  const deletion = status.refusedDeletion;
  const fields = status.customFieldsProblem;
  const newest = Math.max(...[error, failure, deletion, fields].map((p) => (p ? Date.parse(p.at) : -Infinity)));
  if (error && Date.parse(error.at) === newest) {
    return { message: sentence(error.message), action: adviceFor(error.message), at: error.at, tone: 'warn', hold: null };
  }
  if (failure && Date.parse(failure.at) === newest) {
    const reason = sentence(failure.message);
    const who = failure.contact;
    const others = status.failedOutbound - 1;
    // Refused because another contact holds its email or phone: also sent by itself once that one lets go.
    const duplicate = isDuplicateRefusal(failure.message);
    const lead = duplicate ? `Tandem’s change to ${who} cannot go to HighLevel` : `HighLevel refused Tandem’s change to ${who}`;
    const message = `${lead}: ${reason}${others > 0 ? ` ${plural(others, 'other contact was', 'other contacts were')} refused too.` : ''}`;
    return {
      message,
      // The refusal holds back no other contact's change (what else waits, and why, is beside it).
      action: `${canEdit ? `Correct ${who} in Tandem` : `Ask an admin to correct ${who} in Tandem`} (${others > 0 ? 'the Contacts tab’s Refused filter lists each one with its reason' : 'the Contacts tab’s Refused filter shows it with its reason'}); Tandem sends ${others > 0 ? 'each' : 'it'} again after the next edit${duplicate ? ', or by itself once the other contact no longer has that email or phone' : ''}. The refusal holds back no other contact’s change.`,
      at: failure.at,
      tone: 'error',
      hold: null,
    };
  }
  if (deletion && Date.parse(deletion.at) === newest) {
    // Archived in Tandem, so not on the Contacts tab: the notice itself says what stays where.
    const who = deletion.contact;
    const others = deletion.count - 1;
    return {
      message: `HighLevel refused to delete ${who}, archived in Tandem: ${sentence(deletion.message)}${others > 0 ? ` ${plural(others, 'other deletion was', 'other deletions were')} refused too.` : ''}`,
      action: `${others > 0 ? 'These contacts stay' : `${who} stays`} in HighLevel. ${canEdit ? 'Delete' : 'Ask an admin to delete'} ${others > 0 ? 'them' : 'it'} there, or restore ${others > 0 ? 'them' : 'it'} in Tandem to keep syncing. Nothing else is held back.`,
      at: deletion.at,
      tone: 'warn',
      hold: null,
    };
  }
  if (fields) {
    // A refusal of the token's scope lasts until Tandem is installed again; anything else passes.
    return {
      message: sentence(fields.message),
      action: !fields.refused
        ? 'Nothing: Tandem lists them again within minutes. Contacts keep syncing meanwhile.'
        : canEdit
          ? 'Install Tandem on this sub-account again from HighLevel’s marketplace to grant it. Contacts keep syncing meanwhile; only the REST API’s custom field checks wait for it.'
          : 'Ask an admin of this sub-account or your agency to install Tandem on it again. Contacts keep syncing meanwhile.',
      at: fields.at,
      tone: 'warn',
      hold: null,
    };
  }
  return null;
}

/**
 * What to do about the loop's latest error. Owners that could not be copied: Sync users first (it
 * repairs the usual case, a fresh install whose HighLevel owners have no Tandem user yet), then what
 * it cannot repair: a Tandem owner HighLevel lacks (named only when the message says there is one)
 * and owners deleted or deactivated.
 */
function adviceFor(message: string): string {
  // The loop's unmatched-owners notice says those Sync users repairs apart from those it cannot
  // pair, each with its cause (server/sync/supervisor.ts unmatchedNotice): advice for each cause said.
  const repairs = /Sync users repairs (them|it)\b/i.test(message);
  const cannot = /Sync users cannot pair (them|it)\b/i.test(message);
  if (repairs || cannot) {
    const says = (pattern: RegExp, advice: string) => (cannot && pattern.test(message) ? advice : '');
    return [
      repairs ? 'Run Sync users under One-time operations below: it adds HighLevel owners missing from Tandem, pairs users with the same email and re-applies the owners.' : '',
      says(/(deactivated|deleted) in HighLevel|users? (deactivated|deleted) in HighLevel/i, 'An owner deactivated or deleted in HighLevel cannot be paired: reactivate them in HighLevel, or give their contacts another owner.'),
      says(/deactivated in Tandem|deactivated Tandem users?/i, 'An owner deactivated in Tandem cannot be paired: reactivate them in Tandem, or give their contacts another owner.'),
      says(/no active HighLevel user/i, 'A Tandem user HighLevel lacks must be added in HighLevel, with the same email; they are paired by themselves then.'),
      says(/share their email|more than one HighLevel user/i, 'Give each HighLevel user an email of their own, then run Sync users.'),
      says(/no email in HighLevel/i, 'Give that HighLevel user an email, then run Sync users.'),
      says(/not (a user|users) of this sub-account/i, 'Give their contacts an owner who is a user of this sub-account in HighLevel.'),
      says(/not paired with the HighLevel users? of the same email/i, 'Run Sync users under One-time operations below to pair them.'),
    ]
      .filter(Boolean)
      .join(' ');
  }
  if (/daily request (limit|budget)/i.test(message)) {
    return 'Nothing: HighLevel allows more requests when its daily limit resets, and Tandem carries on by itself then. Changes made meanwhile wait; none are lost.';
  }
  if (/rate|limit|429|too many|slow down|budget/i.test(message)) return 'Nothing. Tandem slows down and carries on by itself as soon as HighLevel allows it.';
  if (/token|auth|401|403|permission|scope/i.test(message)) return 'If this persists, reconnect Tandem from HighLevel’s marketplace.';
  return 'Tandem retries by itself. If this is still here in an hour, contact support and mention the time shown.';
}

/** The text as a sentence: ends with its full stop, so words can follow it. */
export function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** What the conflict notice needs of a setting the draft changes that someone changed meanwhile. */
export interface ConflictWords {
  setting: string;
  mine: string;
  theirs: string;
  /** The change, when the history on screen still lists it. */
  change: Pick<SettingsChangeView, 'userId' | 'userName'> | undefined;
}

/**
 * "Ada Admin changed Contact creation to Inbound since you began editing; your draft sets it to
 * Bi-directional." The time is shown beside it in the viewer's zone. The signed-in admin's own
 * change elsewhere (another tab or window) is said as such.
 */
export function conflictLine(conflict: ConflictWords, viewerId: string | undefined): string {
  const name = SETTING_LABELS[conflict.setting] ?? conflict.setting;
  const theirs = DIRECTION_LABELS[conflict.theirs] ?? conflict.theirs;
  const mine = DIRECTION_LABELS[conflict.mine] ?? conflict.mine;
  const who = !conflict.change
    ? 'Someone'
    : conflict.change.userId === viewerId
      ? 'You (in another tab or window)'
      : (conflict.change.userName ?? 'Another admin');
  return `${who} changed ${name} to ${theirs} since you began editing; your draft sets it to ${mine}.`;
}
