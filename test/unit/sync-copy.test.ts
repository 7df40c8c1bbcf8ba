// The Sync tab's words (web/lib/sync-copy.ts): how a settings change reads, which problem is
// shown with what advice, what the status strip says while sync is held back (and until when), and
// which setting holds what waits to go out; the settings history's toggle between the latest ten
// changes and the older ones.
import { describe, expect, it } from 'vitest';
import { CREATION_OPTIONS, HISTORY_SHOWN, UPDATE_OPTIONS, conflictLine, describeChange, heldOutbound, historyToggle, latestProblem, nextAttempt, sentence, statusStrip } from '../../web/lib/sync-copy.ts';
import type { SyncStatusView } from '../../server/routes/panel-sync.ts';
import { DeferredError } from '../../server/highlevel/contacts.ts';
import { HighLevelError } from '../../server/highlevel/http.ts';
import { LocationPausedError } from '../../server/highlevel/token-provider.ts';
import { describeError } from '../../server/sync/describe-error.ts';

const healthy: SyncStatusView = {
  paused: false,
  installation: { status: 'active', reason: null },
  pendingOutbound: 0,
  pendingOutboundNew: 0,
  pendingOutboundEdits: 0,
  failedOutbound: 0,
  pendingInbound: 0,
  lastInboundAt: null,
  lastOutboundAt: null,
  lastError: null,
  lastFailure: null,
  refusedDeletion: null,
  retrying: null,
  customFieldsProblem: null,
};

describe('settings history wording', () => {
  it('names the setting and both values', () => {
    expect(describeChange({ setting: 'updateDirection', oldValue: 'inbound', newValue: 'bidirectional' })).toBe(
      'changed Contact update from Inbound to Bi-directional',
    );
    expect(describeChange({ setting: 'creationDirection', oldValue: null, newValue: 'inbound' })).toBe('set Contact creation to Inbound');
    expect(describeChange({ setting: 'paused', oldValue: 'false', newValue: 'true' })).toBe('paused sync');
    expect(describeChange({ setting: 'paused', oldValue: 'true', newValue: 'false' })).toBe('resumed sync');
  });
});

