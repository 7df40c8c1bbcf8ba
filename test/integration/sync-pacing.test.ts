// The sync loop's pacing (server/sync/supervisor.ts, PASS_GAP_MS), over real HTTP with the loop
// running on the real clock: a change arriving after a quiet spell is applied at once, while one
// arriving right after a pass waits for the gap, so that under a stream of webhooks one pass takes
// many events instead of one pass per hand-over of the inbox. Real time, as the pacing is: bounds
// only, no sleeps.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getContact } from '../../db/contacts.ts';
import { getLinkByRemote } from '../../db/links.ts';
import { getSyncState } from '../../db/sync-state.ts';
import { call, until } from '../helpers/emulator.ts';
import { installedTandem, type TestTandem } from '../helpers/tandem.ts';

/** Wider than the default, so that a busy machine's pauses stay well inside it. */
const GAP_MS = 400;

let t: TestTandem & { location: { id: string } };
let loc: string;

function hl(method: string, path: string, body?: unknown) {
  return call(t.highlevelUrl, method, path, { token: t.emulator.emu.world.locations[loc]!.privateToken, body });
}

const lastName = (highlevelId: string) => {
  const link = getLinkByRemote(t.db, loc, highlevelId);
  return link ? getContact(t.db, loc, link.contactId)?.fields.lastName : undefined;
};

beforeAll(async () => {
  t = await installedTandem({ sync: { passGapMs: GAP_MS } });
  loc = t.location.id;
  await until(() => getSyncState(t.db, loc).lastFullSweepAt !== null || undefined, 'the first pull', 10_000);
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('sync loop pacing', () => {
  it('applies a change after a quiet spell at once, and one right after a pass only after the gap', async () => {
    const ids: string[] = [];
    for (const name of ['Quiet', 'Stream']) {
      const res = await hl('POST', '/contacts/', { locationId: loc, firstName: name, lastName: 'Before', email: `${name}.${randomUUID().slice(0, 8)}@example.com` });
      expect(res.status).toBe(201);
      ids.push(res.body.contact.id as string);
    }
    await until(() => ids.every((id) => lastName(id) === 'Before') || undefined, 'both contacts in Tandem');

    // A quiet spell longer than the gap, then a change: applied without waiting for it.
    const quietFrom = performance.now();
    await until(() => performance.now() - quietFrom > GAP_MS + 50 || undefined, 'a quiet spell');
    const editedAt = performance.now();
    expect((await hl('PUT', `/contacts/${ids[0]}`, { lastName: 'After' })).status).toBe(200);
    await until(() => lastName(ids[0]!) === 'After' || undefined, 'the first change in Tandem');
    const firstApplied = performance.now();
    expect(firstApplied - editedAt).toBeLessThan(GAP_MS);

    // Right after that pass: the next change waits for the gap (timers may fire a little early).
    expect((await hl('PUT', `/contacts/${ids[1]}`, { lastName: 'After' })).status).toBe(200);
    await until(() => lastName(ids[1]!) === 'After' || undefined, 'the second change in Tandem');
    expect(performance.now() - firstApplied).toBeGreaterThanOrEqual(GAP_MS - 50);
  });
});
