// The one-time operations runner's lifecycle, whatever the operation: preview → confirm → completed;
// one unfinished operation per location, a newer preview replacing an unconfirmed one (which stops,
// and whose watchers hear why at once); cancel of a preview and of a run; a crash at a named point
// resumed by the sweep after the lease expires, with exact counts and no record written twice; a
// stale preview expires on the injected clock; a restart (a new Tandem on the same data dir) resumes
// a run; a budget deferral's wait ends at cancel, its progress saying why and counting the refused
// request; a preview read while sync is paused says so, and its run still completes. The handler
// here is a small one of the test's own (the runner is what is under test): it reads HighLevel's
// contacts once through ctx.api (real HTTP to the emulator) and "writes" numbered records into a
// map the test inspects.
import { rmSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperation, listItems, type OperationRow } from '../../db/operations.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { OperationRefused, type Operations } from '../../server/sync/operations/runner.ts';
import type { OperationHandler, Preview, RunContext } from '../../server/sync/operations/types.ts';
import { emptyCounts } from '../../server/sync/operations/types.ts';
import { progressTracker } from '../../server/sync/operations/progress.ts';
import { ManualClock, control, until } from '../helpers/emulator.ts';
import { installedTandem, startTestTandem, type TestTandem } from '../helpers/tandem.ts';

const TOTAL = 12;
const PAGE = 4;
const LEASE_MS = 60_000;

/** Record i is 'updated' when i is not a multiple of 3, else 'unchanged': the one decision preview and run share. */
const decide = (i: number) => (i % 3 === 0 ? 'unchanged' : 'updated');

/** What the handler wrote, per record key: a resumed run must never write one twice. */
const writes = new Map<string, number>();
/** Holds the run (or preview) at a named place until the test releases it. */
const holds = new Map<string, { reached: boolean; release: () => void; promise: Promise<void> }>();
function holdAt(name: string): void {
  let release!: () => void;
  const promise = new Promise<void>((r) => (release = r));
  holds.set(name, { reached: false, release, promise });
}
async function pass(name: string): Promise<void> {
  const h = holds.get(name);
  if (!h) return;
  h.reached = true;
  await h.promise;
  holds.delete(name);
}
const reached = (name: string) => holds.get(name)?.reached === true;
/** How each preview's read of HighLevel went, by operation id: a replaced preview must stop. */
const previewReads = new Map<string, 'read' | 'stopped'>();

const handler: OperationHandler = {
  kind: 'push',
  async preview(ctx) {
    await pass('preview');
    let total: number;
    try {
      ({ total } = await ctx.api.searchContacts({ pageLimit: 1 }));
      previewReads.set(ctx.operation.id, 'read');
    } catch (err) {
      previewReads.set(ctx.operation.id, 'stopped');
      throw err;
    }
    const counts = emptyCounts();
    for (let i = 0; i < TOTAL; i++) counts.highlevel[decide(i)]++;
    ctx.progress({ done: TOTAL, total: TOTAL });
    const preview: Preview = { counts, samples: [], requests: 1 + Math.ceil(TOTAL / PAGE), durationMs: 0, notes: [`HighLevel holds ${total} contacts.`] };
    return preview;
  },
  async run(ctx: RunContext) {
    let next = (ctx.checkpoint as { next: number } | null)?.next ?? 0;
    ctx.progress({ phase: 'writing', total: TOTAL });
    while (next < TOTAL) {
      await pass(`page:${next}`);
      await ctx.api.searchContacts({ pageLimit: 1 });
      for (let i = next; i < Math.min(TOTAL, next + PAGE); i++) {
        ctx.step(`record:${i}`);
        if (failAt === i) throw new Error('HighLevel stopped answering for good');
        const key = `c:${i}`;
        // A record done before a crash is not written again.
        if (ctx.item(key)?.state === 'done') continue;
        writes.set(key, (writes.get(key) ?? 0) + 1);
        ctx.record({ key, entity: 'contact', side: 'highlevel', action: decide(i), label: `Record ${i}`, before: { fields: { n: i } }, after: { fields: { n: i + 1 } } });
        ctx.progress({ done: i + 1 });
      }
      next = Math.min(TOTAL, next + PAGE);
      ctx.saveCheckpoint({ next });
      ctx.step('after-page');
    }
  },
};

let crashAt: ((point: string) => boolean) | undefined;
/** The run fails for good (an error, not a crash to resume) at this record. */
let failAt: number | undefined;
const clock = new ManualClock();
let t: TestTandem & { location: { id: string }; agency: { adminId: string } };
let ops: Operations;
const by = () => ({ locationId: t.location.id, userId: t.agency.adminId, userName: 'Ada Admin' });