describe('latest problem', () => {
  it('is none when all is well', () => {
    expect(latestProblem(healthy, true)).toBeNull();
  });

  it('puts lost access first, with advice that depends on who is looking', () => {
    const status = { ...healthy, installation: { status: 'needs_reauth' as const, reason: null }, lastError: { message: 'x', at: '2024-01-01T00:00:00.000Z' } };
    expect(latestProblem(status, true)).toMatchObject({ tone: 'error', action: expect.stringContaining('Reconnect Tandem') });
    expect(latestProblem(status, false)).toMatchObject({ action: expect.stringContaining('Ask an admin') });
    // The reason is a sentence of its own, whatever wrote it (an older row may lack the full stop).
    const reason = 'HighLevel no longer accepts Tandem’s access to this sub-account: its authorization was revoked or has expired';
    const lost = latestProblem({ ...status, installation: { status: 'needs_reauth', reason } }, true)!;
    expect(lost.message).toBe(`${reason}.`);
    expect(sentence(`${reason}.`)).toBe(`${reason}.`);
  });

  it('shows changes HighLevel cannot take for now before any older notice, naming whose', () => {
    const notice = { message: '1 HighLevel user owns contacts but has no Tandem user with the same email; Sync users repairs them.', at: '2024-01-01T00:00:00.000Z' };
    const retrying = { count: 1, message: 'HighLevel answered 500: Internal error', nextAttemptAt: '2024-01-01T00:05:00.000Z', contact: 'Dana Cruz' };
    const one = latestProblem({ ...healthy, lastError: notice, retrying }, true)!;
    expect(one).toMatchObject({ tone: 'warn', message: 'HighLevel could not take Tandem’s change to Dana Cruz yet: HighLevel answered 500: Internal error.' });
    expect(one.action).toContain('tries again by itself');
    const many = latestProblem({ ...healthy, retrying: { ...retrying, count: 4 } }, true)!;
    expect(many.message).toBe('HighLevel could not take 4 of Tandem’s changes yet (the latest: to Dana Cruz): HighLevel answered 500: Internal error.');
    // Lost access still comes first.
    expect(latestProblem({ ...healthy, retrying, installation: { status: 'needs_reauth', reason: null } }, true)!.tone).toBe('error');
  });

  it('shows custom fields HighLevel would not list, with advice that depends on the cause and who is looking', () => {
    const scope = {
      message: "HighLevel did not let Tandem read this sub-account's custom fields (it answered 401: The token is not authorized for this scope). Installing Tandem on the sub-account again grants the access it needs (the scope locations/customFields.readonly).",
      at: '2024-01-02T00:00:00.000Z',
      refused: true,
    };
    expect(latestProblem({ ...healthy, customFieldsProblem: scope }, true)).toMatchObject({ tone: 'warn', message: scope.message, action: expect.stringContaining('Install Tandem on this sub-account again') });
    expect(latestProblem({ ...healthy, customFieldsProblem: scope }, false)!.action).toContain('Ask an admin');
    const blip = { message: "Listing this sub-account's custom fields in HighLevel failed: HighLevel answered 502", at: scope.at, refused: false };
    expect(latestProblem({ ...healthy, customFieldsProblem: blip }, true)).toMatchObject({ message: `${blip.message}.`, action: expect.stringContaining('lists them again within minutes') });
    // The most recent problem is shown: an older notice (owners that cannot be paired, say) does
    // not hide it, and a newer one comes first.
    const older = { message: 'HighLevel answered 500', at: '2024-01-01T00:00:00.000Z' };
    expect(latestProblem({ ...healthy, lastError: older, customFieldsProblem: scope }, true)!.message).toBe(scope.message);
    const newer = { ...older, at: '2024-01-03T00:00:00.000Z' };
    expect(latestProblem({ ...healthy, lastError: newer, customFieldsProblem: scope }, true)!.message).toBe('HighLevel answered 500.');
  });

  it('shows the more recent of the loop error and a refused change', () => {
    const error = { message: 'HighLevel answered 429', at: '2024-01-01T00:00:02.000Z' };
    const failure = { message: 'invalid email', at: '2024-01-01T00:00:01.000Z', contact: 'Dana Cruz' };
    const rateLimited = latestProblem({ ...healthy, lastError: error, lastFailure: failure, failedOutbound: 1 }, true)!;
    expect(rateLimited.message).toBe('HighLevel answered 429.');
    expect(rateLimited.action).toContain('carries on by itself');
    // In the loop's plain words (server/sync/describe-error.ts), no status code to go by.
    const slowDown = latestProblem({ ...healthy, lastError: { ...error, message: 'HighLevel asked Tandem to slow down. Tandem will try again shortly.' } }, true)!;
    expect(slowDown.action).toContain('carries on by itself');
    const refused = latestProblem({ ...healthy, lastError: { ...error, at: '2024-01-01T00:00:00.000Z' }, lastFailure: failure, failedOutbound: 1 }, true)!;
    expect(refused.message).toBe('HighLevel refused Tandem’s change to Dana Cruz: invalid email.');
    expect(refused.action).toMatch(/^Correct Dana Cruz in Tandem \(the Contacts tab’s Refused filter shows it with its reason\); Tandem sends it again/);
    const more = latestProblem({ ...healthy, lastFailure: failure, failedOutbound: 3 }, true)!;
    expect(more.message).toBe('HighLevel refused Tandem’s change to Dana Cruz: invalid email. 2 other contacts were refused too.');
    expect(more.action).toContain('Refused filter lists each one');
    // Not "Nothing else is held back" beside edits the settings hold: the refusal holds nothing else.
    expect(more.action).toMatch(/The refusal holds back no other contact’s change\.$/);
    // A plain user cannot edit contacts here: asked to have an admin do it.
    const plainUser = latestProblem({ ...healthy, lastFailure: failure, failedOutbound: 1 }, false)!;
    expect(plainUser.action).toMatch(/^Ask an admin to correct Dana Cruz in Tandem/);
    expect(plainUser.action).toContain('Tandem sends it again after the next edit. The refusal');
    // Refused as a duplicate: also sent by itself once the other contact lets go (db/outbox.ts releaseRefusals).
    const duplicate = { ...failure, message: 'this contact’s email is already on a HighLevel contact linked to Ada Byron in Tandem, and the location does not allow duplicates' };
    const held = latestProblem({ ...healthy, lastFailure: duplicate, failedOutbound: 1 }, true)!;
    expect(held.action).toContain('Tandem sends it again after the next edit, or by itself once the other contact no longer has that email or phone.');
    // Tandem refuses those itself when it knows the holder, so the words do not say HighLevel refused.
    expect(held.message).toBe(`Tandem’s change to Dana Cruz cannot go to HighLevel: ${duplicate.message}.`);
  });

  it('says a refused deletion of a contact archived in Tandem apart: it stays in HighLevel, and is not on the Contacts tab', () => {
    const deletion = { count: 1, message: 'contact is locked', at: '2024-01-01T00:00:03.000Z', contact: 'Olga Old' };
    const one = latestProblem({ ...healthy, lastFailure: { message: 'invalid email', at: '2024-01-01T00:00:01.000Z', contact: 'Dana Cruz' }, failedOutbound: 1, refusedDeletion: deletion }, true)!;
    expect(one.message).toBe('HighLevel refused to delete Olga Old, archived in Tandem: contact is locked.');
    expect(one.action).toBe('Olga Old stays in HighLevel. Delete it there, or restore it in Tandem to keep syncing. Nothing else is held back.');
    expect(one.tone).toBe('warn');
    const three = latestProblem({ ...healthy, refusedDeletion: { ...deletion, count: 3 } }, false)!;
    expect(three.message).toBe('HighLevel refused to delete Olga Old, archived in Tandem: contact is locked. 2 other deletions were refused too.');
    expect(three.action).toMatch(/^These contacts stay in HighLevel\. Ask an admin to delete them there, or restore them in Tandem/);
    // An older refused deletion does not hide a newer refused change.
    const newer = latestProblem({ ...healthy, lastFailure: { message: 'invalid email', at: '2024-01-01T00:00:09.000Z', contact: 'Dana Cruz' }, failedOutbound: 1, refusedDeletion: deletion }, true)!;
    expect(newer.message).toContain('Dana Cruz');
  });

  it('sends unmatched owners to Sync users first, then says what it cannot repair', () => {
    const advice = (message: string) => latestProblem({ ...healthy, lastError: { message, at: '2024-01-01T00:00:00.000Z' } }, true)!.action;
    // QA: a fresh install's first notice began "Add in HighLevel any Tandem user it lacks", when
    // HighLevel's owners only want Sync users (it adds them to Tandem).
    const fresh = advice('2 HighLevel users own contacts but have no active Tandem user with the same email: those owners were not copied (Sync users repairs them).');
    expect(fresh).toBe('Run Sync users under One-time operations below: it adds HighLevel owners missing from Tandem, pairs users with the same email and re-applies the owners.');
    // QA: owners Sync users cannot pair were told "Sync users repairs them". Each cause gets its own advice.
    const mixed = advice(
      '1 HighLevel user owns contacts but has no active Tandem user with the same email: that owner was not copied (Sync users repairs it). ' +
        '2 HighLevel users own contacts but are deactivated in HighLevel; 1 HighLevel user owns contacts but was deleted in HighLevel; 1 Tandem user owns contacts but has no active HighLevel user with the same email: their contacts keep the owner they have on each side, and Sync users cannot pair them.',
    );
    expect(mixed).toMatch(/^Run Sync users under One-time operations below/);
    expect(mixed).toContain('An owner deactivated or deleted in HighLevel cannot be paired: reactivate them in HighLevel, or give their contacts another owner.');
    expect(mixed).toContain('A Tandem user HighLevel lacks must be added in HighLevel, with the same email; they are paired by themselves then.');
    expect(mixed).not.toContain('deactivated in Tandem');
    // Only owners it cannot pair: Sync users is not offered.
    const shared = advice('2 HighLevel users own contacts but share their email with another HighLevel user: their contacts keep the owner they have on each side, and Sync users cannot pair them.');
    expect(shared).toBe('Give each HighLevel user an email of their own, then run Sync users.');
    expect(advice('1 Tandem user owns contacts but is deactivated in Tandem: their contacts keep the owner they have on each side, and Sync users cannot pair it.')).toBe(
      'An owner deactivated in Tandem cannot be paired: reactivate them in Tandem, or give their contacts another owner.',
    );
  });

  it('says HighLevel’s daily limit passes by itself, not that Tandem slows down', () => {
    const message = 'HighLevel’s daily request limit for this sub-account is used up; sync resumes at 2026-12-08 00:00 UTC.';
    const problem = latestProblem({ ...healthy, lastError: { message, at: '2026-12-07T12:00:00.000Z' } }, true)!;
    expect(problem.action).toMatch(/^Nothing: HighLevel allows more requests when its daily limit resets/);
  });
});

