// Reconciliation over real HTTP against the emulator, passes driven by hand on a manual clock: the
// first pull imports HighLevel's contacts page by page (ties in dateUpdated included), lost
// webhooks are repaired (T09, deletions by the full sweep), edits at page boundaries during a pull
// are not lost (T15), a 401 in the middle of paging resumes from the checkpoint (T03), a lagging
// search never rolls back a newer version applied from a webhook (T08), a contact search shows
// after a later one is still brought by incremental pulls (a settling run reads again from the
// cursor's settledTo), at a cost of about one more read per record however often pulls run (an
// import's pulls, every second), a quiet location reads nothing new once settled, a cursor stored
// before settledTo existed still works, and a new process resumes a pull from its last
// checkpointed page.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findContactsByEmail, getContact, type Contact } from '../../db/contacts.ts';
import { getLinkByRemote } from '../../db/links.ts';
import { getSyncState } from '../../db/sync-state.ts';
import type { LocationApi } from '../../server/highlevel/contacts.ts';
import { pull, PULL_INTERVAL_MS, SEARCH_SETTLE_MS, SETTLE_EVERY_MS, type PullDeps } from '../../server/sync/reconcile.ts';
import type { PassResult } from '../../server/sync/supervisor.ts';
import { call, control, ManualClock } from '../helpers/emulator.ts';
import { memoryDatabase } from '../helpers/database.ts';
import { testLocationApi } from '../helpers/location-api.ts';
import { installedTandem, startTestTandem, type TestTandem, passesUntilQuiet } from '../helpers/tandem.ts';
import { addLocation } from '../helpers/world.ts';

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

/**
 * Search pages a run from this lower bound reads in all: HighLevel's contacts updated at or after it
 * (the bound is inclusive), PAGE a page, the last one short.
 */
function pagesFrom(from: number | null): number {
  const emu = t.emulator.emu;
  const docs = [...emu.contactIds(loc)].map((id) => emu.contact(id)).filter((d) => d !== null);
  return Math.floor(docs.filter((d) => from === null || Date.parse(d.dateUpdated) >= from).length / PAGE) + 1;
}

