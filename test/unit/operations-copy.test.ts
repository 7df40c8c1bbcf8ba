// The One-time operations' words (web/lib/operations-copy.ts, web/lib/plural.ts): counts in proper
// singular and plural, and when a preview has nothing to confirm.
import { describe, expect, it } from 'vitest';
import { changesNothing } from '../../web/lib/operations-copy.ts';
import { plural, verb } from '../../web/lib/plural.ts';
import { emptyCounts, type Preview } from '../../server/sync/operations/types.ts';

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
