// The One-time operations' words (web/lib/operations-copy.ts, web/lib/plural.ts, and the notes an
// undo preview carries): counts in proper singular and plural with thousands separators, when a
// preview has nothing to confirm, what an undo deletes or archives said plainly, which run each
// Undo button takes back, why a run waits and when it goes on in the viewer's time zone (the same
// status on the card and in History), why each record failed or was skipped as the run recorded it,
// what a confirmation says while sync is paused, and what the card says of a preview opened and not
// confirmed (found after a reload, or another admin's) and of the buttons meanwhile.
import { describe, expect, it } from 'vitest';
import {
  changesNothing,
  columnsFor,
  deletionWarning,
  failureSummary,
  fieldLabel,
  isOpenPreview,
  oneAtATime,
  previewAnnouncement,
  previewExpiry,
  previewLabel,
  resultParts,
  runningLabel,
  outcomeReasons,
  pausedNotice,
  reasonParts,
  runOf,
  sampleAction,
  skippedCount,
  statusLabel,
  statusTone,
  summarize,
  timeLeft,
  undoTitle,
  waitingLine,
} from '../../web/lib/operations-copy.ts';
import { plural, verb } from '../../web/lib/plural.ts';
import { pullUndoNotes } from '../../server/sync/operations/pull-undo.ts';
import { resentNote } from '../../server/sync/operations/push-undo.ts';
import { emptyCounts, type Preview, type Progress } from '../../server/sync/operations/types.ts';

const preview = (over: Partial<Preview> = {}): Preview => ({ counts: emptyCounts(), samples: [], requests: 2, durationMs: 0, notes: [], ...over });

describe('counts in words', () => {
  it('says 1 contact and 2 contacts, never contact(s)', () => {
    expect(plural(1, 'contact')).toBe('1 contact');
    expect(plural(0, 'contact')).toBe('0 contacts');
    expect(plural(1200, 'HighLevel request')).toBe('1,200 HighLevel requests');
    expect(plural(2, 'change from HighLevel', 'changes from HighLevel')).toBe('2 changes from HighLevel');
    expect(verb(1, 'changes', 'change')).toBe('changes');
    expect(verb(3, 'changes', 'change')).toBe('change');
  });
});

describe('a preview with nothing to change', () => {
  it('is a Sync users run that only skips contacts whose owner cannot be matched', () => {
    const counts = emptyCounts();
    counts.tandem.skipped = 3;
    const skipsOnly = preview({ counts, users: [], owners: { change: 0, lose: 3, reasons: [{ reason: 'Their Tandem owner is deactivated', contacts: 3 }], sample: [] } });
    expect(changesNothing('sync_users', skipsOnly)).toBe(true);
    expect(changesNothing('sync_users', preview({ users: [] }))).toBe(true);
  });

  it('is not one that adds a user, changes an owner or sets owners going', () => {
    const user = { name: 'Casey', email: 'casey@example.com', action: 'add' as const, reason: 'No Tandem user has this email.' };
    expect(changesNothing('sync_users', preview({ users: [user] }))).toBe(false);
    const counts = emptyCounts();
    counts.tandem.updated = 1;
    expect(changesNothing('sync_users', preview({ counts, owners: { change: 1, lose: 0, reasons: [], sample: [] } }))).toBe(false);
    expect(changesNothing('sync_users', preview({ notes: ['1 contact has a Tandem owner HighLevel never got…'] }))).toBe(false);
  });

  it('is a push or pull only when there is no contact at all (an unchanged one may still be linked), and never an undo', () => {
    expect(changesNothing('push', preview())).toBe(true);
    expect(changesNothing('pull', preview({ notes: ['Fields that are empty…'] }))).toBe(true);
    const counts = emptyCounts();
    counts.tandem.unchanged = 5;
    expect(changesNothing('pull', preview({ counts }))).toBe(false);
    expect(changesNothing('undo', preview())).toBe(false);
  });
});

