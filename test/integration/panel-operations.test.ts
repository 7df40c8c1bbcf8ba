// The panel's one-time operations API over real HTTP: start (a preview), the event stream read with
// fetch and the Bearer header until the operation rests, confirm, the history with its summary and
// requester, per-record outcomes with filters and cursor, undo (previewed and confirmed, then not
// undoable again), busy and expired refusals as 409, a shown preview's stream told at once when a
// newer preview (another tab) replaces it, a preview waiting on HighLevel or for confirmation listed
// as the active operation (who, since when, why it waits, until when it stands) for every panel of
// its location after a reload, until it expires or is cancelled, admin-only changes, strict bodies, no
// operation of another location reachable by any route, and an open stream that ends once its
// session no longer holds (the user deactivated, the session expired). The operations are the test's own small
// handlers (the routes are under test, not what Push contacts does).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveCustomFieldDefinitions } from '../../db/custom-fields.ts';
import { upsertHighLevelUsers } from '../../db/highlevel-users.ts';
import { listItems } from '../../db/operations.ts';
import { SESSION_TTL_MS } from '../../server/auth/session.ts';
import type { OperationItemsPage, OperationView, OperationsView } from '../../server/routes/panel-operations.ts';
import { undoHandler, type UndoPart } from '../../server/sync/operations/undo.ts';
import { emptyCounts, type OperationHandler, type Preview, type SideCounts } from '../../server/sync/operations/types.ts';
import { ManualClock, control, until } from '../helpers/emulator.ts';
import { startTestTandem, type TestAgency, type TestTandem } from '../helpers/tandem.ts';
import { panelApi, panelSignIn, twoInstalledAgencies } from '../helpers/panel.ts';

const TOTAL = 60;
const LEAD_SCORE = 'cfLeadScore000000001';
/** Every 7th record fails, every 3rd is unchanged, the rest are updated (shared by preview and run). */
const decide = (i: number): keyof SideCounts => (i % 7 === 6 ? 'failed' : i % 3 === 0 ? 'unchanged' : 'updated');
/**
 * While set, a push has this many records of its own: every 3rd skipped as a duplicate, the others
 * failed or unchanged (for the skipped filter, among the other outcomes).
 */
let skipping: number | undefined;
const decideSkips = (i: number): keyof SideCounts => (i % 3 === 0 ? 'skipped' : i % 3 === 1 ? 'unchanged' : 'failed');
const duplicateOf = (i: number) => `same email as Tandem contact Record ${i + 1}, which HighLevel already holds as one contact: not created twice (change the email of one of the two on the Contacts tab, or delete the other in HighLevel)`;
const values = new Map<string, number>();
let hold: { reached: boolean; release: () => void; promise: Promise<void> } | undefined;
function holdRun(): void {
  let release!: () => void;
  const promise = new Promise<void>((r) => (release = r));
  hold = { reached: false, release, promise };
}

const preview = (side: 'highlevel', n: number, action: (i: number) => keyof SideCounts): Preview => {
  const counts = emptyCounts();
  for (let i = 0; i < n; i++) counts[side][action(i)]++;
  const changes = [
    { field: 'n', from: 1, to: 2 },
    // A custom field HighLevel defines (named in the view) and one it no longer does (not named).
    { field: `customFields.${LEAD_SCORE}`, from: 54, to: 99 },
    { field: 'customFields.cfGone00000000000001', from: 'x', to: null },
  ];
  return { counts, samples: [{ label: 'Record 1', side, action: 'update', changes }], requests: 1, durationMs: 600, notes: [] };
};

