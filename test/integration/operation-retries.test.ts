// One-time operations and HighLevel failing for a moment (QA: a Pull of 5,012 contacts FAILED after
// 1.1 s at 500 on three 503s, a Push alike, and trying again meant a new preview and a run from the
// first page). Against the emulator over real HTTP with its fault API, on a manual clock: a run
// waits out transient failures (5xx, a dropped connection) with growing backoff, its progress saying
// why it waits and until when; it completes with exact counts; a permanent refusal still fails at
// once; HighLevel down for good fails the run after GIVE_UP_AFTER_MS with the words it had; a cancel
// ends the wait at once. And the time left follows the pace HighLevel answers at (QA: "finishing"
// at 2,000 of 5,012, every search taking 3 s).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedContacts } from '../../emulator/contact-seed.ts';
import type { ContactDoc } from '../../emulator/state.ts';
import { contactIds, insertContact, updateContact } from '../../db/contacts.ts';
import { listItems, type OperationRow } from '../../db/operations.ts';
import { saveLink } from '../../db/links.ts';
import { fromHighLevel } from '../../server/highlevel/contact-mapping.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { held } from '../../server/sync/inbound.ts';
import { GIVE_UP_AFTER_MS } from '../../server/sync/operations/patient-api.ts';
import type { Preview, Progress } from '../../server/sync/operations/types.ts';
import { timeLeft } from '../../web/lib/operations-copy.ts';
import { ManualClock, control, until } from '../helpers/emulator.ts';
import { addLocation, installLocation, installedTandem, type TestTandem } from '../helpers/tandem.ts';

type T = TestTandem & { agency: { companyId: string; adminId: string }; location: { id: string } };

const clock = new ManualClock();
let t: T;
/** Called at each of a run's named points (see the handlers' step points). */
let atPoint: ((op: OperationRow, point: string) => void) | null = null;

beforeAll(async () => {
  t = await installedTandem({ clock, sync: { start: false }, operations: { start: false, sweepMs: 0, crashAt: (op, point) => (atPoint?.(op, point), false) } });
}, 30_000);

afterAll(async () => {
  await t?.close();
});

async function newLocation(name: string): Promise<string> {
  const l = await addLocation(t, t.agency.companyId, name);
  expect((await installLocation(t, l.id, { userId: t.agency.adminId })).status).toBe(200);
  return l.id;
}

async function previewed(loc: string, kind: 'pull' | 'push'): Promise<{ id: string; preview: Preview }> {
  const row = t.services.operations.preview({ locationId: loc, userId: 'u_admin', userName: 'Ada Admin' }, kind);
  const done = await t.services.operations.settled(row.id);
  expect(done.status).toBe('previewed');
  return { id: row.id, preview: JSON.parse(done.preview!) as Preview };
}

function progressOf(loc: string, id: string): Progress | null {
  const row = t.services.operations.get(loc, id)!;
  return row.progress ? (JSON.parse(row.progress) as Progress) : null;
}

const finished = (row: OperationRow) => ['previewed', 'completed', 'failed', 'cancelled'].includes(row.status);

/**
 * Runs the operation (or preview) to its end, moving the clock to the end of every wait for HighLevel it says
 * it is in ('retry'), and returns the waits seen (clock ms each lasted, from when it was first seen).
 */
async function driveToEnd(loc: string, id: string, timeoutMs = 20_000): Promise<{ row: OperationRow; waits: number[] }> {
  const waits: number[] = [];
  let last: string | null = null;
  for (;;) {
    const next = await until(() => {
      const row = t.services.operations.get(loc, id)!;
      if (finished(row)) return { row };
      const p = row.progress ? (JSON.parse(row.progress) as Progress) : null;
      return p?.waitingFor === 'retry' && p.waitingUntil && p.waitingUntil !== last ? { until: p.waitingUntil } : null;
    }, 'the run to wait or finish', timeoutMs);
    if (next.row) return { row: next.row, waits };
    last = next.until!;
    const at = Date.parse(last);
    waits.push(at - clock.now());
    clock.set(at);
  }
}

/** Search requests the location's operation sent since `seq` (a faulted one answers before its token is read: no app id). */
function searchStatuses(loc: string, seq: number): number[] {
  return t.emulator.emu.requestLog.filter((r) => r.seq > seq && r.locationId === loc && r.path.startsWith('/contacts/search')).map((r) => r.status);
}
const lastSeq = () => t.emulator.emu.requestLog.at(-1)?.seq ?? 0;

/** Tandem already in sync with these HighLevel contacts. */
function seedTandem(loc: string, docs: ContactDoc[]): Map<string, string> {
  const byRemote = new Map<string, string>();
  t.db.transaction(() => {
    for (const doc of docs) {
      const remote = fromHighLevel(doc, () => null, { complete: true });
      const c = insertContact(t.db, { locationId: loc, fields: { ...emptyContact(), ...remote.fields }, now: clock.now(), origin: 'remote' });
      saveLink(t.db, { locationId: loc, contactId: c.id, highlevelId: doc.id, base: held(c.fields, remote.fields), remoteUpdatedAt: remote.dateUpdated ?? null, now: clock.now() });
      byRemote.set(doc.id, c.id);
    }
  });
  return byRemote;
}

