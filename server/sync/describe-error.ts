// HighLevel's failures in plain words for the panel: what happened and what Tandem or the admin
// does about it. Never a token, a request body, a method and path or a status code: those stay in
// the logs, which get the error itself. HighLevel's own reason for refusing a request (e.g. "This
// location does not allow duplicated contacts") is kept, since it tells the admin what to fix.
//
// plainProblem says what went wrong; describeError adds what the sync loop does next (its status
// strip), describeWait why a one-time operation waits and until when, describeRunError what the
// admin does next (a one-time operation that stopped), refusalReason is HighLevel's reason for
// refusing one contact's change, and recordProblem / tandemSaveProblem say why one record of a
// one-time operation failed and what to do (HighLevel's own words after them, as a detail).
import { classifyHighLevelError, HighLevelError } from '../highlevel/http.ts';
import { DeferredError } from '../highlevel/contacts.ts';
import { LocationPausedError, ReauthRequiredError, UNINSTALLED_REASON } from '../highlevel/token-provider.ts';
import { TokenCipherError } from '../security/token-cipher.ts';

/**
 * Problems of Tandem's own machine that stop a location's sync, in words that say what to fix:
 * the stored tokens under another key, the database's disk full or the database read-only
 * (SQLite's codes, as better-sqlite3 reports them). Null for anything else.
 */
function ownProblem(err: unknown): string | null {
  if (err instanceof TokenCipherError) {
    return 'Tandem cannot read the HighLevel access it stored for this location: it was saved under another TOKEN_ENCRYPTION_KEY. Start Tandem with that key (or add it to TOKEN_ENCRYPTION_KEYS_OLD); changes wait meanwhile.';
  }
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  if (code === 'SQLITE_FULL') return 'The disk Tandem stores its data on is full; changes wait. Free some space: sync resumes by itself.';
  if (code.startsWith('SQLITE_READONLY')) return 'Tandem cannot write its database (the file or its folder is read-only); changes wait. Make it writable and restart Tandem.';
  return null;
}

const NOT_ANSWERING = 'HighLevel is not answering right now (it may be down or busy).';

/**
 * Messages that only restate the status (NestJS's defaults, errorMessage's `HTTP 503`) or name a
 * request (`Cannot POST /contacts/x`): nothing in them an admin can act on.
 */
const STATUS_ONLY =
  /^(?:HTTP \d{3}|bad request|unauthori[sz]ed|forbidden|not found|method not allowed|conflict|gone|payload too large|unprocessable entity|too many requests|internal server error|bad gateway|service unavailable|gateway timeout|request timeout)\.?$/i;
const NAMES_A_REQUEST = /\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+\/|https?:\/\//i;
/** An HTTP library's generic failure ("Request failed with status code 422"): a status, not a reason. */
const GENERIC_FAILURE = /^request failed with status(?: code)? \d{3}\b/i;

/** HighLevel's own reason for refusing a request, when it gave one worth reading; else null. */
function ownReason(err: HighLevelError): string | null {
  const text = err.message.trim().replace(/\s+/g, ' ');
  if (!text || STATUS_ONLY.test(text) || NAMES_A_REQUEST.test(text) || GENERIC_FAILURE.test(text)) return null;
  return sentence(text.length > 200 ? `${text.slice(0, 199)}…` : text);
}

function sentence(text: string): string {
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}

// Server text has no viewer: UTC, written so the panel can find it and show it in the viewer's
// own zone ("YYYY-MM-DD HH:MM UTC", web/lib/time.ts localizeUtcTimes).
export const utc = (at: number) => `${new Date(at).toISOString().replace('T', ' ').slice(0, 16)} UTC`;

/** What holds Tandem's requests back, as the panel tells the admin (the gate's routine pacing, 'burst', aside). */
export type WaitReason = 'daily' | 'rate_limited' | 'token' | 'burst';