describe('what an undo removes', () => {
  it('warns, before anything else, when contacts will be deleted in HighLevel (which cannot restore them)', () => {
    const counts = emptyCounts();
    expect(deletionWarning(preview({ counts }))).toBeNull();
    counts.tandem.removed = 5;
    // Archived in Tandem is restorable: no warning.
    expect(deletionWarning(preview({ counts }))).toBeNull();
    counts.highlevel.removed = 1;
    expect(deletionWarning(preview({ counts }))).toBe('1 contact Tandem created in HighLevel will be deleted there; HighLevel cannot restore it.');
    counts.highlevel.removed = 2_000;
    expect(deletionWarning(preview({ counts }))).toBe('2,000 contacts Tandem created in HighLevel will be deleted there; HighLevel cannot restore them.');
  });

  it('says deleted in HighLevel and archived in Tandem, in the counts, the samples and the summaries', () => {
    const counts = emptyCounts();
    counts.highlevel.updated = 3;
    counts.highlevel.removed = 200;
    expect(columnsFor(counts).map((c) => c.label)).toEqual(['Created', 'Updated', 'Unchanged', 'Deleted']);
    expect(summarize(counts)).toBe('3 updated, 200 deleted in HighLevel');
    const pulled = emptyCounts();
    pulled.tandem.removed = 2_996;
    expect(columnsFor(pulled).map((c) => c.label)).toEqual(['Created', 'Updated', 'Unchanged', 'Archived']);
    expect(summarize(pulled)).toBe('2,996 archived in Tandem');
    expect(sampleAction('remove', 'highlevel')).toBe('deleted in HighLevel');
    expect(sampleAction('remove', 'tandem')).toBe('archived in Tandem');
    expect(sampleAction('create', 'tandem')).toBe('new in Tandem');
    expect(sampleAction('update', 'highlevel')).toBe('updated in HighLevel');
  });

  it('says when the Tandem edits a push undo leaves waiting go out, by what holds them now', () => {
    // QA: with sync paused it named Contact update, already Bi-directional, as what held them.
    expect(resentNote(1, { updateDirection: 'bidirectional', paused: true })).toBe(
      '1 contact holds Tandem edits the push sent: after the undo they wait to go out again, and the continuous sync sends them when sync resumes, unless Contact update is set to Inbound first.',
    );
    expect(resentNote(2, { updateDirection: 'inbound', paused: false })).toBe(
      '2 contacts hold Tandem edits the push sent: after the undo they wait to go out again, and the continuous sync sends them once Contact update is Bi-directional.',
    );
    expect(resentNote(1, { updateDirection: 'inbound', paused: true })).toContain('once Contact update is Bi-directional and sync is resumed.');
    expect(resentNote(1_500, { updateDirection: 'bidirectional', paused: false })).toBe(
      '1,500 contacts hold Tandem edits the push sent: after the undo they wait to go out again, and since Contact update is Bi-directional, the continuous sync sends them again within seconds: in HighLevel those fields end up as Tandem has them.',
    );
  });

  it('counts a pull undo’s notes as the tables do, with thousands separators', () => {
    const counts = emptyCounts();
    counts.tandem.removed = 2_996;
    counts.tandem.skipped = 1_204;
    const notes = pullUndoNotes(counts).join(' ');
    expect(notes).toContain('2,996 contacts the pull created in Tandem will be archived (restorable)');
    expect(notes).toContain('1,204 contacts changed since the run are left as they are.');
    counts.tandem.removed = 1;
    counts.tandem.skipped = 1;
    expect(pullUndoNotes(counts).join(' ')).toContain('1 contact changed since the run is left as it is.');
  });
});

