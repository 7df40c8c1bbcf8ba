// How HighLevel's failures read on the panel (server/sync/describe-error.ts): in plain words, never
// a method, path or status code, keeping HighLevel's own reason for refusing a contact; the sync
// loop's wording, a waiting operation's and a stopped one's; a 429 that leaves no request for the
// day is HighLevel's daily limit, said as such; one record of a one-time operation that failed, in
// words that say what went wrong and what to do, HighLevel's own reason kept as a detail after them.
import { describe, expect, it } from 'vitest';
import { DeferredError } from '../../server/highlevel/contacts.ts';
import { HighLevelError } from '../../server/highlevel/http.ts';
import { REAUTH_REASON, ReauthRequiredError, UNINSTALLED_REASON } from '../../server/highlevel/token-provider.ts';
import { TokenCipherError } from '../../server/security/token-cipher.ts';
import { describeError, describeRunError, describeWait, plainProblem, recordProblem, refusalReason, tandemSaveProblem, waitReason } from '../../server/sync/describe-error.ts';
import { describeOperationError } from '../../server/sync/operations/runner.ts';

const http = (status: number, message: string, request = 'POST /contacts/search') =>
  new HighLevelError(status, message, { kind: 'http', body: { statusCode: status, message }, request });

/** What no panel text may carry: a method and path, a status code, HighLevel's auth wording. */
const TECHNICAL = /\b(?:GET|POST|PUT|DELETE)\b|\/contacts|\/oauth|\b[45]\d\d\b|invalid (?:grant|jwt)/i;

describe('describeOperationError', () => {
  it('tells the admin to run the operation again after reconnecting, not to "resume sync"', () => {
    const text = describeOperationError(new ReauthRequiredError({ type: 'location', id: 'loc' }, 'invalid_grant'));
    expect(text).toBe(`${REAUTH_REASON.revoked} Reconnect Tandem, then run the operation again.`);
  });

  it('does not promise an automatic retry the operation will not make', () => {
    const text = describeOperationError(new HighLevelError(0, 'socket hang up', { kind: 'network', request: 'POST /contacts/search' }));
    // What to do, not "Tandem will try again": a stopped operation does not.
    expect(text).toBe('Tandem could not reach HighLevel. Try again in a few minutes.');
    expect(describeOperationError(new Error('boom'))).toMatch(/^The operation stopped on an unexpected problem\. Try again/);
  });

  it('says HighLevel is down without the status or the request', () => {
    const text = describeOperationError(http(503, 'Service Unavailable'));
    expect(text).toBe('HighLevel is not answering right now (it may be down or busy). Try again in a few minutes.');
  });
});

