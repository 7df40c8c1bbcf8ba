// The app thread's mover (server/app-thread.ts): staged webhooks go into the inbox in order, the
// last seq moved is published for the front to delete, and a failed move leaves the events staged
// until a later attempt stores them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { openStagedInbox } from '../../db/staged-inbox.ts';
import type { NewInboxEvent } from '../../db/webhook-inbox.ts';
import { startMover } from '../../server/app-thread.ts';
import { MOVED, STAGED } from '../../server/installs/staged-writer.ts';
import type { InboxWriter } from '../../server/installs/inbox-writer.ts';
import { until } from '../helpers/emulator.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const silent = pino({ level: 'silent' }) as FastifyBaseLogger;
const event = (webhookId: string): NewInboxEvent => ({ webhookId, type: 'ContactUpdate', locationId: 'loc', companyId: null, body: '{}', receivedAt: 1 });

describe('mover', () => {
  it('moves staged events in order, publishes the last seq, retries a failed move, and waits for more', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-mover-'));
    dirs.push(dir);
    const path = join(dir, 'tandem.inbox.db');
    const staged = openStagedInbox(path);
    const seqs = new BigInt64Array(new SharedArrayBuffer(16));
    const first = staged.stage([event('a'), event('b')]);
    Atomics.store(seqs, STAGED, BigInt(first.lastSeq));

    const stored: string[] = [];
    let failures = 1;
    const inbox: InboxWriter = {
      async store(e) {
        if (failures > 0) {
          failures--;
          throw new Error('database is locked');
        }
        stored.push(e.webhookId);
        return true;
      },
    };
    const mover = startMover(path, seqs, { webhookInbox: inbox }, silent, { retryMs: 0 });
    try {
      // The first attempt failed: nothing counts as moved until the retry stored both.
      await until(() => seqs[MOVED] === BigInt(first.lastSeq), 'the first two moved');
      // The retry stored the whole batch again, in order (the inbox keeps the first copy of 'b').
      expect(stored.slice(-2)).toEqual(['a', 'b']);
      expect(failures).toBe(0);

      // Woken by the front's next commit.
      const second = staged.stage([event('c')]);
      Atomics.store(seqs, STAGED, BigInt(second.lastSeq));
      Atomics.notify(seqs, STAGED);
      await until(() => seqs[MOVED] === BigInt(second.lastSeq), 'the third moved');
      expect(stored.at(-1)).toBe('c');
    } finally {
      await mover.stop();
      staged.close();
    }
  });
});