describe('what the confirmation dialog announces when the preview arrives', () => {
  it('gives the gist and says that Confirm is available', () => {
    const counts = emptyCounts();
    counts.highlevel.updated = 3;
    counts.highlevel.unchanged = 1_200;
    expect(previewAnnouncement('push', preview({ counts }), 'Confirm push contacts')).toBe(
      'Preview ready: 3 updated, 1,200 unchanged in HighLevel. Confirm push contacts is available.',
    );
    const user = { name: 'Casey', email: 'casey@example.com', action: 'add' as const, reason: 'No Tandem user has this email.' };
    expect(previewAnnouncement('sync_users', preview({ users: [user, { ...user, email: 'b@example.com' }], owners: { change: 1, lose: 0, reasons: [], sample: [] } }), 'Confirm sync users')).toBe(
      'Preview ready: 2 users to add; 1 contact changes owner. Confirm sync users is available.',
    );
  });

  it('says when there is nothing to confirm, and repeats a deletion warning before the Confirm', () => {
    expect(previewAnnouncement('pull', preview(), 'Confirm pull contacts')).toBe('Preview ready: nothing to change, so there is nothing to confirm.');
    const counts = emptyCounts();
    counts.highlevel.removed = 2;
    expect(previewAnnouncement('undo', preview({ counts }), 'Confirm undo')).toBe(
      'Preview ready: 2 deleted in HighLevel. 2 contacts Tandem created in HighLevel will be deleted there; HighLevel cannot restore them. Confirm undo is available.',
    );
  });
});

