// The latest error of a location's loop in plain words, as the Sync tab's status strip shows it.
// Never includes a token or a request body: only what HighLevel said and what Tandem will do.
import { HighLevelError } from '../highlevel/http.ts';
import { DeferredError } from '../highlevel/contacts.ts';
import { LocationPausedError, ReauthRequiredError } from '../highlevel/token-provider.ts';

export function describeError(err: unknown): string {
  if (err instanceof DeferredError) {
    const at = new Date(err.retryAt).toISOString().replace('T', ' ').slice(0, 16);
    if (err.reason === 'daily') return `HighLevel's daily request budget for this location is used up; sync resumes at ${at} UTC.`;
    if (err.reason === 'token') return `Tandem could not get a fresh access token from HighLevel; it tries again at ${at} UTC.`;
    return `HighLevel asked Tandem to slow down; sync resumes at ${at} UTC.`;
  }
  if (err instanceof ReauthRequiredError) return 'HighLevel no longer accepts Tandem\'s authorization: reinstall the app to resume sync.';
  if (err instanceof LocationPausedError) return 'HighLevel reports this location as inactive; sync resumes when it is active again.';
  if (err instanceof HighLevelError) {
    if (err.kind === 'network') return 'Tandem could not reach HighLevel; it will try again shortly.';
    if (err.kind === 'timeout') return 'HighLevel did not answer in time; Tandem will try again shortly.';
    if (err.kind === 'invalid_response') return `HighLevel sent an answer Tandem could not read (${err.request ?? 'a request'}); it will try again.`;
    return `HighLevel answered ${err.status} to ${err.request ?? 'a request'}: ${err.message}. Tandem will try again.`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `Sync stopped on an unexpected error (${message.slice(0, 200)}); Tandem will try again.`;
}
