// POST /contacts/search over real HTTP: validation limits, filters and groups, sort with its id
// tiebreak, page and searchAfter paging (beyond 10,000 records), edits during paging, search lag
// (each write's own visibility time: a delayed or jittered write shows after later ones).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ManualClock, testEmulator } from '../helpers/emulator.ts';
import { addLocation } from '../helpers/world.ts';
import { seedContacts } from '../../emulator/contact-model.ts';
import type { RunningEmulator } from '../../emulator/server.ts';

let running: RunningEmulator;
let base: string;
const clock = new ManualClock();

beforeAll(async () => {
  running = await testEmulator({ clock, config: { rateLimit: { burstMax: 1_000_000, burstWindowMs: 10_000, dailyMax: 10_000_000 } } });
  base = running.url;
});
afterAll(async () => {
  await running.close();
});

type Contact = Record<string, any>;

async function search(token: string, body: Record<string, unknown>) {
  return call<{ contacts: Contact[]; total: number; traceId: string; message?: string[] }>(base, 'POST', '/contacts/search', { token, body });
}

/** A small location with known contacts, created over the API one clock tick apart. */
async function smallLocation() {
  const { location: loc, token } = addLocation(running.emu, { allowDuplicateContact: true });
  const rows = [
    { firstName: 'Alice', lastName: 'Zed', email: 'Alice@Corp.test', phone: '+1 415-555-0001', companyName: 'Corp', tags: ['vip', 'newsletter'], city: 'Paris', dnd: true },
    { firstName: 'bob', lastName: 'Young', email: 'bob@home.test', phone: '+14155550002', tags: ['newsletter'], city: 'Berlin', customFields: [{ id: 'Cf0000000000000000aa', field_value: 'gold' }] },
    { firstName: 'Carol', lastName: 'Young', email: 'carol@corp.test', companyName: 'Corp', tags: [], city: 'Paris', source: 'import' },
    { lastName: 'Xu', phone: '+44 20 7946 0000', city: 'London', dateOfBirth: '1980-01-02' },
    { firstName: 'alice', lastName: 'Adams', email: 'a.adams@corp.test', tags: ['vip'], dnd: false },
  ];
  const ids: string[] = [];
  for (const row of rows) {
    clock.advance(1000);
    const res = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, ...row } });
    expect(res.status).toBe(201);
    ids.push(res.body.contact.id);
  }
  return { loc, token, ids };
}