describe('a history entry', () => {
  it('calls a preview that failed a failed preview, not a failed run: nothing ran', () => {
    expect(statusLabel({ status: 'failed', confirmedAt: null })).toBe('Preview failed');
    expect(statusLabel({ status: 'failed', confirmedAt: '2026-01-01T00:00:00.000Z' })).toBe('Failed');
    expect(statusLabel({ status: 'completed', confirmedAt: '2026-01-01T00:00:00.000Z' })).toBe('Completed');
    // A preview being read is a preview, not a mysterious "Reading".
    expect(statusLabel({ status: 'previewing', confirmedAt: null })).toBe('Previewing');
  });

  const progress = (over: Partial<Progress> = {}): Progress => ({ phase: 'done', total: 60, done: 60, counts: emptyCounts(), requests: 40, etaMs: 0, ...over });

  it('says a run that completed with records failing finished with problems, in amber, not the green of a clean run', () => {
    const counts = emptyCounts();
    counts.highlevel.updated = 35;
    counts.highlevel.unchanged = 17;
    counts.highlevel.failed = 8;
    const run = { status: 'completed' as const, confirmedAt: '2026-01-01T00:00:00.000Z', progress: progress({ counts }) };
    expect(statusLabel(run)).toBe('Finished with problems');
    expect(statusTone(run)).toBe('warn');
    expect(statusTone({ ...run, progress: progress() })).toBe('ok');
    expect(statusTone({ ...run, status: 'failed' })).toBe('error');
    // Its failures come first, on their own, then the rest.
    expect(resultParts(run.progress, 'Nothing changed')).toEqual({ failures: '8 contacts failed in HighLevel', rest: '35 updated, 17 unchanged in HighLevel' });
    expect(resultParts(progress(), 'Nothing changed')).toEqual({ failures: null, rest: 'Nothing changed' });
    // Sync users: a user it could not add counts too.
    const users = progress({ users: { added: 2, failed: 1 } });
    expect(statusLabel({ ...run, progress: users })).toBe('Finished with problems');
    expect(failureSummary(users)).toBe('1 user failed');
    expect(resultParts(users, '')).toEqual({ failures: '1 user failed', rest: '2 users added' });
    expect(summarize(emptyCounts(), { added: 1, paired: 3 })).toBe('1 user added, 3 paired');
    const only = emptyCounts();
    only.tandem.failed = 1;
    expect(resultParts(progress({ counts: only }), '')).toEqual({ failures: '1 contact failed in Tandem', rest: '' });
  });

  it('says why each record was skipped or failed, as the run recorded it, not one sentence per kind of run (QA)', () => {
    const counts = emptyCounts();
    counts.highlevel.skipped = 5;
    counts.highlevel.failed = 1;
    const refused = 'HighLevel refused this contact’s values. Correct the contact in Tandem, then run Push contacts again. HighLevel said: “phone must be a valid phone number.”';
    const reasons = {
      failed: [{ reason: refused, count: 1, entity: 'contact' as const, label: 'Ann Lee' }],
      skipped: [
        { reason: 'deleted in HighLevel: a push does not recreate it', count: 3, entity: 'contact' as const, label: null },
        { reason: 'same email as Tandem contact Bob Ray, which HighLevel already holds as one contact', count: 1, entity: 'contact' as const, label: 'Twin Ray' },
      ],
    };
    const run = progress({ counts, reasons });
    expect(outcomeReasons('push', run, 'failed')).toEqual({
      heading: 'Failed',
      lines: [{ who: 'Ann Lee', text: 'HighLevel refused this contact’s values. Correct the contact in Tandem, then run Push contacts again.', detail: 'HighLevel said: “phone must be a valid phone number.”' }],
      more: 0,
      // Every failed record is named: a list of them would add nothing.
      named: true,
    });
    expect(outcomeReasons('push', run, 'skipped')).toEqual({
      heading: 'Skipped, not sent to HighLevel',
      lines: [
        { who: '3 contacts', text: 'deleted in HighLevel: a push does not recreate it', detail: null },
        { who: 'Twin Ray', text: 'same email as Tandem contact Bob Ray, which HighLevel already holds as one contact', detail: null },
      ],
      more: 1,
      named: false,
    });
    expect(outcomeReasons('pull', run, 'skipped')!.heading).toBe('Skipped, left as they are in Tandem');
    expect(outcomeReasons('sync_users', run, 'skipped')!.heading).toBe('Skipped, owner left as it is in Tandem and HighLevel');
    // None of that outcome, or a run recorded before reasons were kept: nothing to say (its records still list each).
    expect(outcomeReasons('push', progress({ reasons }), 'skipped')).toBeNull();
    expect(outcomeReasons('push', progress({ counts }), 'skipped')).toBeNull();
    expect(outcomeReasons('push', null, 'failed')).toBeNull();
  });

  it('keeps HighLevel’s own words apart from Tandem’s, to show as a detail', () => {
    expect(reasonParts('HighLevel refused this contact’s values. Correct it. HighLevel said: “a; b.”')).toEqual({ text: 'HighLevel refused this contact’s values. Correct it.', detail: 'HighLevel said: “a; b.”' });
    expect(reasonParts('archived in Tandem')).toEqual({ text: 'archived in Tandem', detail: null });
  });

  it('counts the records a run skipped, on either side and among users, for its "Show N skipped records"', () => {
    const counts = emptyCounts();
    counts.tandem.skipped = 2;
    counts.highlevel.skipped = 3;
    counts.highlevel.failed = 4;
    expect(skippedCount(progress({ counts }))).toBe(5);
    expect(skippedCount(progress({ counts, users: { added: 1, skipped: 1 } }))).toBe(6);
    expect(skippedCount(progress())).toBe(0);
    expect(skippedCount(null)).toBe(0);
  });
});

