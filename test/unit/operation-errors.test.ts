// How a stopped operation's error reads on the panel: the loop's wording, made about the run.
import { describe, expect, it } from 'vitest';
import { HighLevelError } from '../../server/highlevel/http.ts';
import { ReauthRequiredError } from '../../server/highlevel/token-provider.ts';
import { describeOperationError } from '../../server/sync/operations/runner.ts';

describe('describeOperationError', () => {
  it('tells the admin to run the operation again after reinstalling, not to "resume sync"', () => {
    const text = describeOperationError(new ReauthRequiredError({ type: 'location', id: 'loc' }, 'invalid_grant'));
    expect(text).toBe("HighLevel no longer accepts Tandem's authorization: reinstall the app, then run the operation again.");
  });

  it('does not promise an automatic retry the operation will not make', () => {
    const text = describeOperationError(new HighLevelError(0, 'socket hang up', { kind: 'network', request: 'POST /contacts/search' }));
    expect(text).toBe('Tandem could not reach HighLevel.');
    expect(describeOperationError(new Error('boom'))).toBe('The operation stopped on an unexpected error (boom).');
  });
});