/**
 * Why `err` defers: as the budget gate said, except that a 429 whose headers show no request left
 * today is HighLevel's daily limit, not a request to slow down, and it lasts until the day's reset.
 */
export function waitReason(err: DeferredError): WaitReason {
  if (err.reason === 'rate_limited' && err.cause instanceof HighLevelError && err.cause.rateLimit?.dailyRemaining === 0) return 'daily';
  return err.reason;
}

const DAILY_USED_UP = 'HighLevel’s daily request limit for this sub-account is used up';

/**
 * A deferral in words: why, and when the work goes on (`resumes`, e.g. "sync resumes"; `retries`
 * for a token refresh that failed, e.g. "it tries again"). `since`: as for describeError.
 */
function describeDeferral(err: DeferredError, words: { resumes: string; retries: string; since?: number | undefined }): string {
  const at = utc(err.retryAt);
  const reason = waitReason(err);
  if (reason === 'daily') return `${DAILY_USED_UP}; ${words.resumes} at ${at}.`;
  if (reason === 'token') return `Tandem could not get a fresh access token from HighLevel; ${words.retries} at ${at}.`;
  if (reason === 'rate_limited' && words.since !== undefined) {
    return `HighLevel has been refusing Tandem’s requests as too many since ${utc(words.since)}; changes wait, and Tandem tries again at ${at}.`;
  }
  return `HighLevel asked Tandem to slow down; ${words.resumes} at ${at}.`;
}

/** Why a one-time operation waits, while it waits (its progress carries the reason and the time as data too). */
export function describeWait(err: DeferredError): string {
  return describeDeferral(err, { resumes: 'the run goes on', retries: 'the run goes on' });
}

/** What went wrong, in one or two sentences, without what happens next. */
export function plainProblem(err: unknown): string {
  if (err instanceof ReauthRequiredError || err instanceof LocationPausedError) return err.reason;
  if (err instanceof HighLevelError) {
    if (err.kind === 'network') return 'Tandem could not reach HighLevel.';
    if (err.kind === 'timeout') return 'HighLevel did not answer in time.';
    if (err.kind === 'invalid_response') return 'HighLevel sent an answer Tandem could not read.';
    if (err.status === 429) return 'HighLevel asked Tandem to slow down.';
    if (err.status === 408 || err.status >= 500) return NOT_ANSWERING;
    if (err.status === 401) return 'HighLevel did not accept Tandem’s access for this request.';
    if (err.status === 403) return 'HighLevel does not allow Tandem to do this in this sub-account.';
    if (err.status === 404) return 'HighLevel could not find what Tandem asked for (it may have been deleted there).';
    const reason = ownReason(err);
    return reason ? `HighLevel refused Tandem’s request: ${reason}` : 'HighLevel refused Tandem’s request.';
  }
  return 'Tandem ran into an unexpected problem.';
}

/**
 * HighLevel's reason for refusing one contact's change, for "HighLevel refused Tandem's change to
 * Ann: …": its own words when it gave some, else what went wrong.
 */
export function refusalReason(err: unknown): string {
  if (err instanceof HighLevelError && err.kind === 'http' && err.status >= 400 && err.status < 500 && ![401, 403, 404, 408, 429].includes(err.status)) {
    const reason = ownReason(err);
    if (reason) return reason;
  }
  return plainProblem(err);
}

/**
 * The latest error of a location's loop, as the Sync tab's status strip shows it. `since`: when
 * HighLevel began refusing requests as too many (429s), for a location held back by them.
 */
export function describeError(err: unknown, opts: { since?: number } = {}): string {
  if (err instanceof DeferredError) return describeDeferral(err, { resumes: 'sync resumes', retries: 'it tries again', since: opts.since });
  if (err instanceof ReauthRequiredError) return err.reason === UNINSTALLED_REASON ? err.reason : `${err.reason} Reconnect Tandem to resume sync.`;
  if (err instanceof LocationPausedError) return 'HighLevel reports this location as inactive; sync resumes when it is active again.';
  if (err instanceof HighLevelError) {
    return `${plainProblem(err)} Tandem will try again${classifyHighLevelError(err) === 'retry' ? ' shortly' : ''}.`;
  }
  return ownProblem(err) ?? 'Sync stopped on an unexpected problem; Tandem will try again.';
}