describe('search request validation', () => {
  it('answers 422 with message arrays for missing or out-of-range parameters', async () => {
    const { location: loc, token } = addLocation(running.emu);
    const cases: [Record<string, unknown>, string][] = [
      [{ pageLimit: 10 }, 'locationId should not be empty'],
      [{ locationId: loc.id }, 'pageLimit should not be empty'],
      [{ locationId: loc.id, pageLimit: 501 }, 'pageLimit must not be greater than 500'],
      [{ locationId: loc.id, pageLimit: 500, page: 21 }, 'page * pageLimit must not be greater than 10000; use searchAfter to read further'],
      [{ locationId: loc.id, pageLimit: 10, page: 1, searchAfter: [1, 'x'] }, 'page and searchAfter cannot be used together'],
      [{ locationId: loc.id, pageLimit: 10, searchAfter: ['x'] }, 'searchAfter must hold 2 values: the sort value(s) then the contact id, as returned in a contact\'s searchAfter'],
      [{ locationId: loc.id, pageLimit: 10, foo: 1 }, 'property foo should not exist'],
      [{ locationId: loc.id, pageLimit: 10, query: 'x'.repeat(76) }, 'query must be shorter than or equal to 75 characters'],
      [{ locationId: loc.id, pageLimit: 10, filters: [{ field: 'shoeSize', operator: 'eq', value: 1 }] }, 'filters.0.field "shoeSize" is not a supported filter field'],
      [{ locationId: loc.id, pageLimit: 10, filters: [{ field: 'email', operator: 'contains', value: 'x' }] }, 'filters.0.operator contains is not supported for field email'],
      [{ locationId: loc.id, pageLimit: 10, filters: [{ field: 'city', operator: 'exists', value: 'x' }] }, 'filters.0.value should not exist for operator exists/not_exists'],
      [{ locationId: loc.id, pageLimit: 10, filters: [{ group: 'XOR', filters: [] }] }, 'filters.0.group must be one of the following values: AND, OR'],
      [{ locationId: loc.id, pageLimit: 10, sort: [{ field: 'city', direction: 'asc' }] }, 'sort.0.field must be one of the following values: dateAdded, dateUpdated, firstNameLowerCase, lastNameLowerCase, businessName, email, dnd, source'],
      [
        { locationId: loc.id, pageLimit: 10, sort: [{ field: 'dnd', direction: 'asc' }, { field: 'email', direction: 'asc' }, { field: 'source', direction: 'asc' }] },
        'sort must contain no more than 2 elements',
      ],
    ];
    for (const [body, message] of cases) {
      const res = await search(token, body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity' });
      expect(res.body.message).toContain(message);
    }
    expect((await search(token, { locationId: loc.id, pageLimit: 500, page: 20 })).status).toBe(200);
    const other = addLocation(running.emu);
    expect((await search(token, { locationId: other.location.id, pageLimit: 10 })).status).toBe(403);
  });
});

describe('search results', () => {
  it('returns the search shape with total, traceId and a searchAfter per contact', async () => {
    const { loc, token, ids } = await smallLocation();
    const res = await search(token, { locationId: loc.id, pageLimit: 10 });
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(5);
    expect(res.body.traceId).toEqual(expect.any(String));
    // Default order: newest first.
    expect(res.body.contacts.map((c) => c.id)).toEqual([...ids].reverse());
    const alice = res.body.contacts.find((c) => c.id === ids[0])!;
    expect(alice).toMatchObject({ contactName: 'Alice Zed', email: 'Alice@Corp.test', companyName: 'Corp', tags: ['vip', 'newsletter'], dnd: true });
    expect(alice.searchAfter).toEqual([Date.parse(alice.dateAdded), alice.id]);
    const xu = res.body.contacts.find((c) => c.id === ids[3])!;
    expect(xu.dateOfBirth).toBe(Date.parse('1980-01-02T00:00:00.000Z'));
  });

  it('applies filters, AND/OR groups and query', async () => {
    const { loc, token, ids } = await smallLocation();
    const [alice, bob, carol, xu, adams] = ids;
    const run = async (extra: Record<string, unknown>) => {
      const res = await search(token, { locationId: loc.id, pageLimit: 100, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(200);
      expect(res.body.total).toBe(res.body.contacts.length);
      return res.body.contacts.map((c) => c.id).sort();
    };
    const f = (field: string, operator: string, value?: unknown) => ({ filters: [{ field, operator, ...(value === undefined ? {} : { value }) }] });
    const sorted = (...xs: (string | undefined)[]) => (xs as string[]).sort();

    expect(await run(f('email', 'eq', 'ALICE@corp.test'))).toEqual(sorted(alice));
    expect(await run(f('email', 'not_eq', 'alice@corp.test'))).toEqual(sorted(bob, carol, xu, adams));
    expect(await run(f('email', 'not_exists'))).toEqual(sorted(xu));
    expect(await run(f('firstNameLowerCase', 'eq', 'alice'))).toEqual(sorted(alice, adams));
    expect(await run(f('firstNameLowerCase', 'contains', 'ca'))).toEqual(sorted(carol));
    expect(await run(f('lastNameLowerCase', 'not_contains', 'young'))).toEqual(sorted(alice, xu, adams));
    expect(await run(f('tags', 'eq', 'vip'))).toEqual(sorted(alice, adams));
    expect(await run(f('tags', 'not_exists'))).toEqual(sorted(carol, xu));
    expect(await run(f('companyName', 'exists'))).toEqual(sorted(alice, carol));
    expect(await run(f('phone', 'eq', '+14155550001'))).toEqual(sorted(alice));
    expect(await run(f('dnd', 'eq', true))).toEqual(sorted(alice));
    expect(await run(f('source', 'eq', 'import'))).toEqual(sorted(carol));
    expect(await run(f('contactName', 'contains', 'young'))).toEqual(sorted(bob, carol));
    expect(await run(f('customFields.Cf0000000000000000aa', 'eq', 'GOLD'))).toEqual(sorted(bob));
    expect(await run(f('id', 'eq', xu))).toEqual(sorted(xu));
    const addedCarol = Date.parse((await call(base, 'GET', `/contacts/${carol}`, { token })).body.contact.dateAdded);
    expect(await run(f('dateAdded', 'range', { gte: addedCarol, lt: new Date(addedCarol + 2000).toISOString() }))).toEqual(sorted(carol, xu));
    expect(
      await run({
        filters: [
          { field: 'city', operator: 'eq', value: 'paris' },
          { group: 'OR', filters: [{ field: 'tags', operator: 'eq', value: 'vip' }, { field: 'source', operator: 'exists' }] },
        ],
      }),
    ).toEqual(sorted(alice, carol));
    expect(
      await run({
        filters: [
          {
            group: 'OR',
            filters: [
              { field: 'city', operator: 'eq', value: 'London' },
              { group: 'AND', filters: [{ field: 'city', operator: 'eq', value: 'Berlin' }, { field: 'tags', operator: 'eq', value: 'newsletter' }] },
            ],
          },
        ],
      }),
    ).toEqual(sorted(bob, xu));
    expect(await run({ query: 'corp' })).toEqual(sorted(alice, carol, adams));
    expect(await run({ query: '415-555-0002' })).toEqual(sorted(bob));
    expect(await run({ query: 'young', filters: [{ field: 'city', operator: 'eq', value: 'Paris' }] })).toEqual(sorted(carol));
  });

  it('sorts by up to two fields, missing values last, ties broken by id', async () => {
    const { loc, token, ids } = await smallLocation();
    const [alice, bob, carol, xu, adams] = ids;
    const res = await search(token, {
      locationId: loc.id,
      pageLimit: 10,
      sort: [{ field: 'firstNameLowerCase', direction: 'asc' }, { field: 'lastNameLowerCase', direction: 'desc' }],
    });
    expect(res.body.contacts.map((c) => c.id)).toEqual([alice, adams, bob, carol, xu]);
    expect(res.body.contacts[0]!.searchAfter).toEqual(['alice', 'zed', alice]);
    // Resume after the second contact with its searchAfter.
    const next = await search(token, {
      locationId: loc.id,
      pageLimit: 2,
      sort: [{ field: 'firstNameLowerCase', direction: 'asc' }, { field: 'lastNameLowerCase', direction: 'desc' }],
      searchAfter: res.body.contacts[1]!.searchAfter,
    });
    expect(next.body.contacts.map((c) => c.id)).toEqual([bob, carol]);
    const desc = await search(token, { locationId: loc.id, pageLimit: 10, sort: [{ field: 'email', direction: 'desc' }] });
    expect(desc.body.contacts.map((c) => c.id)).toEqual([carol, bob, alice, adams, xu]);

    // A write is visible at once (no lag configured) and re-sorts: the reconciliation pattern
    // "dateUpdated >= last sync, oldest change first" sees the edited contact last.
    clock.advance(1000);
    const since = clock.now();
    await call(base, 'PUT', `/contacts/${bob}`, { token, body: { firstName: 'Aaron' } });
    const byName = await search(token, { locationId: loc.id, pageLimit: 10, sort: [{ field: 'firstNameLowerCase', direction: 'asc' }] });
    // The two "alice"s tie on the only sort field: the id decides.
    expect(byName.body.contacts.map((c) => c.id)).toEqual([bob, ...[alice!, adams!].sort(), carol, xu]);
    expect(byName.body.contacts[0]!.firstName).toBe('Aaron');
    const changed = await search(token, {
      locationId: loc.id,
      pageLimit: 10,
      filters: [{ field: 'dateUpdated', operator: 'range', value: { gte: since } }],
      sort: [{ field: 'dateUpdated', direction: 'asc' }],
    });
    expect(changed.body.contacts.map((c) => c.id)).toEqual([bob]);
    expect(changed.body.contacts[0]!.searchAfter).toEqual([since, bob]);
  });
});

describe('paging large locations', () => {
  it('reads more than 10,000 contacts with searchAfter, each exactly once', async () => {
    const { location: loc, token } = addLocation(running.emu);
    seedContacts(running.emu, loc.id, 10_050);
    const seen = new Set<string>();
    let received = 0;
    let searchAfter: unknown[] | undefined;
    const timings: number[] = [];
    for (;;) {
      const started = performance.now();
      const res = await search(token, { locationId: loc.id, pageLimit: 500, ...(searchAfter ? { searchAfter } : {}) });
      timings.push(performance.now() - started);
      expect(res.status).toBe(200);
      expect(res.body.total).toBe(10_050);
      for (const c of res.body.contacts) seen.add(c.id);
      received += res.body.contacts.length;
      if (res.body.contacts.length < 500) break;
      searchAfter = res.body.contacts[res.body.contacts.length - 1]!.searchAfter;
    }
    expect(seen.size).toBe(10_050);
    expect(received).toBe(10_050);
    console.log(`search pages of 500 over 10,050 contacts: first ${timings[0]!.toFixed(1)} ms, then median ${median(timings.slice(1)).toFixed(1)} ms (HTTP round trip)`);
    // Page-based paging stops at 10,000 records.
    const ceiling = await search(token, { locationId: loc.id, pageLimit: 500, page: 21 });
    expect(ceiling.status).toBe(422);
  });

  it('does not lose a record edited while paging', async () => {
    const { location: loc, token } = addLocation(running.emu);
    const seeded = seedContacts(running.emu, loc.id, 1_200);
    const seen: string[] = [];
    let searchAfter: unknown[] | undefined;
    let page = 0;
    for (;;) {
      const res = await search(token, { locationId: loc.id, pageLimit: 500, ...(searchAfter ? { searchAfter } : {}) });
      for (const c of res.body.contacts) seen.push(c.id);
      if (page++ === 0) {
        // Seeded oldest first and listed newest first: seeded[0] comes last, seeded[1199] came first.
        clock.advance(1000);
        for (const doc of [seeded[0]!, seeded[1_199]!]) {
          const put = await call(base, 'PUT', `/contacts/${doc.id}`, { token, body: { firstName: 'Edited', tags: ['moved'] } });
          expect(put.status).toBe(200);
        }
      }
      if (res.body.contacts.length < 500) break;
      searchAfter = res.body.contacts[res.body.contacts.length - 1]!.searchAfter;
    }
    expect(seen).toHaveLength(1_200);
    expect(new Set(seen).size).toBe(1_200);
  });
});

describe('search lag', () => {
  it('hides writes from search for searchLagMs while GET sees them at once', async () => {
    const { location: loc, token } = addLocation(running.emu);
    running.emu.setConfig({ searchLagMs: 5_000 });
    try {
      const created = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'lag@x.test', firstName: 'Old' } });
      const id = created.body.contact.id as string;
      const byId = { locationId: loc.id, pageLimit: 10, filters: [{ field: 'id', operator: 'eq', value: id }] };
      expect((await call(base, 'GET', `/contacts/${id}`, { token })).status).toBe(200);
      expect((await search(token, byId)).body.total).toBe(0);
      clock.advance(5_000);
      const visible = await search(token, byId);
      expect(visible.body.contacts.map((c) => c.firstName)).toEqual(['Old']);

      await call(base, 'PUT', `/contacts/${id}`, { token, body: { firstName: 'New' } });
      expect((await call(base, 'GET', `/contacts/${id}`, { token })).body.contact.firstName).toBe('New');
      expect((await search(token, byId)).body.contacts.map((c) => c.firstName)).toEqual(['Old']);
      clock.advance(4_999);
      expect((await search(token, byId)).body.contacts.map((c) => c.firstName)).toEqual(['Old']);
      clock.advance(1);
      expect((await search(token, byId)).body.contacts.map((c) => c.firstName)).toEqual(['New']);

      await call(base, 'DELETE', `/contacts/${id}`, { token });
      expect((await call(base, 'GET', `/contacts/${id}`, { token })).status).toBe(400);
      expect((await search(token, byId)).body.total).toBe(1);
      clock.advance(5_000);
      expect((await search(token, byId)).body.total).toBe(0);
    } finally {
      running.emu.setConfig({ searchLagMs: 0 });
    }
  });
});