describe('a running run', () => {
  const running = (over: Partial<Progress> = {}) => ({
    status: 'running' as const,
    cancelRequested: false,
    progress: { phase: 'push', total: 60, done: 12, counts: emptyCounts(), requests: 3, etaMs: 20_000, ...over },
  });

  it('says it waits to retry while HighLevel holds it up, never "Running"', () => {
    expect(runningLabel(running())).toBe('Running');
    expect(runningLabel(running({ waitingFor: 'rate_limited', waitingUntil: '2026-12-07T12:33:00.000Z' }))).toBe('Waiting to retry');
    expect(runningLabel(running({ waitingFor: 'token', waitingUntil: '2026-12-07T12:33:00.000Z' }))).toBe('Waiting to retry');
    expect(runningLabel(running({ waitingFor: 'daily', waitingUntil: '2026-12-08T00:00:00.000Z' }))).toBe('Waiting for the daily limit to reset');
    expect(runningLabel({ ...running({ waitingFor: 'rate_limited' }), cancelRequested: true })).toBe('Stopping…');
    // Saved before the reason came as data: words alone, no reason to name.
    expect(runningLabel(running({ waiting: 'HighLevel asked Tandem to slow down; the run goes on at 2026-12-08 00:00 UTC.' }))).toBe('Waiting for HighLevel');
  });

  it('says the same in History as on the card while it waits, in the gray of nothing moving (QA: History said "Running")', () => {
    const waiting = { ...running({ waitingFor: 'rate_limited', waitingUntil: '2026-12-07T12:33:00.000Z' }), confirmedAt: '2026-12-07T12:30:00.000Z' };
    expect(statusLabel(waiting)).toBe('Waiting to retry');
    expect(statusTone(waiting)).toBe('neutral');
    expect(statusLabel({ ...running(), confirmedAt: '2026-12-07T12:30:00.000Z' })).toBe('Running');
    expect(statusTone({ ...running(), confirmedAt: '2026-12-07T12:30:00.000Z' })).toBe('active');
    expect(statusLabel({ ...waiting, cancelRequested: true })).toBe('Stopping…');
  });
});

describe('a confirmation while sync is paused', () => {
  it('says sync is paused, that the run still goes ahead, and that everything else waits for the resume (QA)', () => {
    expect(pausedNotice('push')).toBe(
      'Sync is paused, but this push still runs when you confirm: it sends Tandem’s contacts to HighLevel now. Other changes, both ways, keep waiting until you resume sync.',
    );
    expect(pausedNotice('pull')).toMatch(/^Sync is paused, but this pull still runs when you confirm: it brings HighLevel’s contacts into Tandem now\./);
    expect(pausedNotice('sync_users')).toMatch(/^Sync is paused, but Sync users still runs when you confirm/);
    expect(pausedNotice('undo')).toMatch(/^Sync is paused, but this undo still runs when you confirm/);
    const counts = emptyCounts();
    counts.highlevel.updated = 3;
    expect(previewAnnouncement('push', preview({ counts, syncPaused: true }), 'Confirm push contacts')).toBe(
      `Preview ready: 3 updated in HighLevel. ${pausedNotice('push')} Confirm push contacts is available.`,
    );
  });
});

describe('which run an Undo takes back', () => {
  const la = { locale: 'en-US', timeZone: 'America/Los_Angeles' };
  it('names the run by its kind and when it finished, in the viewer’s zone, for the button and the dialog', () => {
    const pull = { kind: 'pull' as const, finishedAt: '2026-12-07T12:19:00.000Z', createdAt: '2026-12-07T12:10:00.000Z' };
    // QA: every button was named "Undo this run" alone; the button's name adds this.
    expect(runOf(pull, la)).toBe('pull contacts of Dec 7, 2026, 4:19 AM PST');
    expect(runOf({ ...pull, kind: 'push' }, la)).toBe('push contacts of Dec 7, 2026, 4:19 AM PST');
    expect(undoTitle(pull, la)).toBe('Undo pull contacts of Dec 7, 2026, 4:19 AM PST');
    // A run with no end recorded is named by when it was asked for.
    expect(runOf({ ...pull, finishedAt: null }, la)).toBe('pull contacts of Dec 7, 2026, 4:10 AM PST');
  });
});