describe('HighLevel errors in plain words', () => {
  it('says HighLevel is down or busy for a 5xx, and what happens next, without status or request', () => {
    const down = http(503, 'Service Unavailable');
    expect(describeError(down)).toBe('HighLevel is not answering right now (it may be down or busy). Tandem will try again shortly.');
    expect(describeRunError(down)).toBe('HighLevel is not answering right now (it may be down or busy). Try again in a few minutes.');
    for (const err of [down, http(500, 'Internal server error'), http(502, '<html>Bad Gateway</html>'), http(408, 'Request Timeout')]) {
      for (const text of [describeError(err), describeRunError(err), plainProblem(err)]) expect(text).not.toMatch(TECHNICAL);
    }
  });

  it('keeps HighLevel’s own reason for refusing a contact, without method or path', () => {
    const duplicate = http(400, 'This location does not allow duplicated contacts.', 'POST /contacts/');
    expect(plainProblem(duplicate)).toBe('HighLevel refused Tandem’s request: This location does not allow duplicated contacts.');
    expect(refusalReason(duplicate)).toBe('This location does not allow duplicated contacts.');
    expect(describeError(duplicate)).toBe('HighLevel refused Tandem’s request: This location does not allow duplicated contacts. Tandem will try again.');
    // Nothing is promised for a request HighLevel refuses as it is.
    expect(describeRunError(duplicate)).toBe('HighLevel refused Tandem’s request: This location does not allow duplicated contacts.');
    // Validation messages come as a list (errorMessage joins them).
    expect(refusalReason(http(422, 'phone must be a valid phone number; email must be an email', 'PUT /contacts/abc'))).toBe(
      'phone must be a valid phone number; email must be an email.',
    );
  });

  it('drops what only restates the status or names a request', () => {
    expect(plainProblem(http(400, 'Bad Request'))).toBe('HighLevel refused Tandem’s request.');
    expect(plainProblem(http(400, 'HTTP 400'))).toBe('HighLevel refused Tandem’s request.');
    expect(plainProblem(http(400, 'Cannot POST /contacts/upsert'))).toBe('HighLevel refused Tandem’s request.');
    expect(refusalReason(http(409, 'Conflict'))).toBe('HighLevel refused Tandem’s request.');
    expect(plainProblem(http(404, 'Contact with id abc not found', 'GET /contacts/abc'))).not.toMatch(TECHNICAL);
    expect(plainProblem(http(401, 'Invalid JWT'))).not.toMatch(TECHNICAL);
    expect(plainProblem(http(403, 'The token is not authorized for this scope.'))).not.toMatch(TECHNICAL);
    expect(plainProblem(http(429, 'Too Many Requests'))).toBe('HighLevel asked Tandem to slow down.');
    const garbled = new HighLevelError(200, 'GET /users/ answered 200 without JSON', { kind: 'invalid_response', request: 'GET /users/' });
    expect(describeError(garbled)).toBe('HighLevel sent an answer Tandem could not read. Tandem will try again shortly.');
  });

  it('says HighLevel no longer accepts Tandem with one instruction, Reconnect, and keeps HighLevel’s words out', () => {
    const lost = new ReauthRequiredError({ type: 'location', id: 'loc' }, 'location loc needs re-authorization: Invalid grant: refresh token is invalid');
    expect(describeError(lost)).toBe(
      'HighLevel no longer accepts Tandem’s access to this sub-account: its authorization was revoked or has expired. Reconnect Tandem to resume sync.',
    );
    expect(describeRunError(lost)).toBe(`${REAUTH_REASON.revoked} Reconnect Tandem, then run the operation again.`);
    for (const text of [describeError(lost), describeRunError(lost), plainProblem(lost)]) expect(text).not.toMatch(/reinstall|invalid grant/i);
    // Uninstalled: nothing to reconnect.
    const gone = new ReauthRequiredError({ type: 'location', id: 'loc' }, 'location loc has no stored tokens', { reason: UNINSTALLED_REASON });
    expect(describeError(gone)).toBe('Tandem was uninstalled from this sub-account.');
  });

  it('keeps an unexpected error’s own text for the log', () => {
    const err = new Error('SQLITE_BUSY: database is locked at /srv/tandem/data');
    expect(describeError(err)).toBe('Sync stopped on an unexpected problem; Tandem will try again.');
    expect(describeRunError(err)).not.toContain('SQLITE');
  });
});

describe('HighLevel holding requests back', () => {
  const midnight = Date.parse('2026-12-08T00:00:00.000Z');
  /** A 429 as the client reports it: its headers say whether any request is left today. */
  const refused = (dailyRemaining: number | undefined) =>
    new DeferredError(midnight, 'rate_limited', 'HighLevel answered 429 for POST /contacts/search', {
      cause: new HighLevelError(429, 'Too Many Requests', { kind: 'http', request: 'POST /contacts/search', rateLimit: { dailyRemaining, dailyLimit: 1 } }),
    });

  it('calls a 429 with no request left today HighLevel’s daily limit, not a request to slow down (QA)', () => {
    expect(waitReason(refused(0))).toBe('daily');
    expect(waitReason(refused(5))).toBe('rate_limited');
    expect(waitReason(refused(undefined))).toBe('rate_limited');
    expect(waitReason(new DeferredError(midnight, 'daily'))).toBe('daily');
    const daily = 'HighLevel’s daily request limit for this sub-account is used up';
    expect(describeWait(refused(0))).toBe(`${daily}; the run goes on at 2026-12-08 00:00 UTC.`);
    expect(describeError(refused(0))).toBe(`${daily}; sync resumes at 2026-12-08 00:00 UTC.`);
    // Refused for minutes: still the daily limit, not "refusing as too many".
    expect(describeError(refused(0), { since: midnight - 3_600_000 })).toBe(`${daily}; sync resumes at 2026-12-08 00:00 UTC.`);
    expect(describeRunError(refused(0))).toBe(`${daily} until 2026-12-08 00:00 UTC. Run the operation again after that.`);
    expect(describeWait(refused(5))).toBe('HighLevel asked Tandem to slow down; the run goes on at 2026-12-08 00:00 UTC.');
    expect(describeWait(new DeferredError(midnight, 'token'))).toBe('Tandem could not get a fresh access token from HighLevel; the run goes on at 2026-12-08 00:00 UTC.');
    expect(describeError(new DeferredError(midnight, 'token'))).toBe('Tandem could not get a fresh access token from HighLevel; it tries again at 2026-12-08 00:00 UTC.');
  });
});