describe('the status strip while sync is held back', () => {
  // The loop's words for a pass held back or failed (server/sync/describe-error.ts describeError),
  // as GET /api/panel/sync carried them during a 503 outage, a 429 hold and the daily limit.
  const readAt = Date.parse('2026-12-07T23:40:00.000Z');
  const pacific = { timeZone: 'America/Los_Angeles' };
  const owners = { message: '2 HighLevel users own contacts but have no active Tandem user with the same email: those owners were not copied (Sync users repairs them).', at: '2026-12-07T23:30:00.000Z' };
  const outage = { count: 1, message: 'HighLevel is not answering right now (it may be down or busy).', nextAttemptAt: '2026-12-07T23:42:10.000Z', contact: 'Owen Brown' };
  const daily = { message: 'HighLevel’s daily request limit for this sub-account is used up; sync resumes at 2026-12-08 00:00 UTC.', at: '2026-12-07T23:39:50.000Z' };
  const tooMany = {
    message: 'HighLevel has been refusing Tandem’s requests as too many since 2026-12-07 23:38 UTC; changes wait, and Tandem tries again at 2026-12-07 23:41 UTC.',
    at: '2026-12-07T23:39:09.000Z',
  };
  const down = { message: 'HighLevel is not answering right now (it may be down or busy). Tandem will try again shortly.', at: '2026-12-07T23:39:30.000Z' };

  it('is green only when nothing holds sync back: a pairing notice or a refused contact does not', () => {
    expect(statusStrip(healthy, readAt, pacific)).toEqual({ state: 'on', tone: 'ok', label: 'Sync on', detail: 'Changes move automatically, usually within seconds.' });
    expect(statusStrip({ ...healthy, lastError: owners }, readAt, pacific).state).toBe('on');
    const refused = { message: 'invalid email', at: '2026-12-07T23:35:00.000Z', contact: 'Dana Cruz' };
    expect(statusStrip({ ...healthy, lastFailure: refused, failedOutbound: 1 }, readAt, pacific).state).toBe('on');
    expect(latestProblem({ ...healthy, lastError: owners }, true)!.hold).toBeNull();
  });

  it('says an outage in amber, and when Tandem tries again in the viewer’s zone, in the strip and the problem', () => {
    const status = { ...healthy, lastError: owners, retrying: outage, pendingOutbound: 1 };
    const strip = statusStrip(status, readAt, pacific);
    expect(strip).toMatchObject({ state: 'retrying', tone: 'warn', label: 'Retrying' });
    expect(strip.detail).not.toContain('usually within seconds');
    expect(strip.detail).toMatch(/Tandem tries again at Dec 7, 3:42\sPM PST \(in 2 minutes\)\.$/);
    const problem = latestProblem(status, true)!;
    expect(problem.message).toBe('HighLevel could not take Tandem’s change to Owen Brown yet: HighLevel is not answering right now (it may be down or busy).');
    // The box has no time of its own to say it by: it says the next attempt.
    expect(problem.hold).toEqual({ reason: 'retrying', next: outage.nextAttemptAt, nextInMessage: false });
    expect(nextAttempt(problem.hold!, readAt, pacific)).toMatch(/^Tandem tries again at Dec 7, 3:42\sPM PST \(in 2 minutes\)\.$/);
    // Due already (the loop has not come round to it yet): not a time in the past.
    expect(nextAttempt(problem.hold!, Date.parse(outage.nextAttemptAt) + 5_000, pacific)).toBe('Tandem is trying again now.');
    // A pass that failed says so itself ("shortly"): the strip holds too, without a time to promise.
    const failing = statusStrip({ ...healthy, lastError: down }, readAt, pacific);
    expect(failing).toMatchObject({ state: 'retrying', tone: 'warn', label: 'Retrying' });
    expect(failing.detail).toMatch(/Tandem tries again shortly, by itself\.$/);
    expect(latestProblem({ ...healthy, lastError: down }, true)!.hold!.nextInMessage).toBe(true);
  });

  it('says HighLevel’s daily limit and its 429s apart, with when sync goes on', () => {
    const limited = statusStrip({ ...healthy, lastError: daily }, readAt, pacific);
    expect(limited).toMatchObject({ state: 'daily', tone: 'warn', label: 'Daily limit reached' });
    expect(limited.detail).toMatch(/Sync goes on at Dec 7, 4:00\sPM PST \(in 20 minutes\)\.$/);
    const slowed = statusStrip({ ...healthy, lastError: tooMany }, readAt, pacific);
    expect(slowed).toMatchObject({ state: 'rate_limited', tone: 'warn', label: 'Slowed down' });
    // The time it tries again, not the one it began refusing at.
    expect(slowed.detail).toMatch(/Tandem tries again at Dec 7, 3:41\sPM PST \(in 1 minute\)\.$/);
    // The message carries its time already (shown in the viewer's zone): not said twice.
    expect(latestProblem({ ...healthy, lastError: daily }, true)!.hold).toEqual({ reason: 'daily', next: '2026-12-08T00:00:00.000Z', nextInMessage: true });
  });

  it('shows the problem that holds sync back in the box too, before changes retrying and newer refusals', () => {
    const refused = { message: 'invalid email', at: '2026-12-07T23:39:55.000Z', contact: 'Dana Cruz' };
    // QA: the strip green while the box said HighLevel was not answering; and the box must not
    // show a retry due minutes ago while the daily limit holds everything.
    const problem = latestProblem({ ...healthy, lastError: daily, retrying: outage, lastFailure: refused, failedOutbound: 1 }, true)!;
    expect(problem.message).toBe(daily.message);
    expect(problem.action).toMatch(/^Nothing: HighLevel allows more requests when its daily limit resets/);
    expect(statusStrip({ ...healthy, lastError: daily, retrying: outage }, readAt, pacific).state).toBe('daily');
    // Paused by an admin, or HighLevel's access lost, say so first.
    expect(statusStrip({ ...healthy, paused: true, lastError: daily }, readAt, pacific)).toMatchObject({ state: 'paused', label: 'Paused' });
    expect(statusStrip({ ...healthy, installation: { status: 'needs_reauth', reason: null }, retrying: outage }, readAt, pacific)).toMatchObject({ state: 'stopped', tone: 'error' });
  });
});

