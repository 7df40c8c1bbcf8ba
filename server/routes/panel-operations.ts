// The panel's one-time operations API (Push contacts, Pull contacts, Sync users, undo): what ran and
// when, the active operation with its preview and progress, per-record outcomes, and a server-sent
// event stream of one operation. Admins start, confirm and cancel; plain users read. The tenant is
// the session's location only; an operation of another location is a plain 404.
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { customFieldList } from '../../db/custom-fields.ts';
import { activeOperation, lastCompleted, listItems, listOperations, type OperationItemRow, type OperationRow } from '../../db/operations.ts';
import type { OperationKind, OperationStatus } from '../../db/schema.ts';
import { requireAdmin, requireSession } from '../auth/session.ts';
import { OperationRefused, previewExpiresAt, type Operations } from '../sync/operations/runner.ts';
import type { Preview, Progress } from '../sync/operations/types.ts';
import { tenant } from './tenant.ts';

export const OPERATIONS_HISTORY_LIMIT = 20;
export const ITEMS_PAGE_SIZE = 50;
/** Real ms between heartbeat comments on an idle event stream (keeps proxies from closing it). */
export const HEARTBEAT_MS = 15_000;

const startBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.enum(['push', 'pull', 'sync_users']) }),
  z.strictObject({ kind: z.literal('undo'), undoOf: z.string().min(1).max(64) }),
]);
const itemsQuery = z.strictObject({
  cursor: z.string().regex(/^\d{1,12}$/, 'must be a position from the previous page').optional(),
  filter: z.enum(['failed', 'skipped', 'changed']).optional(),
});
const idParams = z.strictObject({ id: z.string().min(1).max(64) });

/** Item actions that changed a record (the "changed" filter). */
const CHANGED_ACTIONS = ['created', 'updated', 'removed', 'added', 'paired', 'repaired', 'unpaired'];

type Iso = string;

export interface OperationView {
  id: string;
  kind: OperationKind;
  undoOf: string | null;
  status: OperationStatus;
  requestedBy: { id: string; name: string | null };
  createdAt: Iso;
  previewedAt: Iso | null;
  confirmedAt: Iso | null;
  finishedAt: Iso | null;
  /**
   * While a preview is being read or waits for confirmation: when Tandem drops it unconfirmed (its
   * time counts from when it was opened, reading included), so a panel that finds it after a reload
   * can say until when it stands. Null otherwise.
   */
  expiresAt: Iso | null;
  cancelRequested: boolean;
  /** As shown in the confirmation dialog (left out of the history list, which keeps the counts). */
  preview: Preview | null;
  /**
   * The names of the custom fields the preview's samples change (`customFields.<id>` → "Lead
   * score"), as HighLevel last listed them; a field it no longer defines has none.
   */
  fieldNames: Record<string, string>;
  /** Live while previewing or running; the final summary (counts per side) once finished. */
  progress: Progress | null;
  error: string | null;
  undoable: boolean;
  undoneBy: string | null;
}

export interface OperationsView {
  lastCompleted: Record<'push' | 'pull' | 'sync_users', Iso | null>;
  active: OperationView | null;
  history: OperationView[];
  /** Admins may start, confirm, cancel and undo; plain users see timestamps and history. */
  canRun: boolean;
}

export interface OperationItemView {
  key: string;
  entity: OperationItemRow['entity'];
  side: OperationItemRow['side'];
  action: string;
  state: OperationItemRow['state'];
  label: string | null;
  reason: string | null;
  contactId: string | null;
  highlevelId: string | null;
  /** The values the run overwrote and those it wrote (field → value). */
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  at: Iso;
}

export interface OperationItemsPage {
  items: OperationItemView[];
  nextCursor: string | null;
}

function iso(ms: number): Iso;
function iso(ms: number | null): Iso | null;
function iso(ms: number | null): Iso | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function parse<T>(json: string | null): T | null {
  return json === null ? null : (JSON.parse(json) as T);
}

/** The field values of an item's before/after, without the ledger base an undo needs. */
function fieldsOf(json: string | null): Record<string, unknown> | null {
  const value = parse<unknown>(json);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (v.fields && typeof v.fields === 'object') {
    const out: Record<string, unknown> = { ...(v.fields as Record<string, unknown>) };
    if (Array.isArray(v.tags) && v.tags.length) out.tags = v.tags;
    return out;
  }
  const { base: _base, ...rest } = v;
  return rest;
}