describe('writes reaching search out of order', () => {
  /** The location's contacts changed since `since`, as an incremental pull asks: oldest change first. */
  async function changedSince(token: string, locationId: string, since: number): Promise<Contact[]> {
    const res = await search(token, {
      locationId,
      pageLimit: 100,
      filters: [{ field: 'dateUpdated', operator: 'range', value: { gte: since } }],
      sort: [{ field: 'dateUpdated', direction: 'asc' }],
    });
    expect(res.status).toBe(200);
    return res.body.contacts;
  }

  it('shows an earlier write after a later one when the earlier one is delayed (delaySearch)', async () => {
    const { location: loc, token } = addLocation(running.emu);
    const since = clock.now();
    running.emu.delaySearch({ delayMs: 10_000, locationId: loc.id });
    const a = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'a@late.test', firstName: 'A' } })).body.contact.id as string;
    clock.advance(1_000);
    const b = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'b@late.test', firstName: 'B' } })).body.contact.id as string;

    // B, written a second after A, is found; A is not yet, though GET has it.
    expect((await changedSince(token, loc.id, since)).map((c) => c.id)).toEqual([b]);
    expect((await call(base, 'GET', `/contacts/${a}`, { token })).status).toBe(200);
    expect(running.emu.contactForSearch(a)).toBeNull();
    clock.advance(8_999);
    expect((await changedSince(token, loc.id, since)).map((c) => c.id)).toEqual([b]);
    // Ten seconds after its write A shows, before B in dateUpdated order.
    clock.advance(1);
    expect((await changedSince(token, loc.id, since)).map((c) => c.id)).toEqual([a, b]);
    expect(running.emu.contactForSearch(a)?.firstName).toBe('A');
  });

  it('lets a newer version overtake an older one still pending, which then never shows', async () => {
    const { location: loc, token } = addLocation(running.emu);
    const id = (await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'v@late.test', firstName: 'Orig' } })).body.contact.id as string;
    const byId = { locationId: loc.id, pageLimit: 10, filters: [{ field: 'id', operator: 'eq', value: id }] };
    const shown = async () => {
      const names = (await search(token, byId)).body.contacts.map((c) => c.firstName);
      // The search snapshot and contactForSearch make the same choice.
      expect(names).toEqual([running.emu.contactForSearch(id)?.firstName]);
      return names[0];
    };
    expect(await shown()).toBe('Orig');

    clock.advance(1_000);
    running.emu.delaySearch({ delayMs: 10_000, contactId: id });
    await call(base, 'PUT', `/contacts/${id}`, { token, body: { firstName: 'Delayed' } });
    expect(await shown()).toBe('Orig');
    clock.advance(2_000);
    await call(base, 'PUT', `/contacts/${id}`, { token, body: { firstName: 'Latest' } });
    expect(await shown()).toBe('Latest');
    clock.advance(10_000);
    expect(await shown()).toBe('Latest');
    // The delay was used up by its one write.
    expect(running.emu.searchDelays).toEqual([]);
  });

  it('delays each write by searchLagMs plus a jitter in [0, searchLagJitterMs), so writes show out of order', async () => {
    const { location: loc, token } = addLocation(running.emu);
    running.emu.setConfig({ searchLagMs: 1_000, searchLagJitterMs: 5_000 });
    try {
      const since = clock.now();
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: `j${i}@jitter.test` } });
        ids.push(res.body.contact.id as string);
        clock.advance(1);
      }
      // Written at since + i: none shows before since + 1,000, each by since + i + 5,999.
      for (const [i, id] of ids.entries()) {
        const [version] = running.emu.world.contacts[id]!;
        expect(version!.visibleAt - (since + i)).toBeGreaterThanOrEqual(1_000);
        expect(version!.visibleAt - (since + i)).toBeLessThan(6_000);
      }
      clock.set(since + 999);
      expect(await changedSince(token, loc.id, since)).toEqual([]);
      // Half way: some show, and not only the first ones written.
      clock.set(since + 3_500);
      const midway = (await changedSince(token, loc.id, since)).map((c) => c.id);
      expect(midway.length).toBeGreaterThan(0);
      expect(midway.length).toBeLessThan(ids.length);
      expect(midway).not.toEqual(ids.slice(0, midway.length));
      clock.set(since + 39 + 5_999);
      expect((await changedSince(token, loc.id, since)).map((c) => c.id)).toEqual(ids);
    } finally {
      running.emu.setConfig({ searchLagMs: 0, searchLagJitterMs: 0 });
    }
  });

  it('takes searchLagJitterMs from PATCH /config, and a raised lag still hides recent writes', async () => {
    const patched = await call(base, 'PATCH', '/__emulator/config', { body: { searchLagJitterMs: 250 }, version: null });
    expect(patched.status).toBe(200);
    expect(patched.body.searchLagJitterMs).toBe(250);
    expect((await call(base, 'PATCH', '/__emulator/config', { body: { searchLagJitterMs: -1 }, version: null })).status).toBe(400);
    running.emu.setConfig({ searchLagJitterMs: 0 });

    // Written with no lag, then the lag is raised: judged at read time too, the write hides again.
    const { location: loc, token } = addLocation(running.emu);
    const since = clock.now();
    await call(base, 'POST', '/contacts/', { token, body: { locationId: loc.id, email: 'raised@lag.test' } });
    expect(await changedSince(token, loc.id, since)).toHaveLength(1);
    running.emu.setConfig({ searchLagMs: 5_000 });
    try {
      expect(await changedSince(token, loc.id, since)).toHaveLength(0);
      clock.advance(5_000);
      expect(await changedSince(token, loc.id, since)).toHaveLength(1);
    } finally {
      running.emu.setConfig({ searchLagMs: 0 });
    }
  });
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}