beforeAll(async () => {
  t = await installedTandem({
    clock,
    sync: { start: false },
    operations: { start: false, sweepMs: 0, leaseMs: LEASE_MS, handlers: { push: handler }, crashAt: (_op, point) => crashAt?.(point) === true },
  });
  ops = t.services.operations;
}, 30_000);
afterAll(async () => {
  await t?.close();
});

function reset(): void {
  writes.clear();
  holds.clear();
  previewReads.clear();
  crashAt = undefined;
  failAt = undefined;
}

async function previewed(): Promise<string> {
  const row = ops.preview(by(), 'push');
  expect(row.status).toBe('previewing');
  const done = await ops.settled(row.id);
  expect(done.status).toBe('previewed');
  return row.id;
}

const progressOf = (id: string) => JSON.parse(ops.get(t.location.id, id)!.progress ?? 'null');
const expectedCounts = () => {
  const c = emptyCounts();
  for (let i = 0; i < TOTAL; i++) c.highlevel[decide(i)]++;
  return c;
};
const allWrittenOnce = () => Array.from({ length: TOTAL }, (_, i) => [`c:${i}`, 1]);

describe('the runner', () => {
  it('previews without writing, then runs on confirm to completed; the counts equal the preview', async () => {
    reset();
    const id = await previewed();
    const row = ops.get(t.location.id, id)!;
    const preview = JSON.parse(row.preview!) as Preview;
    expect(preview.counts).toEqual(expectedCounts());
    expect(preview.notes[0]).toMatch(/^HighLevel holds \d+ contacts\.$/);
    expect(writes.size).toBe(0);
    expect(listItems(t.db, id)).toEqual([]);

    expect(ops.confirm(t.location.id, id).status).toBe('running');
    const done = await ops.settled(id);
    expect(done.status).toBe('completed');
    expect(done.finishedAt).toBe(clock.now());
    expect([...writes]).toEqual(allWrittenOnce());
    const progress = progressOf(id);
    expect(progress.counts).toEqual(preview.counts);
    expect(progress).toMatchObject({ phase: 'completed', done: TOTAL, etaMs: 0 });
    // One search in the run per page, counted from the budget-gated API.
    expect(progress.requests).toBe(TOTAL / PAGE);
    expect(ops.undoable(done)).toBe(true);
    // Confirming again is refused: only a previewed operation starts.
    expect(() => ops.confirm(t.location.id, id)).toThrow(expect.objectContaining({ code: 'wrong_state' }));
  });

  it('allows one unfinished operation per location: a new preview replaces a preview, a run refuses it', async () => {
    reset();
    const first = await previewed();
    const second = await previewed();
    expect(ops.get(t.location.id, first)!.status).toBe('discarded');
    holdAt('page:0');
    ops.confirm(t.location.id, second);
    await until(() => reached('page:0'), 'the run to start');
    let refusal: unknown;
    try {
      ops.preview(by(), 'push');
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(OperationRefused);
    expect(refusal).toMatchObject({ code: 'busy' });
    holds.get('page:0')!.release();
    expect((await ops.settled(second)).status).toBe('completed');
  });

  it('replaces an unconfirmed preview with a newer one: the old one stops reading, and whoever watches it hears why at once', async () => {
    reset();
    holdAt('preview');
    const reading = ops.preview(by(), 'push');
    await until(() => reached('preview'), 'the preview to start');
    // Its dialog's event stream listens (another tab, or another admin's panel).
    const heard: OperationRow[] = [];
    ops.subscribe(reading.id, (row) => heard.push(row));
    const bea = { locationId: t.location.id, userId: 'another-admin', userName: 'Bea Boss' };
    const newer = ops.preview(bea, 'push');
    expect(heard.map((r) => r.status)).toEqual(['discarded']);
    expect(heard[0]!.error).toBe('A newer preview of Push contacts, which Bea Boss opened, replaced this one: a sub-account has one preview open at a time. Nothing was changed.');
    holds.get('preview')!.release();
    // The replaced preview makes no further request; the newer one reads and is shown.
    await until(() => previewReads.has(reading.id), 'the replaced preview to end');
    expect(previewReads.get(reading.id)).toBe('stopped');
    expect((await ops.settled(newer.id)).status).toBe('previewed');
    expect(previewReads.get(newer.id)).toBe('read');
    expect(ops.get(t.location.id, reading.id)).toMatchObject({ status: 'discarded', preview: null });

    // A shown preview replaced by its own admin (another tab): confirming it says why, in plain words.
    const third = ops.preview(bea, 'push');
    const why = 'A newer preview of Push contacts, which you opened in another tab or window, replaced this one: a sub-account has one preview open at a time. Nothing was changed.';
    expect(ops.get(t.location.id, newer.id)).toMatchObject({ status: 'discarded', error: why });
    expect(() => ops.confirm(t.location.id, newer.id)).toThrow(expect.objectContaining({ code: 'wrong_state', message: why }));
    expect((await ops.settled(third.id)).status).toBe('previewed');
    ops.cancel(t.location.id, third.id);
    expect(writes.size).toBe(0);
  });

  it('cancels a preview (while reading and once shown) and a run between two records', async () => {
    reset();
    holdAt('preview');
    const reading = ops.preview(by(), 'push');
    await until(() => reached('preview'), 'the preview to start');
    expect(ops.cancel(t.location.id, reading.id).status).toBe('discarded');
    holds.get('preview')!.release();
    // The preview that was still reading does not bring the operation back.
    expect((await ops.settled(reading.id)).status).toBe('discarded');
    expect(ops.get(t.location.id, reading.id)!.preview).toBeNull();

    const shown = await previewed();
    expect(ops.cancel(t.location.id, shown).status).toBe('discarded');
    expect(() => ops.confirm(t.location.id, shown)).toThrow(expect.objectContaining({ code: 'wrong_state' }));

    const run = await previewed();
    holdAt(`page:${PAGE}`);
    ops.confirm(t.location.id, run);
    await until(() => reached(`page:${PAGE}`), 'the first page to be written');
    expect(ops.cancel(t.location.id, run).cancelRequestedAt).toBe(clock.now());
    holds.get(`page:${PAGE}`)!.release();
    const cancelled = await ops.settled(run);
    expect(cancelled.status).toBe('cancelled');
    // Exactly the first page was written, and the summary says so.
    expect([...writes]).toEqual(allWrittenOnce().slice(0, PAGE));
    expect(progressOf(run).counts.highlevel).toMatchObject({ updated: 2, unchanged: 2 });
    expect(ops.undoable(cancelled)).toBe(true);
    expect(() => ops.cancel(t.location.id, run)).toThrow(expect.objectContaining({ code: 'wrong_state' }));
  });

  it('offers to undo a run that failed after writing: what it wrote before the failure is taken back like any other run’s (QA)', async () => {
    reset();
    const run = await previewed();
    failAt = PAGE + 1;
    ops.confirm(t.location.id, run);
    const failed = await ops.settled(run);
    expect(failed.status).toBe('failed');
    expect([...writes]).toEqual(allWrittenOnce().slice(0, PAGE + 1));
    expect(ops.undoable(failed)).toBe(true);
    // Nothing written before it failed: nothing to take back.
    reset();
    const early = await previewed();
    failAt = 0;
    ops.confirm(t.location.id, early);
    const failedEarly = await ops.settled(early);
    expect(failedEarly.status).toBe('failed');
    expect(ops.undoable(failedEarly)).toBe(false);
  });

  it('resumes a run that crashed mid-page from its checkpoint once the lease expires: exact counts, nothing written twice', async () => {
    reset();
    const id = await previewed();
    let crashed = false;
    crashAt = (point) => point === 'record:6' && !crashed && (crashed = true);
    ops.confirm(t.location.id, id);
    await until(() => crashed && ops.get(t.location.id, id)!.checkpoint !== null && writes.size === 6, 'the crash at record 6');
    // The process "died": the run stays running, held by a lease nobody renews.
    const held = ops.get(t.location.id, id)!;
    expect(held).toMatchObject({ status: 'running', checkpoint: JSON.stringify({ next: PAGE }) });
    expect(held.leaseUntil).toBe(clock.now() + LEASE_MS);
    // Before the lease expires the sweep leaves the run alone (a claim would move the lease).
    await ops.sweep();
    expect(ops.get(t.location.id, id)!.leaseUntil).toBe(held.leaseUntil);
    expect(writes.size).toBe(6);

    clock.advance(LEASE_MS + 1);
    await ops.sweep();
    const done = await ops.settled(id);
    expect(done.status).toBe('completed');
    // Records 4 and 5 (done before the crash, on the page being redone) were not written again.
    expect([...writes].sort()).toEqual(allWrittenOnce().sort());
    expect(progressOf(id).counts).toEqual(expectedCounts());
    expect(listItems(t.db, id, { limit: 100 }).map((i) => i.key)).toEqual(Array.from({ length: TOTAL }, (_, i) => `c:${i}`));
  });

  it('discards a preview left unconfirmed past its time on the injected clock, and refuses to confirm it', async () => {
    reset();
    const swept = await previewed();
    clock.advance(15 * 60_000 + 1);
    await ops.sweep();
    expect(ops.get(t.location.id, swept)!.status).toBe('discarded');

    // A confirm that comes after the time (before any sweep) is refused as expired.
    const late = await previewed();
    clock.advance(15 * 60_000 + 1);
    expect(() => ops.confirm(t.location.id, late)).toThrow(expect.objectContaining({ code: 'expired' }));
    expect(ops.get(t.location.id, late)!.status).toBe('discarded');
    expect(writes.size).toBe(0);
  });

  it('counts a preview’s time from when it was ready: a reading that waited on HighLevel does not take the time to confirm it', async () => {
    reset();
    const slow = await previewed();
    // As if reading it had waited 10 minutes on HighLevel: opened 10 minutes before it was ready.
    t.db.run(sql`update operations set created_at = created_at - ${10 * 60_000} where id = ${slow}`);
    clock.advance(14 * 60_000);
    await ops.sweep();
    expect(ops.get(t.location.id, slow)!.status).toBe('previewed');
    clock.advance(60_000 + 1);
    await ops.sweep();
    expect(ops.get(t.location.id, slow)!.status).toBe('discarded');
    expect(writes.size).toBe(0);
  });

  it('estimates a run’s time left by the requests the preview predicted at the pace it allowed them, not by records done (QA)', async () => {
    reset();
    const { row } = createOperation(t.db, { locationId: t.location.id, kind: 'push', requestedBy: t.agency.adminId, now: clock.now() });
    const start = { phase: 'pushing', total: 15_000, done: 0, counts: emptyCounts(), requests: 0, etaMs: null };
    const byRequests = progressTracker({ db: t.db, clock, emit: () => undefined }, row, start, { requests: 120, msPerRequest: 125 });
    const byRecords = progressTracker({ db: t.db, clock, emit: () => undefined }, row, start);
    // The first records wrote (each a request, waiting for the budget); the rest are unchanged.
    clock.advance(10_000);
    for (const tracker of [byRequests, byRecords]) tracker.update({ done: 800, requests: 80 });
    expect(byRequests.get().etaMs).toBe(40 * 125);
    // By records the same moment read as about three minutes.
    expect(byRecords.get().etaMs).toBe(Math.round((10_000 / 800) * (15_000 - 800)));
    // More requests than predicted (retries) with most records left: not "finishing" (QA), nor a
    // negative time, but the records left at the pace seen by record.
    byRequests.update({ requests: 130 });
    expect(byRequests.get().etaMs).toBe(Math.round((10_000 / 800) * (15_000 - 800)));
    // A wait is no part of the pace: an hour waited for the daily limit does not make a record take longer.
    byRequests.update({ requests: 100, waitingFor: 'daily', waiting: 'the daily limit', waitingUntil: new Date(clock.now() + 3_600_000).toISOString() });
    clock.advance(3_600_000);
    byRequests.update({ waitingFor: null, waiting: null, waitingUntil: null });
    expect(byRequests.get().etaMs).toBe(20 * 125);
    for (const tracker of [byRequests, byRecords]) tracker.stop();
    ops.cancel(t.location.id, row.id);
  });

  it('tells at the next sweep that a preview no process reads any more (Tandem stopped during it) stopped, not after its time', async () => {
    reset();
    // As a process that stopped while reading leaves it: 'previewing', and no work of this process behind it.
    const { row } = createOperation(t.db, { locationId: t.location.id, kind: 'push', requestedBy: t.agency.adminId, now: clock.now() });
    await ops.sweep();
    expect(ops.get(t.location.id, row.id)!.status).toBe('previewing');
    clock.advance(LEASE_MS + 1);
    await ops.sweep();
    expect(ops.get(t.location.id, row.id)).toMatchObject({ status: 'discarded', error: 'This preview stopped when Tandem restarted; preview again.' });
    // A preview this process is reading is left alone, however long it takes.
    holdAt('preview');
    const slow = ops.preview(by(), 'push');
    await until(() => reached('preview'), 'the preview under way');
    clock.advance(LEASE_MS + 1);
    await ops.sweep();
    expect(ops.get(t.location.id, slow.id)!.status).toBe('previewing');
    holds.get('preview')!.release();
    expect((await ops.settled(slow.id)).status).toBe('previewed');
  });

  it('ends a budget deferral’s wait when the admin cancels', async () => {
    reset();
    const id = await previewed();
    // HighLevel answers 429 for an hour: the run waits it out, on the clock, until cancelled.
    await control(t.highlevelUrl, 'POST', '/faults', { path: '/contacts/search', status: 429, headers: { 'retry-after': '3600' }, times: 1 });
    ops.confirm(t.location.id, id);
    await until(async () => {
      const log = await control<{ requests: Array<{ status: number }> }>(t.highlevelUrl, 'GET', `/requests?locationId=${t.location.id}&path=/contacts/search`);
      return log.requests.some((r) => r.status === 429);
    }, 'the 429');
    expect(ops.get(t.location.id, id)!.status).toBe('running');
    // The progress says why it waits, and counts the request HighLevel refused (QA: "0 HighLevel
    // requests", as if nothing had happened).
    await until(() => progressOf(id)?.waitingFor === 'rate_limited', 'the wait on the progress');
    expect(progressOf(id)).toMatchObject({ requests: 1, waitingUntil: expect.any(String) });
    ops.cancel(t.location.id, id);
    const cancelled = await ops.settled(id);
    expect(cancelled.status).toBe('cancelled');
    expect(writes.size).toBe(0);
  });

  it('says in the preview that sync is paused, and still runs the operation once confirmed (QA: nothing said so)', async () => {
    reset();
    // Past the hour the 429 above asked for.
    clock.advance(60 * 60_000 + 1);
    const admin = { id: t.agency.adminId, name: 'Ada Admin' };
    expect(JSON.parse(ops.get(t.location.id, await previewed())!.preview!)).not.toHaveProperty('syncPaused');
    updateSyncSettings(t.db, { locationId: t.location.id, patch: { paused: true }, user: admin, now: clock.now() });
    try {
      const id = await previewed();
      expect(JSON.parse(ops.get(t.location.id, id)!.preview!)).toMatchObject({ syncPaused: true });
      ops.confirm(t.location.id, id);
      // The pause holds the continuous loop only: the run goes through the same budget gate and completes.
      expect((await ops.settled(id)).status).toBe('completed');
      expect([...writes]).toEqual(allWrittenOnce());
    } finally {
      updateSyncSettings(t.db, { locationId: t.location.id, patch: { paused: false }, user: admin, now: clock.now() });
    }
  });
});

describe('a restart', () => {
  it('resumes a run in a new Tandem on the same data dir, from its checkpoint', async () => {
    reset();
    const first = await installedTandem({ clock, sync: { start: false }, operations: { sweepMs: 0, handlers: { push: handler } } });
    let second: TestTandem | undefined;
    try {
      const who = { locationId: first.location.id, userId: first.agency.adminId };
      const row = first.services.operations.preview(who, 'push');
      expect((await first.services.operations.settled(row.id)).status).toBe('previewed');
      holdAt(`page:${PAGE * 2}`);
      first.services.operations.confirm(first.location.id, row.id);
      await until(() => reached(`page:${PAGE * 2}`), 'two pages written');
      // The process stops: the run lets go of its lease at its next record and stays running.
      const closing = first.tandem.close();
      holds.get(`page:${PAGE * 2}`)!.release();
      await closing;
      expect(writes.size).toBe(PAGE * 2);

      second = await startTestTandem({
        clock,
        dataDir: first.dataDir,
        reuse: { emulator: first.emulator, app: first.app },
        env: { TOKEN_ENCRYPTION_KEY: first.config.tokenEncryptionKey.toString('base64') },
        sync: { start: false },
        operations: { start: false, sweepMs: 0, handlers: { push: handler } },
      });
      // The stopped process let go of its lease: the run waits, unheld, for the next process.
      expect(second.services.operations.get(first.location.id, row.id)).toMatchObject({ status: 'running', leaseOwner: null, checkpoint: JSON.stringify({ next: PAGE * 2 }) });
      second.services.operations.start();
      const done = await second.services.operations.settled(row.id);
      expect(done.status).toBe('completed');
      expect([...writes].sort()).toEqual(allWrittenOnce().sort());
      expect(JSON.parse(done.progress!).counts).toEqual(expectedCounts());
    } finally {
      await second?.close();
      await first.emulator.close();
      rmSync(first.dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