describe('a run and HighLevel failing for a moment', () => {
  it('Pull waits out 503s on its page reads with growing backoff, saying so, and completes from where it was (QA: failed at 500 of 5,012)', async () => {
    const loc = await newLocation('Blip Bakery');
    seedContacts(t.emulator.emu, loc, 600);
    const { id } = await previewed(loc, 'pull');
    const seq = lastSeq();
    // The first page is read and written; the second is answered 503 three times.
    atPoint = (op, point) => {
      if (op.id !== id || point !== 'after-page') return;
      atPoint = null;
      t.emulator.emu.addFault({ method: 'POST', path: '/contacts/search', locationId: loc, status: 503, times: 3 });
    };
    t.services.operations.confirm(loc, id);
    // While it waits, the run is running (not failed), and its progress says why and until when.
    const waiting = await until(() => {
      const p = progressOf(loc, id);
      return p?.waitingFor === 'retry' ? p : null;
    }, 'the first wait');
    expect(t.services.operations.get(loc, id)!.status).toBe('running');
    expect(waiting).toMatchObject({ waitingUntil: expect.any(String), waiting: expect.stringMatching(/^HighLevel is not answering right now \(it may be down or busy\)\. Tandem tries again at \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$/) });
    expect(waiting.done).toBe(500);
    const { row, waits } = await driveToEnd(loc, id);
    expect(row).toMatchObject({ status: 'completed', error: null });
    // Three waits, each at least as long as the one before, none of them a busy loop.
    expect(waits).toHaveLength(3);
    expect(waits[0]).toBeGreaterThanOrEqual(2_500);
    expect(waits[1]).toBeGreaterThanOrEqual(waits[0]!);
    expect(waits[2]).toBeGreaterThanOrEqual(waits[1]!);
    expect(searchStatuses(loc, seq)).toEqual([200, 503, 503, 503, 200]);
    const progress = JSON.parse(row.progress!) as Progress;
    expect(progress).toMatchObject({ waitingFor: null, waitingUntil: null, waiting: null, requests: 5 });
    expect(progress.counts.tandem).toMatchObject({ created: 600, failed: 0 });
    expect(contactIds(t.db, loc)).toHaveLength(600);
  }, 30_000);

  it('Push waits out a 503 on its page read, 502s and a dropped connection on its writes: every record written, none failed', async () => {
    const loc = await newLocation('Blip Barbers');
    const docs = seedContacts(t.emulator.emu, loc, 3);
    const ids = seedTandem(loc, docs);
    const [a, b] = docs;
    for (const doc of [a!, b!]) updateContact(t.db, { locationId: loc, id: ids.get(doc.id)!, patch: { firstName: `Pushed ${doc.firstName}` }, now: clock.now(), origin: 'remote' });
    const { id, preview } = await previewed(loc, 'push');
    expect(preview.counts.highlevel).toMatchObject({ updated: 2, unchanged: 1 });
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/contacts/search', locationId: loc, status: 503, times: 1 });
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'PUT', path: `/contacts/${a!.id}`, status: 502, times: 2 });
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'PUT', path: `/contacts/${b!.id}`, drop: true, times: 1 });
    const seq = lastSeq();
    t.services.operations.confirm(loc, id);
    const { row, waits } = await driveToEnd(loc, id);
    expect(row).toMatchObject({ status: 'completed', error: null });
    expect(waits).toHaveLength(4);
    const progress = JSON.parse(row.progress!) as Progress;
    expect(progress.counts.highlevel).toMatchObject({ updated: 2, unchanged: 1, failed: 0 });
    for (const doc of [a!, b!]) expect(t.emulator.emu.contact(doc.id)!.firstName).toBe(`Pushed ${doc.firstName}`);
    const log = t.emulator.emu.requestLog.filter((r) => r.seq > seq && r.locationId === loc).map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`);
    expect(log.filter((l) => l.startsWith('POST /contacts/search'))).toEqual(['POST /contacts/search 503', 'POST /contacts/search 200']);
    expect(log.filter((l) => l.startsWith(`PUT /contacts/${a!.id}`))).toEqual([`PUT /contacts/${a!.id} 502`, `PUT /contacts/${a!.id} 502`, `PUT /contacts/${a!.id} 200`]);
    expect(log.filter((l) => l.startsWith(`PUT /contacts/${b!.id}`))).toEqual([`PUT /contacts/${b!.id} 0`, `PUT /contacts/${b!.id} 200`]);
    expect(listItems(t.db, id, { limit: 10 }).every((i) => i.state === 'done')).toBe(true);
  }, 30_000);

  it('a preview waits out a blip too', async () => {
    const loc = await newLocation('Blip Bookshop');
    seedContacts(t.emulator.emu, loc, 10);
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/contacts/search', locationId: loc, status: 504, times: 1 });
    const row = t.services.operations.preview({ locationId: loc, userId: 'u_admin', userName: 'Ada Admin' }, 'pull');
    const { row: done, waits } = await driveToEnd(loc, row.id);
    expect(done.status).toBe('previewed');
    expect(waits).toHaveLength(1);
    expect((JSON.parse(done.preview!) as Preview).counts.tandem.created).toBe(10);
  });

  it('a permanent refusal still fails the run at once, without waiting', async () => {
    const loc = await newLocation('Refused Rentals');
    seedContacts(t.emulator.emu, loc, 10);
    const { id } = await previewed(loc, 'pull');
    await control(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/contacts/search', locationId: loc, status: 403, times: 1 });
    const seq = lastSeq();
    t.services.operations.confirm(loc, id);
    const { row, waits } = await driveToEnd(loc, id);
    expect(waits).toEqual([]);
    expect(row).toMatchObject({ status: 'failed', error: 'HighLevel does not allow Tandem to do this in this sub-account.' });
    expect(searchStatuses(loc, seq)).toEqual([403]);
  });

  it('HighLevel down for good fails the run after GIVE_UP_AFTER_MS of failures, with the words it had, having asked a bounded number of times', async () => {
    const loc = await newLocation('Down Dentistry');
    seedContacts(t.emulator.emu, loc, 10);
    const { id } = await previewed(loc, 'pull');
    const rule = await control<{ id: number }>(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/contacts/search', locationId: loc, status: 503, times: 1000 });
    try {
      const seq = lastSeq();
      t.services.operations.confirm(loc, id);
      const { row, waits } = await driveToEnd(loc, id);
      expect(row).toMatchObject({ status: 'failed', error: 'HighLevel is not answering right now (it may be down or busy). Try again in a few minutes.' });
      // Waits that grow, the last one cut at the bound: five minutes on the clock in all.
      expect(waits.reduce((a, b) => a + b, 0)).toBe(GIVE_UP_AFTER_MS);
      for (let i = 1; i < waits.length - 1; i++) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1]!);
      const tries = searchStatuses(loc, seq);
      expect(tries.every((s) => s === 503)).toBe(true);
      expect(tries.length).toBe(waits.length + 1);
      expect(tries.length).toBeLessThanOrEqual(10);
      expect(JSON.parse(row.progress!)).toMatchObject({ waitingFor: null, requests: tries.length });
    } finally {
      await control(t.highlevelUrl, 'DELETE', `/faults/${rule.id}`);
    }
  }, 30_000);

  it('a cancel ends the wait at once', async () => {
    const loc = await newLocation('Cancelled Cafe');
    seedContacts(t.emulator.emu, loc, 10);
    const { id } = await previewed(loc, 'pull');
    const rule = await control<{ id: number }>(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/contacts/search', locationId: loc, status: 503, times: 1000 });
    try {
      t.services.operations.confirm(loc, id);
      await until(() => progressOf(loc, id)?.waitingFor === 'retry', 'the wait');
      t.services.operations.cancel(loc, id);
      // The clock does not move: the wait ends on the cancel, not at its time.
      expect((await t.services.operations.settled(id)).status).toBe('cancelled');
    } finally {
      await control(t.highlevelUrl, 'DELETE', `/faults/${rule.id}`);
    }
  });
});

describe('the time left of a run HighLevel answers slowly', () => {
  it('follows the pace the requests take, not only the rate limit’s, and never says finishing with most of the work left (QA)', async () => {
    const loc = await newLocation('Slow Salon');
    seedContacts(t.emulator.emu, loc, 2_500);
    const { id, preview } = await previewed(loc, 'pull');
    // Five full pages and an empty one, well within the rate limit: the plan alone says no time at all.
    expect(preview).toMatchObject({ requests: 6, durationMs: 0 });
    // Every search of the run takes 3 s on the clock: each is held until the test lets it go.
    const rules: number[] = [];
    for (let i = 0; i < 6; i++) {
      rules.push((await control<{ id: number }>(t.highlevelUrl, 'POST', '/faults', { method: 'POST', path: '/contacts/search', locationId: loc, delayMs: 600_000, times: 1 })).id);
    }
    const heldBy = (rule: number) => [...t.emulator.emu.delayed.values()].includes(rule);
    try {
      t.services.operations.confirm(loc, id);
      for (const [page, rule] of rules.slice(0, 2).entries()) {
        await until(() => heldBy(rule), `search ${page + 1} under way`);
        clock.advance(3_000);
        await control(t.highlevelUrl, 'DELETE', `/faults/${rule}`);
      }
      // Two pages read in 6 s, four requests left: about 12 s, not "finishing".
      await until(() => heldBy(rules[2]!), 'search 3 under way');
      const p = progressOf(loc, id)!;
      expect(p).toMatchObject({ done: 1_000, total: 2_500, requests: 2, etaMs: 12_000 });
      expect(timeLeft(p)).toBe('less than a minute left');
    } finally {
      await control(t.highlevelUrl, 'DELETE', '/faults');
    }
    expect((await t.services.operations.settled(id)).status).toBe('completed');
  }, 30_000);
});