describe('what holds the changes waiting to go out', () => {
  const waiting = { pendingOutboundNew: 2, pendingOutboundEdits: 1 };

  it('names the setting that holds each kind, whichever of the two is Inbound', () => {
    expect(heldOutbound({ creationDirection: 'inbound', updateDirection: 'inbound' }, waiting)).toEqual([
      '2 new contacts held: Contact creation is Inbound.',
      '1 edit held: Contact update is Inbound.',
    ]);
    // Only updates Inbound (the default): the edit is still held and says so; new contacts go out.
    expect(heldOutbound({ creationDirection: 'bidirectional', updateDirection: 'inbound' }, waiting)).toEqual(['1 edit held: Contact update is Inbound.']);
    expect(heldOutbound({ creationDirection: 'inbound', updateDirection: 'bidirectional' }, waiting)).toEqual(['2 new contacts held: Contact creation is Inbound.']);
  });

  it('says nothing when nothing waiting is held', () => {
    expect(heldOutbound({ creationDirection: 'bidirectional', updateDirection: 'bidirectional' }, waiting)).toEqual([]);
    expect(heldOutbound({ creationDirection: 'inbound', updateDirection: 'inbound' }, { pendingOutboundNew: 0, pendingOutboundEdits: 0 })).toEqual([]);
  });

  it('does not promise that Inbound keeps Tandem’s changes out of HighLevel for good', () => {
    const inbound = [CREATION_OPTIONS, UPDATE_OPTIONS].map((options) => options.find((o) => o.value === 'inbound')!.description);
    for (const text of inbound) expect(text).toMatch(/(until|when) you switch to Bi-directional/);
  });
});

