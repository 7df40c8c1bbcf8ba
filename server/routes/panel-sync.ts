// The panel's Sync tab API: the location's sync settings, the status strip and the recent changes
// to settings; admins save settings and pause or resume. The tenant is the session's location only.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { DIRECTIONS, type Direction } from '../../db/schema.ts';
import { getSyncSettings, settingsHistory, updateSyncSettings, type SyncSettings, type SyncSettingsPatch } from '../../db/sync-settings.ts';
import { syncStatus, type SyncStatus } from '../../db/sync-status.ts';
import { getContact } from '../../db/contacts.ts';
import { contactLabel } from '../sync/contact-model.ts';
import { requireAdmin, type PanelSession } from '../auth/session.ts';
import { tenant } from './tenant.ts';

export const HISTORY_LIMIT = 20;

const settingsBody = z.strictObject({
  creationDirection: z.enum(DIRECTIONS),
  updateDirection: z.enum(DIRECTIONS),
});

type Iso = string;

export interface SyncSettingsView {
  creationDirection: Direction;
  updateDirection: Direction;
  paused: boolean;
  updatedAt: Iso | null;
}

export interface SyncStatusView {
  paused: boolean;
  installation: SyncStatus['installation'];
  pendingOutbound: number;
  /**
   * Of pendingOutbound, the contacts not in HighLevel yet (held while Contact creation is Inbound)
   * and the edits of contacts already there (held while Contact update is Inbound): the panel says
   * which setting holds what waits. Deletions, never held, are in neither.
   */
  pendingOutboundNew: number;
  pendingOutboundEdits: number;
  failedOutbound: number;
  pendingInbound: number;
  lastInboundAt: Iso | null;
  lastOutboundAt: Iso | null;
  lastError: { message: string; at: Iso } | null;
  /** `contact`: the refused contact's name (or email, phone), for the panel to say whose change it was. */
  lastFailure: { message: string; at: Iso; contact: string } | null;
  /** Changes waiting to be tried again after a passing failure; `contact`: the one that failed last. */
  retrying: { count: number; message: string; nextAttemptAt: Iso; contact: string } | null;
}

export interface SettingsChangeView {
  id: number;
  setting: string;
  oldValue: string | null;
  newValue: string;
  userId: string;
  userName: string | null;
  at: Iso;
}

export interface SyncView {
  settings: SyncSettingsView;
  status: SyncStatusView;
  history: SettingsChangeView[];
  /** Admins may change settings and pause; plain users see the same, read-only. */
  canEdit: boolean;
}

export interface PanelSyncDeps {
  db: Db;
  clock: Clock;
  /** Tells the location's sync loop to look now (new settings, resume); absent when no loop runs. */
  wake?: (locationId: string) => void;
}

export function registerPanelSyncRoutes(app: FastifyInstance, deps: PanelSyncDeps): void {
  const { db, clock } = deps;
  const wake = (locationId: string) => {
    try {
      deps.wake?.(locationId);
    } catch (err) {
      // The change is saved; the loop picks it up on its next pass anyway.
      app.log.warn({ err, locationId }, 'could not wake the sync loop');
    }
  };

  const view = (session: PanelSession): SyncView => ({
    settings: settingsView(getSyncSettings(db, session.locationId)),
    status: statusView(db, session.locationId, syncStatus(db, session.locationId)),
    history: settingsHistory(db, session.locationId, HISTORY_LIMIT).map((c) => ({
      id: c.id,
      setting: c.setting,
      oldValue: c.oldValue,
      newValue: c.newValue,
      userId: c.userId,
      userName: c.userName,
      at: iso(c.at),
    })),
    canEdit: session.role === 'admin',
  });

  const change = (session: PanelSession, patch: SyncSettingsPatch): SyncSettings => {
    requireAdmin(session);
    const saved = updateSyncSettings(db, {
      locationId: session.locationId,
      patch,
      user: { id: session.userId, name: session.name },
      now: clock.now(),
    });
    wake(session.locationId);
    return saved;
  };

  app.get('/api/panel/sync', { ...tenant('session') }, async (req, reply): Promise<SyncView> => {
    const { session } = await app.panelSessions.authenticate(req);
    reply.header('cache-control', 'no-store');
    return view(session);
  });

  app.put('/api/panel/sync/settings', { ...tenant('session'), bodyLimit: 1024 }, async (req, reply): Promise<SyncSettingsView> => {
    const { session } = await app.panelSessions.authenticate(req);
    requireAdmin(session);
    const body = settingsBody.safeParse(req.body);
    if (!body.success) {
      throw new AppError(400, 'invalid_request', `Invalid settings: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    }
    reply.header('cache-control', 'no-store');
    return settingsView(change(session, body.data));
  });

  // Pause and resume take no body; the answer is the whole tab, so the panel redraws from it.
  for (const [path, paused] of [
    ['/api/panel/sync/pause', true],
    ['/api/panel/sync/resume', false],
  ] as const) {
    app.post(path, { ...tenant('session'), bodyLimit: 1024 }, async (req, reply): Promise<SyncView> => {
      const { session } = await app.panelSessions.authenticate(req);
      change(session, { paused });
      reply.header('cache-control', 'no-store');
      return view(session);
    });
  }
}

function iso(ms: number): Iso;
function iso(ms: number | null): Iso | null;
function iso(ms: number | null): Iso | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function settingsView(s: SyncSettings): SyncSettingsView {
  return { creationDirection: s.creationDirection, updateDirection: s.updateDirection, paused: s.paused, updatedAt: iso(s.updatedAt) };
}

function statusView(db: Db, locationId: string, s: SyncStatus): SyncStatusView {
  const refused = s.lastFailure ? getContact(db, locationId, s.lastFailure.contactId) : undefined;
  const retried = s.retrying ? getContact(db, locationId, s.retrying.contactId) : undefined;
  return {
    paused: s.paused,
    installation: s.installation,
    pendingOutbound: s.pendingOutbound,
    pendingOutboundNew: s.pendingOutboundNew,
    pendingOutboundEdits: s.pendingOutboundEdits,
    failedOutbound: s.failedOutbound,
    pendingInbound: s.pendingInbound,
    lastInboundAt: iso(s.lastInboundAt),
    lastOutboundAt: iso(s.lastOutboundAt),
    lastError: s.lastError ? { message: s.lastError.message, at: iso(s.lastError.at) } : null,
    lastFailure: s.lastFailure
      ? { message: s.lastFailure.message, at: iso(s.lastFailure.at), contact: refused ? contactLabel(refused.fields, 'an unnamed contact') : 'a contact no longer in Tandem' }
      : null,
    retrying: s.retrying
      ? {
          count: s.retrying.count,
          message: s.retrying.message,
          nextAttemptAt: iso(s.retrying.nextAttemptAt)!,
          contact: retried ? contactLabel(retried.fields, 'an unnamed contact') : 'a contact no longer in Tandem',
        }
      : null,
  };
}