/**
 * Why a one-time operation stopped, for its dialog and history: what went wrong and what the admin
 * does about it. An operation does not retry on its own once it has stopped, so nothing here
 * promises that it will.
 */
export function describeRunError(err: unknown): string {
  if (err instanceof DeferredError) {
    if (waitReason(err) === 'daily') return `${DAILY_USED_UP} until ${utc(err.retryAt)}. Run the operation again after that.`;
    if (err.reason === 'token') return 'Tandem could not get a fresh access token from HighLevel. Try again in a few minutes.';
    return 'HighLevel asked Tandem to slow down. Try again in a few minutes.';
  }
  if (err instanceof ReauthRequiredError) {
    return err.reason === UNINSTALLED_REASON ? `${err.reason} Install it again to run the operation.` : `${err.reason} Reconnect Tandem, then run the operation again.`;
  }
  if (err instanceof LocationPausedError) return `${err.reason} Run the operation again once it is active.`;
  if (err instanceof HighLevelError) {
    return classifyHighLevelError(err) === 'retry' ? `${plainProblem(err)} Try again in a few minutes.` : plainProblem(err);
  }
  return 'The operation stopped on an unexpected problem. Try again; if it stops again, contact support and mention the time shown.';
}

const capital = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** HighLevel's own words, kept after Tandem's as a detail (the panel shows them apart). */
const said = (reason: string | null) => (reason ? ` HighLevel said: “${reason}”` : '');

/**
 * Why HighLevel did not take one record of a one-time operation, and what the admin does about it,
 * for the run's History: `again` is the way to retry it ("run Push contacts again"), `tries` how
 * many times Tandem sent it. HighLevel's own reason comes last, as a detail, where it gave one;
 * never a status, a request or a transport error.
 */
export function recordProblem(err: unknown, opts: { again: string; tries?: number }): string {
  const again = capital(opts.again);
  const tried = (subject: string) => (opts.tries && opts.tries > 1 ? `; ${subject} tried ${opts.tries} times. ` : '. ');
  if (!(err instanceof HighLevelError)) return `Tandem ran into an unexpected problem with this record. ${again}; if it fails again, contact support with the time of this run.`;
  if (err.kind === 'network') return `Tandem could not reach HighLevel${tried('it')}${again} later.`;
  if (err.kind === 'timeout') return `HighLevel did not answer in time${tried('Tandem')}${again} later.`;
  if (err.kind === 'invalid_response') return `HighLevel sent an answer Tandem could not read${tried('Tandem')}${again} later.`;
  if (err.status === 408 || err.status === 429 || err.status >= 500) return `HighLevel was not answering (it may have been down or busy)${tried('Tandem')}${again} later.`;
  if (err.status === 401) return `HighLevel did not accept Tandem’s access for this contact. Reconnect Tandem, then ${opts.again}.`;
  if (err.status === 403) {
    return `HighLevel did not allow Tandem to change this contact. Check that Tandem still has access to contacts in this sub-account, then ${opts.again}.${said(ownReason(err))}`;
  }
  if (err.status === 404) return 'HighLevel could not find this contact (it may have been deleted there).';
  const reason = ownReason(err);
  return reason
    ? `HighLevel refused this contact’s values. Correct the contact in Tandem, then ${opts.again}.${said(reason)}`
    : `HighLevel refused this contact’s values without saying why. Check the contact in Tandem, then ${opts.again}.`;
}

/** Why Tandem could not write one record of a one-time operation on its own side (the database's words stay in the log). */
export function tandemSaveProblem(record: 'contact' | 'user', again: string): string {
  return `Tandem could not save this ${record}. ${capital(again)}; if it fails again, contact support with the time of this run.`;
}