describe('a setting someone changed while the draft was open', () => {
  it('says who set it to what, and what the draft sets it to', () => {
    const conflict = { setting: 'creationDirection', mine: 'inbound', theirs: 'bidirectional', change: { userId: 'u-ada', userName: 'Ada Admin' } };
    expect(conflictLine(conflict, 'u-sam')).toBe('Ada Admin changed Contact creation to Bi-directional since you began editing; your draft sets it to Inbound.');
    // The viewer's own change, made in another tab or window.
    expect(conflictLine(conflict, 'u-ada')).toMatch(/^You \(in another tab or window\) changed Contact creation/);
    expect(conflictLine({ ...conflict, change: { userId: 'u-x', userName: null } }, 'u-sam')).toMatch(/^Another admin changed/);
    expect(conflictLine({ ...conflict, change: undefined }, 'u-sam')).toMatch(/^Someone changed/);
  });
});

describe('the settings history toggle', () => {
  it('offers the older changes by count, then the latest ten again', () => {
    expect(HISTORY_SHOWN).toBe(10);
    expect(historyToggle(10, false)).toBe('Show 10 older changes');
    expect(historyToggle(1, false)).toBe('Show 1 older change');
    expect(historyToggle(7, true)).toBe('Show only the latest 10');
  });
});

