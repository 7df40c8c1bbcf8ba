// The front thread's group commit into the staged inbox (server/installs/staged-writer.ts), on a
// real SQLite file: one commit per turn, the seq it publishes, the moved rows it deletes, and a
// failed commit that rejects its callers (the front answers them 429) without losing later ones.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStagedInbox, type StagedInbox } from '../../db/staged-inbox.ts';
import type { NewInboxEvent } from '../../db/webhook-inbox.ts';
import { createStagedWriter, MOVED, STAGED } from '../../server/installs/staged-writer.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function stagedFile(): StagedInbox {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-staged-'));
  dirs.push(dir);
  return openStagedInbox(join(dir, 'tandem.inbox.db'));
}

const event = (webhookId: string): NewInboxEvent => ({ webhookId, type: 'ContactUpdate', locationId: 'loc', companyId: null, body: `{"webhookId":"${webhookId}"}`, receivedAt: 1 });

describe('staged writer', () => {
  it('commits the events of one turn together, publishes the last seq, and deletes what was moved', async () => {
    const staged = stagedFile();
    let commits = 0;
    const counted: StagedInbox = { ...staged, stage: (events, pruneUpTo) => (commits++, staged.stage(events, pruneUpTo)) };
    const seqs = new BigInt64Array(new SharedArrayBuffer(16));
    const writer = createStagedWriter(counted, seqs, () => {});

    const first = await Promise.all([writer.store(event('a')), writer.store(event('b')), writer.store(event('a'))]);
    expect(first).toEqual([true, true, false]);
    expect(commits).toBe(1);
    const rows = staged.after(0, 10);
    expect(rows.map((r) => r.webhookId)).toEqual(['a', 'b']);
    expect(seqs[STAGED]).toBe(BigInt(rows[1]!.seq));

    // The app thread has moved both: the next commit deletes them, and keeps the new one.
    Atomics.store(seqs, MOVED, BigInt(rows[1]!.seq));
    expect(await writer.store(event('c'))).toBe(true);
    expect(commits).toBe(2);
    expect(staged.after(0, 10).map((r) => r.webhookId)).toEqual(['c']);
    expect(seqs[STAGED]).toBe(BigInt(staged.after(0, 10)[0]!.seq));
    staged.close();
  });

  it('rejects every caller of a commit that failed, reports it, and commits the next turn', async () => {
    const staged = stagedFile();
    let fail = true;
    const flaky: StagedInbox = {
      ...staged,
      stage(events, pruneUpTo) {
        if (fail) throw new Error('disk I/O error');
        return staged.stage(events, pruneUpTo);
      },
    };
    const seqs = new BigInt64Array(new SharedArrayBuffer(16));
    const errors: unknown[] = [];
    const writer = createStagedWriter(flaky, seqs, (err) => errors.push(err));

    const failed = await Promise.allSettled([writer.store(event('x')), writer.store(event('y'))]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(errors).toHaveLength(1);
    expect(seqs[STAGED]).toBe(0n);
    expect(staged.after(0, 10)).toEqual([]);

    fail = false;
    expect(await writer.store(event('x'))).toBe(true);
    expect(staged.after(0, 10).map((r) => r.webhookId)).toEqual(['x']);
    staged.close();
  });
});
