// The Sync tab's words (web/lib/sync-copy.ts): how a settings change reads, and which problem is
// shown with what advice.
import { describe, expect, it } from 'vitest';
import { describeChange, latestProblem } from '../../web/lib/sync-copy.ts';
import type { SyncStatusView } from '../../server/routes/panel-sync.ts';

const healthy: SyncStatusView = {
  paused: false,
  installation: { status: 'active', reason: null },
  pendingOutbound: 0,
  failedOutbound: 0,
  pendingInbound: 0,
  lastInboundAt: null,
  lastOutboundAt: null,
  lastError: null,
  lastFailure: null,
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
  });

  it('shows the more recent of the loop error and a refused change', () => {
    const error = { message: 'HighLevel answered 429', at: '2024-01-01T00:00:02.000Z' };
    const failure = { message: 'invalid email', at: '2024-01-01T00:00:01.000Z' };
    const rateLimited = latestProblem({ ...healthy, lastError: error, lastFailure: failure, failedOutbound: 1 }, true)!;
    expect(rateLimited.message).toBe('HighLevel answered 429.');
    expect(rateLimited.action).toContain('carries on by itself');
    const refused = latestProblem({ ...healthy, lastError: { ...error, at: '2024-01-01T00:00:00.000Z' }, lastFailure: failure, failedOutbound: 3 }, true)!;
    expect(refused.message).toBe('HighLevel refused a change from Tandem (3 contacts in all): invalid email.');
    expect(refused.action).toContain('Correct the contact in Tandem');
  });

  it('sends unmatched owners to Sync users', () => {
    const message = '2 HighLevel user(s) own contacts but have no Tandem user with the same email: those owners were not copied (Sync users repairs them).';
    const problem = latestProblem({ ...healthy, lastError: { message, at: '2024-01-01T00:00:00.000Z' } }, true)!;
    expect(problem.action).toContain('run Sync users under One-time operations');
  });
});