describe('the status strip reads the loop’s own words', () => {
  // The strip tells a held loop by the words describeError gives it: generated here, not copied,
  // so a change of those words that the strip would no longer read fails this test.
  const readAt = Date.parse('2026-12-07T23:40:00.000Z');
  const at = '2026-12-07T23:39:00.000Z';
  const held = (message: string) => latestProblem({ ...healthy, lastError: { message, at } }, true)?.hold ?? null;

  it('as a hold for a failing pass, a 429 hold and the daily limit', () => {
    const retryAt = readAt + 90_000;
    expect(held(describeError(new HighLevelError(503, 'Service Unavailable')))).toMatchObject({ reason: 'retrying' });
    expect(held(describeError(new HighLevelError(0, 'fetch failed', { kind: 'network' })))).toMatchObject({ reason: 'retrying' });
    expect(held(describeError(new DeferredError(retryAt, 'rate_limited'), { since: readAt - 120_000 }))).toMatchObject({ reason: 'rate_limited' });
    expect(held(describeError(new DeferredError(retryAt, 'daily')))).toMatchObject({ reason: 'daily' });
    expect(statusStrip({ ...healthy, lastError: { message: describeError(new DeferredError(retryAt, 'daily')), at } }, readAt, { timeZone: 'UTC' })).toMatchObject({ tone: 'warn' });
  });

  it('and not as one for a location HighLevel reports inactive, which waits for HighLevel, not for a retry', () => {
    expect(held(describeError(new LocationPausedError({ type: 'location', id: 'loc' }, 'inactive')))).toBeNull();
  });
});
