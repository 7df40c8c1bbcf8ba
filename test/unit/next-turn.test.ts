// nextTurn (server/sync/reconcile.ts), the yield between two slices of the sync loop's work: what
// the turn's I/O scheduled as an immediate (the inbox's group commit, which acknowledges the
// webhooks read in that turn) runs before the work goes on, not after its next slice.
import { describe, expect, it } from 'vitest';
import { nextTurn } from '../../server/sync/reconcile.ts';

describe('nextTurn', () => {
  it('lets the immediates scheduled after it (an inbox commit) run before the work resumes', async () => {
    const order: string[] = [];
    const work = (async () => {
      await nextTurn();
      order.push('next slice');
    })();
    // As a request read in this turn does: its commit is an immediate queued after the yield's.
    setImmediate(() => order.push('inbox commit'));
    await work;
    expect(order).toEqual(['inbox commit', 'next slice']);
  });
});
