// Reconciliation over real HTTP against the emulator, passes driven by hand on a manual clock: the
// first pull imports HighLevel's contacts page by page (ties in dateUpdated included), lost
// webhooks are repaired (T09, deletions by the full sweep), edits at page boundaries during a pull
// are not lost (T15), a 401 in the middle of paging resumes from the checkpoint (T03), a lagging
// search never rolls back a newer version applied from a webhook (T08), and a new process resumes
// a pull from its last checkpointed page.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findContactsByEmail, getContact, type Contact } from '../../db/contacts.ts';
import { getLinkByRemote } from '../../db/links.ts';
import { getSyncState } from '../../db/sync-state.ts';
import type { PassResult } from '../../server/sync/supervisor.ts';
import { call, control, ManualClock } from '../helpers/emulator.ts';
import { installedTandem, startTestTandem, type TestTandem, passesUntilQuiet } from '../helpers/tandem.ts';

const PAGE = 5;
const PULL_EVERY = 60_000;
const SWEEP_EVERY = 60 * 60_000;
const SYNC = { start: false, pageLimit: PAGE, pagesPerPass: 1, pullIntervalMs: PULL_EVERY, fullSweepIntervalMs: SWEEP_EVERY };
/** Fixed so a restarted process opens the tokens the first one stored. */
const env = { TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') };

let t: TestTandem & { location: { id: string } };
let clock: ManualClock;
let loc: string;

function hl(method: string, path: string, body?: unknown) {
  return call(t.highlevelUrl, method, path, { token: t.emulator.emu.world.locations[loc]!.privateToken, body });
}

async function hlCreate(body: Record<string, unknown>): Promise<string> {
  const res = await hl('POST', '/contacts/', { locationId: loc, ...body });
  expect(res.status).toBe(201);
  return res.body.contact.id as string;
}

async function hlUpdate(id: string, body: Record<string, unknown>): Promise<void> {
  expect((await hl('PUT', `/contacts/${id}`, body)).status).toBe(200);
}

/** HighLevel loses every webhook from now on (until deliverWebhooks). */
async function dropWebhooks(): Promise<void> {
  await control(t.highlevelUrl, 'POST', '/webhooks/faults', { mode: 'drop', count: 100_000 });
}

async function deliverWebhooks(): Promise<void> {
  await control(t.highlevelUrl, 'DELETE', '/webhooks/faults');
}

function linked(highlevelId: string): Contact | undefined {
  const link = getLinkByRemote(t.db, loc, highlevelId);
  return link ? getContact(t.db, loc, link.contactId) : undefined;
}

async function searchRequests(): Promise<number[]> {
  const { requests } = await control(t.highlevelUrl, 'GET', `/requests?method=POST&path=/contacts/search&locationId=${loc}`);
  return (requests as { status: number }[]).map((r) => r.status);
}

/** Passes until the location has nothing more to do now (the manual clock follows deferrals). */
function syncAll(): Promise<PassResult[]> {
  return passesUntilQuiet(t, loc, clock, 40);
}

/** `n` contacts made in HighLevel, one second apart, their webhooks lost. */
async function seed(n: number, tag: string): Promise<{ id: string; email: string }[]> {
  await dropWebhooks();
  const out: { id: string; email: string }[] = [];
  for (let i = 0; i < n; i++) {
    clock.advance(1000);
    const email = `${tag}${i}.${randomUUID().slice(0, 6)}@example.com`;
    out.push({ id: await hlCreate({ firstName: `${tag}${i}`, email }), email });
  }
  return out;
}

beforeAll(async () => {
  clock = new ManualClock();
  t = await installedTandem({ clock, env, sync: SYNC });
  loc = t.location.id;
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('reconciliation', () => {
  it('imports the contacts HighLevel already has on the first pull, page by page, ties in dateUpdated included', async () => {
    // Twelve contacts in the same millisecond, whose webhooks were lost: only the pull can bring them.
    await dropWebhooks();
    const emails = Array.from({ length: 12 }, (_, i) => `tie${i}.${randomUUID().slice(0, 6)}@example.com`);
    for (const [i, email] of emails.entries()) await hlCreate({ firstName: `Tie${i}`, email });
    await control(t.highlevelUrl, 'DELETE', '/requests');

    await syncAll();
    for (const email of emails) expect(findContactsByEmail(t.db, loc, email)).toHaveLength(1);
    // 5 + 5 + 2: three pages, each read once.
    expect(await searchRequests()).toEqual([200, 200, 200]);
    const state = getSyncState(t.db, loc);
    expect(state.lastFullSweepAt).not.toBeNull();
    expect(state.cursor.seenIds.length).toBeGreaterThanOrEqual(12);

    // The next pull starts AT the cursor instant (inclusive) and skips what it already applied.
    clock.advance(PULL_EVERY + 1);
    const passes = await syncAll();
    expect(passes.reduce((n, p) => n + p.pulled, 0)).toBe(0);
  });

  it('T09 repairs lost webhooks: creates and updates by the incremental pull, deletions by the full sweep', async () => {
    const [kept, gone] = await seed(2, 'lost');
    clock.advance(PULL_EVERY + 1);
    await syncAll();
    expect(linked(kept!.id)?.fields.firstName).toBe('lost0');

    await dropWebhooks();
    clock.advance(1000);
    await hlUpdate(kept!.id, { firstName: 'Kept', city: 'Reno' });
    const fresh = await hlCreate({ firstName: 'Fresh', email: `fresh.${randomUUID().slice(0, 6)}@example.com` });
    expect((await hl('DELETE', `/contacts/${gone!.id}`)).status).toBe(200);

    clock.advance(PULL_EVERY + 1);
    await syncAll();
    expect(linked(kept!.id)?.fields).toMatchObject({ firstName: 'Kept', city: 'Reno' });
    expect(linked(fresh)?.fields.firstName).toBe('Fresh');
    // An incremental pull cannot see a deletion...
    expect(linked(gone!.id)?.archivedAt).toBeNull();

    // ...the full sweep can: the linked contact it did not see is read, found gone, and archived.
    clock.advance(SWEEP_EVERY + 1);
    await syncAll();
    expect(linked(gone!.id)?.archivedAt).not.toBeNull();
    expect(getLinkByRemote(t.db, loc, gone!.id)?.remoteDeletedAt).not.toBeNull();
    expect(linked(kept!.id)?.archivedAt).toBeNull();
  });

  it('T15 loses no record at a page boundary when contacts are edited during the pull', async () => {
    const seeded = await seed(12, 'edge');
    clock.advance(PULL_EVERY + 1);
    const first = await t.services.sync.runOnce(loc);
    expect(first.more).toBe(true);
    expect(getSyncState(t.db, loc).cursor.run?.searchAfter).not.toBeNull();
    // Page 1 ends at the last seeded contact it brought (it may start with contacts at the cursor instant).
    const last = seeded.map((s) => linked(s.id) !== undefined).lastIndexOf(true);
    expect(last).toBeGreaterThanOrEqual(0);
    expect(last).toBeLessThan(10);
    expect(linked(seeded[last + 1]!.id)).toBeUndefined();

    // Between pages: the last record of page 1, the first of page 2 and the last of all are edited.
    clock.advance(1000);
    await hlUpdate(seeded[last]!.id, { firstName: 'EditedLastOfPage1' });
    await hlUpdate(seeded[last + 1]!.id, { firstName: 'EditedFirstOfPage2' });
    await hlUpdate(seeded[11]!.id, { firstName: 'EditedLast' });
    await syncAll();

    for (const [i, s] of seeded.entries()) expect(findContactsByEmail(t.db, loc, s.email), `contact ${i}`).toHaveLength(1);
    expect(linked(seeded[last]!.id)?.fields.firstName).toBe('EditedLastOfPage1');
    expect(linked(seeded[last + 1]!.id)?.fields.firstName).toBe('EditedFirstOfPage2');
    expect(linked(seeded[11]!.id)?.fields.firstName).toBe('EditedLast');
    expect(linked(seeded[0]!.id)?.fields.firstName).toBe('edge0');
  });

  it('T03 a 401 in the middle of paging resumes from the checkpoint instead of starting over', async () => {
    const seeded = await seed(12, 'auth');
    clock.advance(PULL_EVERY + 1);
    const before = getSyncState(t.db, loc).cursor;
    expect(before.run).toBeNull();
    await control(t.highlevelUrl, 'DELETE', '/requests');
    const first = await t.services.sync.runOnce(loc);
    expect(first.more).toBe(true);

    await control(t.highlevelUrl, 'POST', '/faults', {
      method: 'POST',
      path: '/contacts/search',
      status: 401,
      body: { statusCode: 401, message: 'Invalid JWT' },
      times: 1,
    });
    await syncAll();
    for (const s of seeded) expect(findContactsByEmail(t.db, loc, s.email)).toHaveLength(1);
    // The pull reads the contacts at the cursor instant again (inclusive bound) and the 12 new ones:
    // page 1, the refused request, then the remaining pages once each — page 1 is not read again.
    const pages = Math.floor((before.seenIds.length + seeded.length) / PAGE) + 1;
    expect(await searchRequests()).toEqual([200, 401, ...Array<number>(pages - 1).fill(200)]);
    // The refused token was replaced: one refresh between the 401 and the page that followed it.
    const { requests } = await control(t.highlevelUrl, 'GET', '/requests?method=POST&path=/oauth/token');
    expect((requests as { status: number }[]).filter((r) => r.status === 200)).toHaveLength(1);
  });

  it('T08 a lagging search never rolls back a newer version applied from a webhook', async () => {
    // A pull first, so the cursor is before the contact below.
    clock.advance(PULL_EVERY + 1);
    await syncAll();
    await deliverWebhooks();
    const id = await hlCreate({ firstName: 'Old', email: `lag.${randomUUID().slice(0, 6)}@example.com` });
    await t.emulator.emu.webhooks.idle();
    await syncAll();
    expect(linked(id)?.fields.firstName).toBe('Old');

    // Search lags 65 s behind writes: after the 61 s wait below, the pull still sees "Old".
    await control(t.highlevelUrl, 'PATCH', '/config', { searchLagMs: 65_000 });
    try {
      clock.advance(10_000);
      await hlUpdate(id, { firstName: 'New' });
      await t.emulator.emu.webhooks.idle();
      clock.advance(PULL_EVERY + 1);
      const passes = await syncAll();
      expect(passes[0]!.webhookEvents).toBeGreaterThan(0);
      expect(passes.reduce((n, p) => n + p.pulled, 0)).toBeGreaterThan(0);
      expect(linked(id)?.fields.firstName).toBe('New');
    } finally {
      await control(t.highlevelUrl, 'PATCH', '/config', { searchLagMs: 0 });
    }
  });
});

describe('restart in the middle of a pull', () => {
  it('resumes after the last checkpointed page with a new process on the same database', async () => {
    const seeded = await seed(12, 'restart');
    clock.advance(PULL_EVERY + 1);
    const before = getSyncState(t.db, loc).cursor;
    await control(t.highlevelUrl, 'DELETE', '/requests');
    expect((await t.services.sync.runOnce(loc)).more).toBe(true);
    const checkpoint = getSyncState(t.db, loc).cursor.run;
    expect(checkpoint?.searchAfter).not.toBeNull();

    // The process goes away between two pages; a new one starts on the same data.
    await t.tandem.close();
    const again = await startTestTandem({ clock, env, dataDir: t.dataDir, reuse: { emulator: t.emulator, app: t.app }, sync: SYNC });
    try {
      expect(getSyncState(again.db, loc).cursor.run).toEqual(checkpoint);
      for (let i = 0; i < 20 && getSyncState(again.db, loc).cursor.run !== null; i++) await again.services.sync.runOnce(loc);
      expect(getSyncState(again.db, loc).cursor.run).toBeNull();
      for (const s of seeded) expect(findContactsByEmail(again.db, loc, s.email)).toHaveLength(1);
      const pages = Math.floor((before.seenIds.length + seeded.length) / PAGE) + 1;
      expect(await searchRequests()).toEqual(Array<number>(pages).fill(200));
    } finally {
      await again.close();
    }
  });
});