describe('why a run waits', () => {
  const la = { locale: 'en-US', timeZone: 'America/Los_Angeles' };
  const now = Date.parse('2026-12-07T12:32:00.000Z');
  const midnightUtc = '2026-12-08T00:00:00.000Z';

  it('says HighLevel’s daily limit is used up and when the run goes on, in the viewer’s zone and how far off (QA: UTC, and “slow down”)', () => {
    const waiting = "HighLevel's daily request limit for this sub-account is used up; the run goes on at 2026-12-08 00:00 UTC.";
    expect(waitingLine({ waiting, waitingFor: 'daily', waitingUntil: midnightUtc }, now, 'the run', la)).toBe(
      'HighLevel’s daily request limit for this sub-account is used up; the run goes on at Dec 7, 4:00 PM PST (in 11 hours).',
    );
    expect(waitingLine({ waiting, waitingFor: 'daily', waitingUntil: midnightUtc }, now, 'the preview', la)).toMatch(/; the preview goes on at Dec 7, 4:00 PM PST/);
  });

  it('says a 429 and a token refresh in their own words', () => {
    const soon = new Date(now + 10_000).toISOString();
    expect(waitingLine({ waitingFor: 'rate_limited', waitingUntil: soon }, now, 'the run', la)).toBe(
      'HighLevel asked Tandem to slow down; the run tries again at Dec 7, 4:32 AM PST (in less than a minute).',
    );
    const later = new Date(now + 5 * 60_000).toISOString();
    expect(waitingLine({ waitingFor: 'token', waitingUntil: later }, now, 'the run', la)).toBe(
      'Tandem could not renew its access to HighLevel just now; the run tries again at Dec 7, 4:37 AM PST (in 5 minutes).',
    );
  });

  it('says HighLevel not answering (5xx, no answer) and when the run tries again, and calls it waiting to retry', () => {
    const soon = new Date(now + 20_000).toISOString();
    expect(waitingLine({ waitingFor: 'retry', waitingUntil: soon, waiting: 'HighLevel is not answering right now (it may be down or busy). Tandem tries again at 2026-12-07 12:32 UTC.' }, now, 'the run', la)).toBe(
      'HighLevel is not answering right now (it may be down or busy); the run tries again at Dec 7, 4:32 AM PST (in less than a minute).',
    );
    expect(runningLabel({ status: 'running', cancelRequested: false, progress: { phase: 'pulling', total: 10, done: 1, counts: emptyCounts(), requests: 1, etaMs: null, waitingFor: 'retry', waitingUntil: soon } })).toBe('Waiting to retry');
  });

  it('shows progress saved with words alone in the viewer’s zone too, and nothing while the run moves', () => {
    const waiting = 'HighLevel asked Tandem to slow down; the run goes on at 2026-12-08 00:00 UTC.';
    expect(waitingLine({ waiting }, now, 'the run', la)).toBe('HighLevel asked Tandem to slow down; the run goes on at Dec 7, 4:00 PM PST (in 11 hours).');
    expect(waitingLine({ waiting: null, waitingFor: null, waitingUntil: null }, now)).toBeNull();
    expect(waitingLine({}, now)).toBeNull();
  });
});