function invalid(error: z.ZodError): AppError {
  const unknown = error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
  if (unknown.length) return new AppError(400, 'invalid_request', `Unknown properties: ${unknown.join(', ')}.`);
  const first = error.issues[0];
  return new AppError(400, 'invalid_request', first ? `${first.path.join('.') || 'request'}: ${first.message}` : 'Invalid request.');
}

function refused(err: unknown): never {
  if (err instanceof OperationRefused) throw new AppError(err.code === 'not_found' ? 404 : 409, err.code, err.message);
  throw err;
}

/**
 * An operation's stream ends once nothing can change it any more. A shown preview still can: a newer
 * preview (another tab, another admin) replaces it, or it expires, and its dialog must hear that
 * while it offers Confirm.
 */
function finished(status: OperationStatus): boolean {
  return status !== 'previewing' && status !== 'previewed' && status !== 'running';
}

export function registerPanelOperationRoutes(app: FastifyInstance, deps: { db: Db; operations: Operations }): void {
  const { db, operations } = deps;

  /** The names of the custom fields `preview` changes, from the location's listed definitions. */
  const fieldNamesOf = (locationId: string, preview: Preview | null): Record<string, string> => {
    const fields = new Set(preview?.samples.flatMap((s) => s.changes.map((c) => c.field)).filter((f) => f.startsWith('customFields.')));
    if (!fields.size) return {};
    const names: Record<string, string> = {};
    for (const d of customFieldList(db, locationId).definitions) if (fields.has(`customFields.${d.id}`)) names[`customFields.${d.id}`] = d.name;
    return names;
  };

  const view = (row: OperationRow, withPreview = true): OperationView => {
    const preview = withPreview ? parse<Preview>(row.preview) : null;
    return {
      id: row.id,
      kind: row.kind,
      undoOf: row.undoOf,
      status: row.status,
      requestedBy: { id: row.requestedBy, name: row.requestedByName },
      createdAt: iso(row.createdAt),
      previewedAt: iso(row.previewedAt),
      confirmedAt: iso(row.confirmedAt),
      finishedAt: iso(row.finishedAt),
      expiresAt: row.status === 'previewing' || row.status === 'previewed' ? iso(previewExpiresAt(row)) : null,
      cancelRequested: row.cancelRequestedAt !== null,
      preview,
      fieldNames: fieldNamesOf(row.locationId, preview),
      progress: parse<Progress>(row.progress),
      error: row.error,
      undoable: operations.undoable(row),
      undoneBy: row.undoneBy,
    };
  };

  /** The session's operation by id, or a 404 that says nothing about other locations. */
  const find = (locationId: string, params: unknown): OperationRow => {
    const p = idParams.safeParse(params);
    const row = p.success ? operations.get(locationId, p.data.id) : undefined;
    if (!row) throw new AppError(404, 'not_found', 'There is no such operation in this sub-account.');
    return row;
  };

  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store');

  // Open event streams end when Tandem shuts down (the panel opens them again), so a long run
  // being watched never holds the server's close.
  const streams = new Set<() => void>();
  app.addHook('preClose', (done) => {
    for (const close of streams) close();
    done();
  });

  app.get('/api/panel/operations', { ...tenant('session') }, async (req, reply): Promise<OperationsView> => {
    const session = await requireSession(req);
    const last = lastCompleted(db, session.locationId);
    const active = activeOperation(db, session.locationId);
    noStore(reply);
    return {
      lastCompleted: { push: iso(last.push ?? null), pull: iso(last.pull ?? null), sync_users: iso(last.sync_users ?? null) },
      active: active ? view(active) : null,
      history: listOperations(db, session.locationId, OPERATIONS_HISTORY_LIMIT).map((r) => view(r, false)),
      canRun: session.role === 'admin',
    };
  });

  app.post('/api/panel/operations', { ...tenant('session'), bodyLimit: 1024 }, async (req, reply): Promise<OperationView> => {
    const session = await requireSession(req);
    requireAdmin(session, 'run one-time operations');
    const body = startBody.safeParse(req.body);
    if (!body.success) throw invalid(body.error);
    const by = { locationId: session.locationId, userId: session.userId, userName: session.name };
    let row: OperationRow;
    try {
      row = body.data.kind === 'undo' ? operations.preview(by, 'undo', body.data.undoOf) : operations.preview(by, body.data.kind);
    } catch (err) {
      refused(err);
    }
    noStore(reply).code(202);
    return view(operations.get(session.locationId, row.id) ?? row);
  });

  app.get('/api/panel/operations/:id', { ...tenant('session') }, async (req, reply): Promise<OperationView> => {
    const session = await requireSession(req);
    const row = find(session.locationId, req.params);
    noStore(reply);
    return view(row);
  });

  app.get('/api/panel/operations/:id/items', { ...tenant('session') }, async (req, reply): Promise<OperationItemsPage> => {
    const session = await requireSession(req);
    const row = find(session.locationId, req.params);
    const q = itemsQuery.safeParse(req.query ?? {});
    if (!q.success) throw invalid(q.error);
    const actions = q.data.filter === 'changed' ? CHANGED_ACTIONS : q.data.filter ? [q.data.filter] : undefined;
    const rows = listItems(db, row.id, { afterSeq: q.data.cursor ? Number(q.data.cursor) : 0, limit: ITEMS_PAGE_SIZE + 1, ...(actions ? { actions } : {}) });
    const page = rows.slice(0, ITEMS_PAGE_SIZE);
    noStore(reply);
    return {
      items: page.map((i) => ({
        key: i.key,
        entity: i.entity,
        side: i.side,
        action: i.action,
        state: i.state,
        label: i.label,
        reason: i.reason,
        contactId: i.contactId,
        highlevelId: i.highlevelId,
        before: fieldsOf(i.before),
        after: fieldsOf(i.after),
        at: iso(i.at),
      })),
      nextCursor: rows.length > ITEMS_PAGE_SIZE ? String(page[page.length - 1]!.seq) : null,
    };
  });

  for (const action of ['confirm', 'cancel'] as const) {
    app.post(`/api/panel/operations/:id/${action}`, { ...tenant('session'), bodyLimit: 1024 }, async (req, reply): Promise<OperationView> => {
      const session = await requireSession(req);
      requireAdmin(session, 'run one-time operations');
      const row = find(session.locationId, req.params);
      let next: OperationRow;
      try {
        next = action === 'confirm' ? operations.confirm(session.locationId, row.id) : operations.cancel(session.locationId, row.id);
      } catch (err) {
        refused(err);
      }
      noStore(reply);
      return view(next);
    });
  }

  // Server-sent events: the view on every change, a comment every HEARTBEAT_MS, and the end of the
  // stream once the operation is finished (a shown preview's stream stays open until it is
  // confirmed, closed, replaced or expired). The panel reads it with fetch(), since only fetch can send the
  // Bearer header (EventSource cannot).
  // The session is checked again before every event and heartbeat, as every other panel request
  // checks it: the session's end, an uninstall or the user's loss of access in HighLevel ends the
  // stream (checked at its opening only, it kept sending to a user every other request refused,
  // QA). The panel then opens it again, and that request gets the refusal (401 renews the session,
  // a 403 shows why).
  app.get('/api/panel/operations/:id/events', { ...tenant('session') }, async (req, reply) => {
    const session = await requireSession(req);
    const row = find(session.locationId, req.params);
    const stream = new PassThrough();
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      streams.delete(close);
      unsubscribe();
      clearInterval(heartbeat);
      stream.end();
    };
    /** Whether the request's session still holds (its token, installation and user, as at the opening). */
    const allowed = async () => {
      try {
        await requireSession(req);
        return true;
      } catch {
        return false;
      }
    };
    // One write after another, each after its check, so events keep their order.
    let writes = Promise.resolve();
    const write = (text: () => string, then?: () => void) => {
      writes = writes
        .then(async () => {
          if (closed) return;
          if (!(await allowed())) return close();
          if (closed) return;
          stream.write(text());
          then?.();
        })
        .catch((err: unknown) => {
          req.log.error({ err }, 'operation event stream failed');
          close();
        });
    };
    const send = (r: OperationRow) => {
      if (closed) return;
      write(
        () => `event: operation\ndata: ${JSON.stringify(view(r))}\n\n`,
        () => {
          if (finished(r.status)) close();
        },
      );
    };
    streams.add(close);
    const unsubscribe = operations.subscribe(row.id, send);
    const heartbeat = setInterval(() => write(() => ': heartbeat\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    // The response closes when the stream ends or the panel goes away, whichever is first.
    reply.raw.on('close', close);
    stream.write(': connected\n\n');
    // Read after subscribing, so a change between the two is never missed (at worst sent twice).
    send(operations.get(session.locationId, row.id) ?? row);
    reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-accel-buffering', 'no');
    return reply.send(stream);
  });
}