const push: OperationHandler = {
  kind: 'push',
  async preview(ctx) {
    await ctx.api.searchContacts({ pageLimit: 1 });
    return skipping ? preview('highlevel', skipping, decideSkips) : preview('highlevel', TOTAL, decide);
  },
  async run(ctx) {
    ctx.progress({ phase: 'writing', total: TOTAL });
    if (hold) {
      hold.reached = true;
      await hold.promise;
      hold = undefined;
    }
    if (skipping) {
      for (let i = 0; i < skipping; i++) {
        ctx.step('record');
        const action = decideSkips(i);
        const reason = action === 'skipped' ? duplicateOf(i) : action === 'failed' ? 'HighLevel refused the phone number' : null;
        ctx.record({ key: `s:${i}`, entity: 'contact', side: 'highlevel', action, label: `Record ${i} of ${ctx.locationId}`, reason });
      }
      return;
    }
    for (let i = 0; i < TOTAL; i++) {
      ctx.step('record');
      const key = `c:${i}`;
      const action = decide(i);
      if (action === 'updated') values.set(key, (values.get(key) ?? 0) + 1);
      ctx.record({
        key, entity: 'contact', side: 'highlevel', action, label: `Record ${i}`,
        ...(action === 'failed' ? { reason: 'HighLevel refused the phone number' } : {}),
        ...(action === 'updated' ? { before: { fields: { n: i }, base: null }, after: { fields: { n: i + 1 } } } : {}),
      });
      ctx.progress({ done: i + 1 });
    }
  },
};

const pushUndo: UndoPart = {
  async preview(ctx, target) {
    const n = listItems(ctx.db, target.id, { actions: ['updated'], limit: 1000 }).length;
    return preview('highlevel', n, () => 'updated');
  },
  async run(ctx, target) {
    for (let i = 0; i < TOTAL; i++) {
      ctx.step('record');
      const key = `c:${i}`;
      if (decide(i) !== 'updated') continue;
      values.set(key, (values.get(key) ?? 0) - 1);
      ctx.record({ key, entity: 'contact', side: 'highlevel', action: 'updated', label: `Record ${i} of ${target.id}` });
    }
  },
};

const clock = new ManualClock();
let t: TestTandem;
let agencyA: TestAgency;
let agencyB: TestAgency;
let A: string;
let B: string;
let plainUserA: string;

beforeAll(async () => {
  t = await startTestTandem({ clock, sync: { start: false }, operations: { sweepMs: 0, handlers: { push, undo: undoHandler({ push: pushUndo }) } } });
  const world = await twoInstalledAgencies(t);
  ({ agencyA, agencyB, plainUserA } = world);
  A = world.A.id;
  B = world.B.id;
}, 30_000);
afterAll(async () => {
  await t?.close();
});

const signIn = (userId: string, locationId: string) => panelSignIn(t, userId, locationId);

const api = <T = any>(method: string, path: string, token: string, body?: unknown) => panelApi<T>(t, method, path, token, body);

/**
 * Reads the event stream as the panel does (fetch + reader) until the server ends it, or until a
 * view `stopAt` accepts (a shown preview's stream stays open: the panel then reads on or closes it).
 */
