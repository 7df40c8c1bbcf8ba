// The pull's paging (server/sync/reconcile.ts) over real HTTP against the emulator: the next
// search page is asked for before the current one is applied (its round trip overlaps the apply),
// and when that early request is deferred by the gate, the page before it is still applied and
// checkpointed, and the pull resumes after it. A page is applied a slice at a time, other work
// (webhooks to acknowledge) running in between.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { contactIds } from '../../db/contacts.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { seedContacts } from '../../emulator/contact-seed.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import { DeferredError, type LocationApi } from '../../server/highlevel/contacts.ts';
import { APPLY_SLICE, pull, type PullDeps } from '../../server/sync/reconcile.ts';
import { control, ManualClock, testEmulator } from '../helpers/emulator.ts';
import { gatedTestLocationApi } from '../helpers/location-api.ts';
import { addLocation, addOauthToken } from '../helpers/world.ts';
import { memoryDatabase } from '../helpers/database.ts';

const WINDOW_MS = 1000;
const PAGE = 5;

let emulator: RunningEmulator;
let clock: ManualClock;
let database: Database;
let db: Db;
let locationId: string;
let token: string;
/** Tandem's contact count when each search request was made. */
let heldAtSearch: number[];

async function gatedApi(burstMax: number): Promise<LocationApi> {
  const api = await gatedTestLocationApi(emulator.url, { locationId, clock, tokens: token, burstMax, windowMs: WINDOW_MS });
  // An observer, not a fake: the search goes to the emulator; this notes what Tandem held when it was asked.
  return {
    ...api,
    searchContacts: (params) => {
      heldAtSearch.push(contactIds(db, locationId).length);
      return api.searchContacts(params);
    },
  };
}

function deps(api: LocationApi, pageLimit = PAGE): PullDeps {
  return {
    db,
    clock,
    api,
    settings: { creationDirection: 'bidirectional', updateDirection: 'inbound' },
    ownerMap: () => null,
    pageLimit,
    memory: {},
  };
}

beforeEach(async () => {
  clock = new ManualClock();
  emulator = await testEmulator({ clock });
  const added = addLocation(emulator.emu, { name: 'Cedar Dental' });
  locationId = added.location.id;
  token = addOauthToken(emulator.emu, { authClass: 'Location', companyId: added.companyId, locationId, scopes: ['contacts.readonly', 'contacts.write'] });
  database = memoryDatabase();
  db = database.db;
  heldAtSearch = [];
});

afterEach(async () => {
  await emulator.close();
  database.close();
});

describe('pull paging', () => {
  it('asks for the next page before applying the current one', async () => {
    seedContacts(emulator.emu, locationId, 12);
    const result = await pull(deps(await gatedApi(100)), locationId, { full: true });
    expect(result).toMatchObject({ pages: 3, contacts: 12, changed: 12, done: true });
    expect(contactIds(db, locationId)).toHaveLength(12);
    // Page 2 was asked for while page 1 was still unapplied; page 3 while page 2 was.
    expect(heldAtSearch).toEqual([0, 0, 5]);
  });

  it('applies a page a slice at a time, letting other work run and see each slice committed', async () => {
    const page = 2 * APPLY_SLICE + 20;
    seedContacts(emulator.emu, locationId, page);
    // Other work on the same event loop, as a webhook's acknowledgement would be: what it finds stored.
    const seenByOthers = new Set<number>();
    let next: NodeJS.Immediate | undefined;
    const other = () => {
      seenByOthers.add(contactIds(db, locationId).length);
      next = setImmediate(other);
    };
    other();
    let result;
    try {
      result = await pull(deps(await gatedApi(100), page + 1), locationId, { full: true });
    } finally {
      clearImmediate(next);
    }
    expect(result).toMatchObject({ pages: 1, contacts: page, changed: page, done: true });
    // Between the slices, not only before and after the page.
    expect([...seenByOthers].sort((a, b) => a - b)).toEqual([0, APPLY_SLICE, 2 * APPLY_SLICE, page]);
  });

  it('applies and checkpoints a page whose successor the gate deferred, then resumes after it', async () => {
    seedContacts(emulator.emu, locationId, 12);
    // One request per window (the gate keeps 2 of 3 free): page 1 goes, the early request for page 2 is deferred.
    const api = await gatedApi(3);
    const deferred = await pull(deps(api), locationId, { full: true }).catch((err: unknown) => err);
    expect(deferred).toBeInstanceOf(DeferredError);
    expect(contactIds(db, locationId)).toHaveLength(PAGE);
    const run = getSyncState(db, locationId).cursor.run;
    expect(run?.searchAfter).toHaveLength(2);

    for (let i = 0; i < 10 && getSyncState(db, locationId).lastFullSweepAt === null; i++) {
      clock.set((deferred as DeferredError).retryAt + i * WINDOW_MS);
      await pull(deps(api), locationId).catch((err: unknown) => {
        if (!(err instanceof DeferredError)) throw err;
      });
    }
    expect(getSyncState(db, locationId)).toMatchObject({ lastFullSweepAt: run!.startedAt, cursor: { run: null } });
    expect(contactIds(db, locationId)).toHaveLength(12);
    const searches = (await control<{ requests: { status: number }[] }>(emulator.url, 'GET', '/requests?method=POST&path=/contacts/search')).requests;
    expect(searches.map((r) => r.status)).toEqual([200, 200, 200]);
  });
});