describe("problems of Tandem's own machine on the status strip", () => {
  it('names the setting or the fix: tokens under another key, a full disk, a read-only database', () => {
    expect(describeError(new TokenCipherError('token failed authentication (wrong key or moved ciphertext)'))).toMatch(/saved under another TOKEN_ENCRYPTION_KEY\. Start Tandem with that key/);
    const sqlite = (code: string, message: string) => Object.assign(new Error(message), { code });
    expect(describeError(sqlite('SQLITE_FULL', 'database or disk is full'))).toBe('The disk Tandem stores its data on is full; changes wait. Free some space: sync resumes by itself.');
    expect(describeError(sqlite('SQLITE_READONLY_DBMOVED', 'attempt to write a readonly database'))).toMatch(/^Tandem cannot write its database/);
    expect(describeError(new Error('boom'))).toBe('Sync stopped on an unexpected problem; Tandem will try again.');
  });
});

describe('one record of a one-time operation that failed (QA: HighLevel’s raw text in History)', () => {
  const again = 'run Push contacts again';

  it('says in plain words what went wrong and what to do, with HighLevel’s own reason after it as a detail', () => {
    const refused = http(422, 'phone must be a valid phone number', 'PUT /contacts/abc');
    expect(recordProblem(refused, { again })).toBe(
      'HighLevel refused this contact’s values. Correct the contact in Tandem, then run Push contacts again. HighLevel said: “phone must be a valid phone number.”',
    );
    // A refusal HighLevel gave no reason for: nothing to quote.
    expect(recordProblem(http(400, 'Bad Request', 'PUT /contacts/abc'), { again })).toBe(
      'HighLevel refused this contact’s values without saying why. Check the contact in Tandem, then run Push contacts again.',
    );
    expect(recordProblem(http(403, 'The token is not authorized for this scope.', 'PUT /contacts/abc'), { again })).toBe(
      'HighLevel did not allow Tandem to change this contact. Check that Tandem still has access to contacts in this sub-account, then run Push contacts again. HighLevel said: “The token is not authorized for this scope.”',
    );
  });

  it('says HighLevel was down or out of reach, how many tries were made, and to run again later; no status, request or raw text', () => {
    const down = http(503, '<html>Service Unavailable</html>', 'PUT /contacts/abc');
    expect(recordProblem(down, { again, tries: 3 })).toBe('HighLevel was not answering (it may have been down or busy); Tandem tried 3 times. Run Push contacts again later.');
    const lost = new HighLevelError(0, 'PUT /contacts/abc failed: ECONNRESET', { kind: 'network', request: 'PUT /contacts/abc' });
    expect(recordProblem(lost, { again, tries: 3 })).toBe('Tandem could not reach HighLevel; it tried 3 times. Run Push contacts again later.');
    const slow = new HighLevelError(0, 'PUT /contacts/abc timed out', { kind: 'timeout', request: 'PUT /contacts/abc' });
    expect(recordProblem(slow, { again })).toBe('HighLevel did not answer in time. Run Push contacts again later.');
    for (const err of [down, lost, slow, http(422, 'Request failed with status 422', 'PUT /contacts/abc'), new Error('SQLITE_BUSY: database is locked')]) {
      const text = recordProblem(err, { again, tries: 3 });
      expect(text).not.toMatch(TECHNICAL);
      expect(text).not.toMatch(/ECONNRESET|SQLITE|html|Request failed/i);
    }
  });

  it('says what Tandem could not save and what to do, never the database’s own message', () => {
    expect(tandemSaveProblem('contact', 'run Pull contacts again')).toBe(
      'Tandem could not save this contact. Run Pull contacts again; if it fails again, contact support with the time of this run.',
    );
    expect(tandemSaveProblem('user', 'run Sync users again')).toBe('Tandem could not save this user. Run Sync users again; if it fails again, contact support with the time of this run.');
  });
});