/** Contacts the pulls of these passes applied (those they skipped as already applied at the cursor instant not counted). */
function pulled(passes: PassResult[]): number {
  return passes.reduce((n, p) => n + p.pulled, 0);
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
    // A full sweep settles what was updated up to its start minus SEARCH_SETTLE_MS.
    expect(state.cursor.settledTo).toBe(state.lastFullSweepAt! - SEARCH_SETTLE_MS);

    // The next pull starts AT the cursor instant (inclusive) and skips what it already applied.
    clock.advance(PULL_EVERY + 1);
    expect(pulled(await syncAll())).toBe(0);
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
    expect(getSyncState(t.db, loc).cursor.run).toBeNull();
    await control(t.highlevelUrl, 'DELETE', '/requests');
    const first = await t.services.sync.runOnce(loc);
    expect(first.more).toBe(true);
    const { from } = getSyncState(t.db, loc).cursor.run!;

    await control(t.highlevelUrl, 'POST', '/faults', {
      method: 'POST',
      path: '/contacts/search',
      status: 401,
      body: { statusCode: 401, message: 'Invalid JWT' },
      times: 1,
    });
    await syncAll();
    for (const s of seeded) expect(findContactsByEmail(t.db, loc, s.email)).toHaveLength(1);
    // The pull reads the contacts from its lower bound again (inclusive; the cursor's, or settledTo
    // for a settling run) and the 12 new ones: page 1, the refused request, then the remaining
    // pages once each — page 1 is not read again.
    const pages = pagesFrom(from);
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

describe('search showing writes out of order', () => {
  /**
   * A is written first but search shows it only 20 s later; B, a second later, shows at once. Both
   * webhooks are lost. A pull in between sees B only, and moves the cursor past A.
   */
  async function lateThenPrompt(): Promise<{ a: string; b: string }> {
    await dropWebhooks();
    clock.advance(50_000);
    t.emulator.emu.delaySearch({ delayMs: 20_000, locationId: loc });
    const a = await hlCreate({ firstName: 'Late', email: `late.${randomUUID().slice(0, 6)}@example.com` });
    clock.advance(1000);
    const b = await hlCreate({ firstName: 'Prompt', email: `prompt.${randomUUID().slice(0, 6)}@example.com` });
    clock.advance(PULL_EVERY - 50_000);
    expect(t.emulator.emu.contactForSearch(a)).toBeNull();
    await syncAll();
    expect(linked(b)?.fields.firstName).toBe('Prompt');
    expect(linked(a)).toBeUndefined();
    expect(getSyncState(t.db, loc).cursor.dateUpdated).toBeGreaterThan(Date.parse(t.emulator.emu.contact(a)!.dateUpdated));
    return { a, b };
  }

  /** Incremental pulls every PULL_EVERY until the contact is linked; how many it took. */
  async function pullsUntilLinked(id: string, most: number): Promise<number> {
    let n = 0;
    while (linked(id) === undefined && n < most) {
      clock.advance(PULL_EVERY + 1);
      await syncAll();
      n++;
    }
    return n;
  }

  it('brings by incremental pulls a contact that search showed after a later one, its webhook lost', async () => {
    // A full sweep first: everything before is old, and no sweep is due during the test. A contact
    // at least, so that the sweep leaves a cursor and the later pulls are incremental.
    await seed(1, 'anchor');
    clock.advance(SWEEP_EVERY + 1);
    await syncAll();
    const sweptAt = getSyncState(t.db, loc).lastFullSweepAt;

    const { a } = await lateThenPrompt();
    // A settling run (from settledTo, behind A) is due within SETTLE_EVERY_MS of settling to do,
    // SEARCH_SETTLE_MS after A's write: it brings A, with no full sweep.
    const most = Math.ceil((SETTLE_EVERY_MS + SEARCH_SETTLE_MS) / PULL_EVERY) + 1;
    await pullsUntilLinked(a, most);
    expect(linked(a)?.fields.firstName).toBe('Late');
    expect(getSyncState(t.db, loc).lastFullSweepAt).toBe(sweptAt);
  });

  it('a cursor stored before settledTo existed still parses, and still brings the contact search showed late', async () => {
    await seed(1, 'anchor');
    clock.advance(SWEEP_EVERY + 1);
    await syncAll();
    const sweptAt = getSyncState(t.db, loc).lastFullSweepAt;
    // The cursor as an earlier Tandem stored it: no settledTo.
    const { settledTo: _, ...old } = getSyncState(t.db, loc).cursor;
    t.database.sqlite.prepare('update sync_state set pull_cursor = ? where location_id = ?').run(JSON.stringify(old), loc);
    expect(getSyncState(t.db, loc).cursor).toEqual({ ...old, settledTo: null });

    // The first run completed takes what lies below its lower bound (the old cursor) as settled.
    const { a } = await lateThenPrompt();
    expect(getSyncState(t.db, loc).cursor.settledTo).toBe(old.dateUpdated);
    const n = await pullsUntilLinked(a, Math.ceil((SETTLE_EVERY_MS + SEARCH_SETTLE_MS) / PULL_EVERY) + 1);
    expect(linked(a)?.fields.firstName).toBe('Late');
    expect(n).toBe(1);
    expect(getSyncState(t.db, loc)).toMatchObject({ lastFullSweepAt: sweptAt, cursor: { settledTo: clock.now() - SEARCH_SETTLE_MS } });
  });

  it('reads a quiet location\'s latest contacts once more, then only one search a pull that brings nothing new', async () => {
    // A full sweep long after every write before, no sweep due during the test, and a pull that
    // settles up to its start.
    await seed(1, 'anchor');
    clock.advance(SWEEP_EVERY + 1);
    await syncAll();
    const sweptAt = getSyncState(t.db, loc).lastFullSweepAt;
    clock.advance(PULL_INTERVAL_MS);
    expect(pulled(await syncAll())).toBe(0);

    // Three contacts written just before a pull: it applies them, and they are not settled yet.
    const seeded = await seed(3, 'quiet');
    const last = t.emulator.emu.contact(seeded[2]!.id)!;
    clock.advance(PULL_EVERY + 1);
    await control(t.highlevelUrl, 'DELETE', '/requests');
    const perPull = [pulled(await syncAll())];
    const searches = [(await searchRequests()).length];
    const held = getSyncState(t.db, loc);
    expect(held.cursor).toMatchObject({ dateUpdated: Date.parse(last.dateUpdated), seenIds: [last.id] });
    expect(held.cursor.settledTo).toBeLessThan(Date.parse(t.emulator.emu.contact(seeded[0]!.id)!.dateUpdated));
    // Then pulls every PULL_INTERVAL_MS with nothing new: the first is a settling run that reads
    // the two below the cursor once more (the last, at the cursor instant, was seen there), writing
    // nothing; every later one is a single search that brings nothing new.
    for (let i = 0; i < 4; i++) {
      clock.advance(PULL_INTERVAL_MS);
      await control(t.highlevelUrl, 'DELETE', '/requests');
      perPull.push(pulled(await syncAll()));
      searches.push((await searchRequests()).length);
    }
    expect(perPull).toEqual([3, 2, 0, 0, 0]);
    expect(searches).toEqual([1, 1, 1, 1, 1]);
    expect(getSyncState(t.db, loc)).toMatchObject({
      lastFullSweepAt: sweptAt,
      lastInboundAt: held.lastInboundAt,
      cursor: { dateUpdated: Date.parse(last.dateUpdated), seenIds: [last.id], settledTo: clock.now() - SEARCH_SETTLE_MS },
    });
    for (const s of seeded) expect(findContactsByEmail(t.db, loc, s.email)).toHaveLength(1);
  });
});

describe('pulls every second, as during an import in HighLevel', () => {
  it('read each record about twice in all, the late ones included', async () => {
    // A location of its own, pulled directly (no webhooks, no sweep but the first pull's).
    const { location, token } = addLocation(t.emulator.emu, { name: 'Importing' });
    const id = location.id;
    const database = memoryDatabase();
    let searches = 0;
    let returned = 0;
    const api = testLocationApi(t.highlevelUrl, { locationId: id, clock, tokens: token });
    // An observer: the search goes to the emulator; this counts the records it returns.
    const counting: LocationApi = {
      ...api,
      searchContacts: async (params) => {
        searches++;
        const page = await api.searchContacts(params);
        returned += page.contacts.length;
        return page;
      },
    };
    const deps: PullDeps = {
      db: database.db,
      clock,
      api: counting,
      settings: { creationDirection: 'bidirectional', updateDirection: 'inbound' },
      ownerMap: () => null,
      pageLimit: 100,
      memory: {},
    };
    let applied = 0;
    let pulls = 0;
    const pullNow = async () => {
      const result = await pull(deps, id);
      expect(result.done).toBe(true);
      applied += result.contacts;
      pulls++;
    };
    const written: string[] = [];
    try {
      // Eight minutes of an import: two contacts a second, a pull a second (BULK_PULL_EVERY_MS).
      // Every tenth second one of them reaches search 20 s late, after later ones.
      for (let s = 0; s < 8 * 60; s++) {
        clock.advance(1000);
        if (s % 10 === 0) t.emulator.emu.delaySearch({ delayMs: 20_000, locationId: id });
        for (let i = 0; i < 2; i++) {
          const res = await call(t.highlevelUrl, 'POST', '/contacts/', { token, body: { locationId: id, firstName: `imp${s}.${i}`, email: `imp${s}.${i}.${randomUUID().slice(0, 6)}@example.com` } });
          expect(res.status).toBe(201);
          written.push(res.body.contact.id as string);
        }
        await pullNow();
      }
      // The import is over; pulls every minute for ten more.
      for (let m = 0; m < 10; m++) {
        clock.advance(60_000);
        await pullNow();
      }
      // Every contact came, the late ones by settling runs (the cursor had passed them).
      for (const c of written) expect(getLinkByRemote(database.db, id, c), c).toBeDefined();
      // Applied about twice each: once when new, about once more by a settling run (which reads
      // SEARCH_SETTLE_MS before the last one's start again, so a little more than once). Holding the
      // cursor SEARCH_SETTLE_MS behind every run's start applied each one about 2 min / 1 s times.
      expect(applied).toBeLessThanOrEqual(2.5 * written.length);
      // One search a pull, plus the settling runs' further pages (each reads 7 minutes of writes
      // again: 840 records, 9 pages of 100). Searches also return the contacts at the cursor instant
      // again (the bound is inclusive), skipped unapplied: counted here, not above.
      expect(searches).toBeLessThanOrEqual(pulls + 20);
      expect(returned).toBeLessThanOrEqual(3.5 * written.length);
    } finally {
      database.close();
    }
  }, 120_000);
});

describe('restart in the middle of a pull', () => {
  it('resumes after the last checkpointed page with a new process on the same database', async () => {
    const seeded = await seed(12, 'restart');
    clock.advance(PULL_EVERY + 1);
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
      const pages = pagesFrom(checkpoint!.from);
      expect(await searchRequests()).toEqual(Array<number>(pages).fill(200));
    } finally {
      await again.close();
    }
  });
});