async function stream(
  id: string,
  token: string,
  onView?: (v: OperationView) => void,
  stopAt?: (v: OperationView) => boolean,
): Promise<{ views: OperationView[]; comments: string[]; type: string | null }> {
  const res = await fetch(`${t.url}/api/panel/operations/${id}/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const views: OperationView[] = [];
  const comments: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (block.startsWith(':')) comments.push(block.slice(1).trim());
      const data = block.split('\n').find((l) => l.startsWith('data: '));
      if (data) {
        views.push(JSON.parse(data.slice(6)) as OperationView);
        onView?.(views.at(-1)!);
        if (stopAt?.(views.at(-1)!)) {
          await reader.cancel();
          return { views, comments, type: res.headers.get('content-type') };
        }
      }
    }
    if (done) break;
  }
  return { views, comments, type: res.headers.get('content-type') };
}

const shownOrEnded = (v: OperationView) => v.status !== 'previewing';

/** Starts an operation and follows its stream until the preview is shown. */
async function previewed(token: string, body: unknown): Promise<OperationView> {
  const started = await api<OperationView>('POST', '/api/panel/operations', token, body);
  expect(started.status).toBe(202);
  const { views } = await stream(started.body.id, token, undefined, shownOrEnded);
  const last = views.at(-1)!;
  expect(last.status).toBe('previewed');
  return last;
}

let pushId: string;

describe('a push, start to finish', () => {
  it('starts with nothing: no last runs, no active operation, empty history', async () => {
    const token = await signIn(agencyA.adminId, A);
    const { status, body } = await api<OperationsView>('GET', '/api/panel/operations', token);
    expect(status).toBe(200);
    expect(body).toEqual({ lastCompleted: { push: null, pull: null, sync_users: null }, active: null, history: [], canRun: true });
  });

  it('previews (streamed until shown), confirms, streams progress to completion, then lists it with its summary', async () => {
    const token = await signIn(agencyA.adminId, A);
    saveCustomFieldDefinitions(t.db, A, [{ id: LEAD_SCORE, name: 'Lead score', fieldKey: 'contact.lead_score', dataType: 'NUMERICAL', options: [], position: 0 }], Date.now());
    const started = await api<OperationView>('POST', '/api/panel/operations', token, { kind: 'push' });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ kind: 'push', status: 'previewing', requestedBy: { id: agencyA.adminId, name: 'Ada Admin' }, preview: null });
    pushId = started.body.id;

    const first = await stream(pushId, token, undefined, shownOrEnded);
    expect(first.type).toBe('text/event-stream; charset=utf-8');
    expect(first.comments).toContain('connected');
    const shown = first.views.at(-1)!;
    expect(shown.status).toBe('previewed');
    expect(shown.preview!.counts.highlevel).toMatchObject({ updated: 35, unchanged: 17, failed: 8 });
    expect(shown.preview!.samples[0]!.changes[0]).toEqual({ field: 'n', from: 1, to: 2 });
    expect(shown.fieldNames).toEqual({ [`customFields.${LEAD_SCORE}`]: 'Lead score' });
    expect(values.size).toBe(0);
    expect((await api<OperationsView>('GET', '/api/panel/operations', token)).body.active).toMatchObject({ id: pushId, status: 'previewed' });

    holdRun();
    const confirmed = await api<OperationView>('POST', `/api/panel/operations/${pushId}/confirm`, token);
    expect(confirmed.status).toBe(200);
    expect(confirmed.body.status).toBe('running');
    // The stream opened while running carries the progress until the run completes, then ends.
    await until(() => hold?.reached, 'the run to start');
    // Released once the stream has shown the run, so the progress after it is streamed.
    const { views } = await stream(pushId, token, () => hold?.release());
    expect(views[0]!.status).toBe('running');
    const last = views.at(-1)!;
    expect(last.status).toBe('completed');
    expect(last.progress).toMatchObject({ phase: 'completed', done: TOTAL, total: TOTAL, etaMs: 0 });
    expect(last.progress!.counts).toEqual(shown.preview!.counts);
    expect(last.undoable).toBe(true);

    const list = (await api<OperationsView>('GET', '/api/panel/operations', token)).body;
    expect(list.lastCompleted.push).toBe(new Date(clock.now()).toISOString());
    expect(list.active).toBeNull();
    expect(list.history).toHaveLength(1);
    expect(list.history[0]).toMatchObject({ id: pushId, status: 'completed', requestedBy: { name: 'Ada Admin' }, undoable: true, undoneBy: null, preview: null });
    expect(list.history[0]!.progress!.counts.highlevel).toMatchObject({ updated: 35, unchanged: 17, failed: 8 });
    // The detail keeps the preview as it was shown.
    expect((await api<OperationView>('GET', `/api/panel/operations/${pushId}`, token)).body.preview).toEqual(shown.preview);
  });

  it('lists per-record outcomes: failed with reasons, changed with before and after, in pages', async () => {
    const token = await signIn(agencyA.adminId, A);
    const failed = (await api<OperationItemsPage>('GET', `/api/panel/operations/${pushId}/items?filter=failed`, token)).body;
    expect(failed.items.map((i) => i.label)).toEqual([6, 13, 20, 27, 34, 41, 48, 55].map((i) => `Record ${i}`));
    expect(failed.items[0]).toMatchObject({ action: 'failed', side: 'highlevel', reason: 'HighLevel refused the phone number', before: null });
    expect(failed.nextCursor).toBeNull();
    const changed = (await api<OperationItemsPage>('GET', `/api/panel/operations/${pushId}/items?filter=changed`, token)).body;
    expect(changed.items).toHaveLength(35);
    // The ledger base an undo needs stays on the server.
    expect(changed.items[0]).toMatchObject({ key: 'c:1', action: 'updated', before: { n: 1 }, after: { n: 2 } });
    const page1 = (await api<OperationItemsPage>('GET', `/api/panel/operations/${pushId}/items`, token)).body;
    expect(page1.items).toHaveLength(50);
    const page2 = (await api<OperationItemsPage>('GET', `/api/panel/operations/${pushId}/items?cursor=${page1.nextCursor}`, token)).body;
    expect([...page1.items, ...page2.items].map((i) => i.key)).toEqual(Array.from({ length: TOTAL }, (_, i) => `c:${i}`));
    expect(page2.nextCursor).toBeNull();
    for (const query of ['filter=all', 'cursor=abc', 'limit=5']) {
      expect((await api('GET', `/api/panel/operations/${pushId}/items?${query}`, token)).status, query).toBe(400);
    }
  });

  it('undoes the run (previewed and confirmed); the run is then undone and not undoable again', async () => {
    const token = await signIn(agencyA.adminId, A);
    const undo = await previewed(token, { kind: 'undo', undoOf: pushId });
    expect(undo).toMatchObject({ kind: 'undo', undoOf: pushId });
    expect(undo.preview!.counts.highlevel.updated).toBe(35);
    expect((await api('POST', `/api/panel/operations/${undo.id}/confirm`, token)).status).toBe(200);
    const { views } = await stream(undo.id, token);
    expect(views.at(-1)).toMatchObject({ status: 'completed', undoable: false });
    expect([...values.values()].every((v) => v === 0)).toBe(true);

    const target = (await api<OperationView>('GET', `/api/panel/operations/${pushId}`, token)).body;
    expect(target).toMatchObject({ undoneBy: undo.id, undoable: false });
    const again = await api('POST', '/api/panel/operations', token, { kind: 'undo', undoOf: pushId });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'not_undoable', message: expect.stringContaining('last 7 days') });
    const missing = await api('POST', '/api/panel/operations', token, { kind: 'undo', undoOf: 'op_nope' });
    expect(missing.status).toBe(404);
  });
});

describe('refusals', () => {
  it('refuses a second operation while one runs (409 busy), and cancels a run', async () => {
    const token = await signIn(agencyA.adminId, A);
    const run = await previewed(token, { kind: 'push' });
    holdRun();
    await api('POST', `/api/panel/operations/${run.id}/confirm`, token);
    await until(() => hold?.reached, 'the run to start');
    const busy = await api('POST', '/api/panel/operations', token, { kind: 'push' });
    expect(busy.status).toBe(409);
    expect(busy.body.error).toEqual({ code: 'busy', message: 'Another one-time operation is running in this sub-account; wait for it to finish or cancel it.' });
    const cancel = await api<OperationView>('POST', `/api/panel/operations/${run.id}/cancel`, token);
    expect(cancel.status).toBe(200);
    expect(cancel.body.cancelRequested).toBe(true);
    expect((await stream(run.id, token, () => hold?.release())).views.at(-1)!.status).toBe('cancelled');
    const again = await api('POST', `/api/panel/operations/${run.id}/cancel`, token);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('wrong_state');
  });

  it('refuses to confirm a preview past its time (409 expired) and an operation this build lacks (404)', async () => {
    let token = await signIn(agencyA.adminId, A);
    const stale = await previewed(token, { kind: 'push' });
    clock.advance(15 * 60_000 + 1);
    token = await signIn(agencyA.adminId, A);
    const res = await api('POST', `/api/panel/operations/${stale.id}/confirm`, token);
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'expired', message: expect.stringContaining('preview again') });
    const lacking = await api('POST', '/api/panel/operations', token, { kind: 'pull' });
    expect(lacking.status).toBe(404);
    expect(lacking.body.error.message).toBe('This version of Tandem does not offer Pull contacts yet.');
  });

  it('tells a shown preview’s stream at once when a newer preview from another tab replaces it; confirming it then says why', async () => {
    const tabA = await signIn(agencyA.adminId, A);
    const tabB = await signIn(agencyA.adminId, A);
    const written = new Map(values);
    const shown = await previewed(tabA, { kind: 'push' });
    // Tab A's dialog offers Confirm and keeps listening.
    let listening = false;
    const watching = stream(shown.id, tabA, () => (listening = true));
    await until(() => listening, 'tab A to follow its preview');
    const newer = await api<OperationView>('POST', '/api/panel/operations', tabB, { kind: 'push' });
    expect(newer.status).toBe(202);
    const why = 'A newer preview of Push contacts, which you opened in another tab or window, replaced this one: a sub-account has one preview open at a time. Nothing was changed.';
    // The stream ends with the replaced preview and why, in plain words.
    const { views } = await watching;
    expect(views.map((v) => v.status)).toEqual(['previewed', 'discarded']);
    expect(views.at(-1)).toMatchObject({ id: shown.id, error: why });
    const confirm = await api('POST', `/api/panel/operations/${shown.id}/confirm`, tabA);
    expect(confirm.status).toBe(409);
    expect(confirm.body.error).toEqual({ code: 'wrong_state', message: why });
    expect(values).toEqual(written);
    // Tab B's preview is the one shown now; closing it leaves nothing active.
    await stream(newer.body.id, tabB, undefined, shownOrEnded);
    expect((await api<OperationView>('POST', `/api/panel/operations/${newer.body.id}/cancel`, tabB)).body.status).toBe('discarded');
    expect((await api<OperationsView>('GET', '/api/panel/operations', tabA)).body.active).toBeNull();
  });

  it('refuses bodies that are not exactly an operation with 400', async () => {
    const token = await signIn(agencyA.adminId, A);
    for (const body of [{}, { kind: 'delete' }, { kind: 'push', locationId: B }, { kind: 'undo' }, { kind: 'push', undoOf: pushId }, []]) {
      const res = await api('POST', '/api/panel/operations', token, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/\S/) });
    }
  });

  it('lets a plain user read the history and details, and refuses every change with 403', async () => {
    const token = await signIn(plainUserA, A);
    const list = await api<OperationsView>('GET', '/api/panel/operations', token);
    expect(list.status).toBe(200);
    expect(list.body.canRun).toBe(false);
    expect(list.body.history.map((h) => h.id)).toContain(pushId);
    expect((await api('GET', `/api/panel/operations/${pushId}/items`, token)).status).toBe(200);
    expect((await stream(pushId, token)).views.at(-1)!.id).toBe(pushId);
    for (const [path, body] of [
      ['/api/panel/operations', { kind: 'push' }],
      ['/api/panel/operations', { kind: 'undo', undoOf: pushId }],
      [`/api/panel/operations/${pushId}/confirm`, undefined],
      [`/api/panel/operations/${pushId}/cancel`, undefined],
    ] as const) {
      const res = await api('POST', path, token, body);
      expect(res.status, path).toBe(403);
      expect(res.body.error.code).toBe('admin_only');
    }
  });

  it('never reaches an operation of another location: 404 on every route, nothing in the lists', async () => {
    const tokenB = await signIn(agencyB.adminId, B);
    for (const [method, path] of [
      ['GET', `/api/panel/operations/${pushId}`],
      ['GET', `/api/panel/operations/${pushId}/items`],
      ['GET', `/api/panel/operations/${pushId}/events`],
      ['POST', `/api/panel/operations/${pushId}/confirm`],
      ['POST', `/api/panel/operations/${pushId}/cancel`],
    ] as const) {
      const res = await api(method, path, tokenB);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    const undo = await api('POST', '/api/panel/operations', tokenB, { kind: 'undo', undoOf: pushId });
    expect(undo.status).toBe(404);
    expect((await api<OperationsView>('GET', '/api/panel/operations', tokenB)).body).toMatchObject({ active: null, history: [], lastCompleted: { push: null } });
  });
});

describe('a preview seen after a reload', () => {
  it('lists a preview waiting on HighLevel as the active operation, with who, since when, why and until when, and when it expires, for every panel of the location only', async () => {
    const token = await signIn(agencyA.adminId, A);
    // HighLevel answers the preview's first read with a 429 asking for an hour: on the test's clock it waits.
    await control(t.highlevelUrl, 'POST', '/faults', { path: '/contacts/search', locationId: A, status: 429, headers: { 'retry-after': '3600' }, times: 1 });
    const started = await api<OperationView>('POST', '/api/panel/operations', token, { kind: 'push' });
    expect(started.status).toBe(202);
    const id = started.body.id;
    try {
      // A reload: a new session reads the list, as the panel does first.
      const reloaded = await signIn(agencyA.adminId, A);
      const list = async (tok: string) => (await api<OperationsView>('GET', '/api/panel/operations', tok)).body;
      await until(async () => (await list(reloaded)).active?.progress?.waitingFor === 'rate_limited', 'the wait on the listed preview');
      const { active, history } = await list(reloaded);
      const createdAt = Date.parse(active!.createdAt);
      expect(active).toMatchObject({
        id, kind: 'push', status: 'previewing', requestedBy: { id: agencyA.adminId, name: 'Ada Admin' }, preview: null,
        progress: { waitingFor: 'rate_limited', waitingUntil: new Date(createdAt + 3600_000).toISOString() },
        expiresAt: new Date(createdAt + 15 * 60_000).toISOString(),
      });
      // Not a run: History keeps to runs.
      expect(history.map((h) => h.id)).not.toContain(id);
      // A second admin's panel and a plain user's see it too (only admins may act on it); another location does not.
      const other = await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
        companyId: agencyA.companyId, firstName: 'Sam', lastName: 'Second', email: 'sam.second@alpha.example', type: 'account', role: 'admin', locationIds: [A],
      });
      const second = await signIn(other.id, A);
      expect((await list(second)).active).toMatchObject({ id, status: 'previewing' });
      expect(await list(await signIn(plainUserA, A))).toMatchObject({ active: { id, requestedBy: { name: 'Ada Admin' } }, canRun: false });
      expect((await list(await signIn(agencyB.adminId, B))).active).toBeNull();
      // Reattached: its stream says what it is now; the second admin cancels it, and nothing is active.
      const { views } = await stream(id, second, undefined, () => true);
      expect(views[0]).toMatchObject({ id, status: 'previewing', expiresAt: active!.expiresAt });
      expect((await api<OperationView>('POST', `/api/panel/operations/${id}/cancel`, second)).body).toMatchObject({ status: 'discarded', expiresAt: null });
      expect((await list(reloaded)).active).toBeNull();
    } finally {
      // Whatever happened: nothing left waiting, and past the hour the 429 asked for, so the
      // location's budget lets the next tests read at once.
      await api('POST', `/api/panel/operations/${id}/cancel`, token);
      clock.advance(3600_000 + 1);
    }
  });

  it('lists a preview ready for confirmation until it expires', async () => {
    const token = await signIn(agencyA.adminId, A);
    const shown = await previewed(token, { kind: 'push' });
    const expiresAt = new Date(Date.parse(shown.createdAt) + 15 * 60_000).toISOString();
    expect(shown.expiresAt).toBe(expiresAt);
    const reloaded = await signIn(agencyA.adminId, A);
    expect((await api<OperationsView>('GET', '/api/panel/operations', reloaded)).body.active).toMatchObject({ id: shown.id, status: 'previewed', expiresAt });
    // Past its time the sweep drops it: nothing is listed as active any more.
    clock.advance(15 * 60_000 + 1);
    await t.services.operations.sweep();
    const after = await signIn(agencyA.adminId, A);
    expect((await api<OperationsView>('GET', '/api/panel/operations', after)).body.active).toBeNull();
    expect((await api<OperationView>('GET', `/api/panel/operations/${shown.id}`, after)).body).toMatchObject({ status: 'discarded', expiresAt: null });
  });
});

describe('skipped records', () => {
  /** A completed push of `n` records (see `skipping`) by the admin of `location`. */
  async function pushWithSkips(adminId: string, location: string, n: number): Promise<string> {
    const token = await signIn(adminId, location);
    skipping = n;
    try {
      const run = await previewed(token, { kind: 'push' });
      expect((await api('POST', `/api/panel/operations/${run.id}/confirm`, token)).status).toBe(200);
      expect((await stream(run.id, token)).views.at(-1)!.status).toBe('completed');
      return run.id;
    } finally {
      skipping = undefined;
    }
  }

  it('lists only the skipped records of the run, each with its reason, in pages, of the session’s location only', async () => {
    const inA = await pushWithSkips(agencyA.adminId, A, 160);
    const inB = await pushWithSkips(agencyB.adminId, B, 10);
    const token = await signIn(agencyA.adminId, A);
    const run = (await api<OperationView>('GET', `/api/panel/operations/${inA}`, token)).body;
    expect(run.progress!.counts.highlevel).toMatchObject({ skipped: 54, unchanged: 53, failed: 53 });
    // The finished run keeps its reasons grouped (the largest first; a group of one names its record),
    // for the panel to say why at a glance: 53 failed alike, 54 skipped each for its own reason.
    expect(run.progress!.reasons).toEqual({
      failed: [{ reason: 'HighLevel refused the phone number', count: 53, entity: 'contact', label: null }],
      skipped: [0, 3, 6].map((i) => ({ reason: duplicateOf(i), count: 1, entity: 'contact', label: `Record ${i} of ${A}` })),
    });

    const page1 = (await api<OperationItemsPage>('GET', `/api/panel/operations/${inA}/items?filter=skipped`, token)).body;
    expect(page1.items).toHaveLength(50);
    expect(page1.nextCursor).not.toBeNull();
    const page2 = (await api<OperationItemsPage>('GET', `/api/panel/operations/${inA}/items?filter=skipped&cursor=${page1.nextCursor}`, token)).body;
    expect(page2.nextCursor).toBeNull();
    const skipped = [...page1.items, ...page2.items];
    const expected = Array.from({ length: 160 }, (_, i) => i).filter((i) => i % 3 === 0);
    expect(skipped.map((i) => i.label)).toEqual(expected.map((i) => `Record ${i} of ${A}`));
    expect(skipped.every((i) => i.action === 'skipped')).toBe(true);
    expect(skipped[1]).toMatchObject({ key: 's:3', side: 'highlevel', reason: duplicateOf(3) });
    // Another run of the location (none skipped) lists none.
    expect((await api<OperationItemsPage>('GET', `/api/panel/operations/${pushId}/items?filter=skipped`, token)).body).toEqual({ items: [], nextCursor: null });

    // Each location reads its own run's skipped records, never the other's.
    const tokenB = await signIn(agencyB.adminId, B);
    const inBItems = (await api<OperationItemsPage>('GET', `/api/panel/operations/${inB}/items?filter=skipped`, tokenB)).body;
    expect(inBItems.items.map((i) => i.label)).toEqual([0, 3, 6, 9].map((i) => `Record ${i} of ${B}`));
    for (const [id, tok] of [[inA, tokenB], [inB, token]] as const) {
      const res = await api('GET', `/api/panel/operations/${id}/items?filter=skipped`, tok);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }

    for (const query of ['filter=Skipped', 'filter=skipped,failed', 'filter=unchanged', 'filter=skipped&filter=failed']) {
      const res = await api('GET', `/api/panel/operations/${inA}/items?${query}`, token);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });
});

describe('an open stream of a user who loses access', () => {
  /** Follows a shown preview's stream; resolves with what it sent once the server ends it. */
  async function following(token: string): Promise<{ id: string; ended: ReturnType<typeof stream> }> {
    const shown = await previewed(token, { kind: 'push' });
    let listening = false;
    const ended = stream(shown.id, token, () => (listening = true));
    await until(() => listening, 'the stream to send the shown preview');
    return { id: shown.id, ended };
  }

  it('ends at its next event once HighLevel deactivated the user, as their other requests are refused', async () => {
    const user = await control<{ id: string }>(t.highlevelUrl, 'POST', '/users', {
      companyId: agencyA.companyId, firstName: 'Lee', lastName: 'Leaving', email: 'lee.leaving@alpha.example', type: 'account', role: 'admin', locationIds: [A],
    });
    const token = await signIn(user.id, A);
    const { id, ended } = await following(token);
    // Tandem learns of the deactivation (the next listing of the location's users).
    upsertHighLevelUsers(t.db, A, [{ id: user.id, email: 'lee.leaving@alpha.example', name: 'Lee Leaving', active: false, deleted: false, role: 'admin' }], clock.now());
    expect((await api('GET', `/api/panel/operations/${id}`, token)).body.error.code).toBe('user_inactive');
    // Another admin closes the preview: the stream ends without telling the deactivated user.
    const other = await signIn(agencyA.adminId, A);
    expect((await api<OperationView>('POST', `/api/panel/operations/${id}/cancel`, other)).body.status).toBe('discarded');
    expect((await ended).views.map((v) => v.status)).toEqual(['previewed']);
  });

  it('ends at its next event once its session has expired', async () => {
    const token = await signIn(agencyA.adminId, A);
    // The preview is opened late in the session, so the session ends before the preview does.
    clock.advance(SESSION_TTL_MS - 5 * 60_000);
    const { id, ended } = await following(token);
    clock.advance(5 * 60_000);
    expect((await api('GET', `/api/panel/operations/${id}`, token)).status).toBe(401);
    const fresh = await signIn(agencyA.adminId, A);
    expect((await api<OperationView>('POST', `/api/panel/operations/${id}/cancel`, fresh)).body.status).toBe('discarded');
    expect((await ended).views.map((v) => v.status)).toEqual(['previewed']);
  });
});

describe('shutting down', () => {
  it('ends the open event streams, so a watched run does not hold the server’s close', async () => {
    const token = await signIn(agencyA.adminId, A);
    const run = await previewed(token, { kind: 'push' });
    holdRun();
    await api('POST', `/api/panel/operations/${run.id}/confirm`, token);
    await until(() => hold?.reached, 'the run to start');
    let seen = false;
    const watching = stream(run.id, token, () => (seen = true));
    await until(() => seen, 'the stream to show the run');
    const closing = t.close();
    // The stream ends while the run is still held mid-way (not resting).
    const { views } = await watching;
    expect(views.at(-1)!.status).toBe('running');
    hold!.release();
    await closing;
  });
});