describe('a preview opened and not confirmed, found after a reload', () => {
  const la = { locale: 'en-US', timeZone: 'America/Los_Angeles' };
  const now = Date.parse('2026-12-07T12:32:00.000Z');
  const expiresAt = '2026-12-07T12:45:00.000Z';
  const progress = (over: Partial<Progress> = {}): Progress => ({ phase: 'preview', total: null, done: 0, counts: emptyCounts(), requests: 1, etaMs: null, ...over });
  const previewing = (over: Partial<Progress> = {}) => ({ status: 'previewing' as const, expiresAt, progress: progress(over) });

  it('is one being read or waiting for confirmation, not a run nor a closed one', () => {
    expect(['previewing', 'previewed'].map((status) => isOpenPreview({ status } as never))).toEqual([true, true]);
    for (const status of ['running', 'completed', 'cancelled', 'failed', 'discarded'] as const) expect(isOpenPreview({ status }), status).toBe(false);
  });

  it('says it is being prepared, what HighLevel holds it up for, or that it is ready for review', () => {
    expect(previewLabel(previewing())).toBe('Preparing the preview');
    expect(previewLabel(previewing({ waitingFor: 'rate_limited', waitingUntil: '2026-12-07T12:33:00.000Z' }))).toBe('Preparing the preview: waiting to retry');
    expect(previewLabel(previewing({ waitingFor: 'daily', waitingUntil: '2026-12-08T00:00:00.000Z' }))).toBe('Preparing the preview: waiting for the daily limit to reset');
    // Saved with words alone: HighLevel keeps its capitals.
    expect(previewLabel(previewing({ waiting: 'HighLevel asked Tandem to slow down.' }))).toBe('Preparing the preview: waiting for HighLevel');
    expect(previewLabel({ status: 'previewed', progress: null })).toBe('Preview ready — review and confirm');
  });

  it('says until when it stands, in the viewer’s zone, and when HighLevel holds it up past then, that it cannot be ready in time', () => {
    expect(previewExpiry({ status: 'previewed', expiresAt, progress: null }, now, la)).toBe(
      'Nothing has been changed. Unless confirmed by Dec 7, 4:45 AM PST (in 13 minutes), it is dropped.',
    );
    expect(previewExpiry(previewing({ waitingFor: 'rate_limited', waitingUntil: '2026-12-07T12:33:00.000Z' }), now, la)).toBe(
      'Nothing has been changed. Unless confirmed by Dec 7, 4:45 AM PST (in 13 minutes), it is dropped.',
    );
    expect(previewExpiry(previewing({ waitingFor: 'daily', waitingUntil: '2026-12-08T00:00:00.000Z' }), now, la)).toBe(
      'Nothing has been changed. Unless confirmed by Dec 7, 4:45 AM PST (in 13 minutes), it is dropped. HighLevel holds it up past then, so it cannot be ready in time: cancel it, and preview again once the wait is over.',
    );
    expect(previewExpiry({ status: 'running', expiresAt: null, progress: null }, now, la)).toBeNull();
  });

  it('says why the buttons wait during a run, and that starting one replaces an open preview', () => {
    expect(oneAtATime('running')).toBe('One operation runs at a time in a sub-account: these wait until the run below finishes or is cancelled.');
    expect(oneAtATime('previewing')).toBe('A sub-account has one preview open at a time: starting an operation replaces the one below.');
    expect(oneAtATime('previewed')).toBe(oneAtATime('previewing'));
    expect(oneAtATime(undefined)).toBeNull();
    expect(oneAtATime('completed')).toBeNull();
  });
});

describe('field labels in samples', () => {
  it('names Tandem fields, custom fields by their HighLevel name, and a custom field HighLevel no longer defines by its id', () => {
    const names = { 'customFields.cfLeadScore000000001': 'Lead score' };
    expect(fieldLabel('firstName', names)).toBe('First name');
    expect(fieldLabel('customFields.cfLeadScore000000001', names)).toBe('Lead score');
    expect(fieldLabel('customFields.cfGone00000000000001', names)).toBe('Custom field cfGone00000000000001');
  });
});

describe('the time left of a run', () => {
  const at = (done: number, etaMs: number | null, total: number | null = 5_012) => ({ total, done, etaMs });

  it('says the estimate, and "finishing" only once next to nothing is left (QA: "finishing" at 2,000 of 5,012)', () => {
    expect(timeLeft(at(2_000, 180_000))).toBe('about 3 min left');
    expect(timeLeft(at(2_000, 20_000))).toBe('less than a minute left');
    expect(timeLeft(at(2_000, 0))).toBeNull();
    expect(timeLeft(at(1_500, 0))).toBeNull();
    expect(timeLeft(at(5_000, 0))).toBe('finishing');
    expect(timeLeft(at(5_012, 0))).toBe('finishing');
  });

  it('says nothing without an estimate or a total', () => {
    expect(timeLeft(at(10, null))).toBeNull();
    expect(timeLeft(at(10, 5_000, null))).toBeNull();
  });
});
