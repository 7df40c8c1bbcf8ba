// The panel's Sync tab API: the location's sync settings, the status strip and the recent changes
// to settings; admins save settings and pause or resume. A save names only the settings the admin
// changed and the revision its draft began from, and is refused (409) rather than overwrite a
// change another admin made to one of them since. Before a save that turns a setting Bi-directional,
// the panel asks what it would send to HighLevel at once (the preview), and the save that confirms
// it carries the preview's fingerprint: refused (409) when saving would send anything else. The
// tenant is the session's location only.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Db } from '../../db/client.ts';
import { transaction } from '../../db/prepared.ts';
import { DIRECTIONS, type Direction } from '../../db/schema.ts';
import { getSyncSettings, settingsChangedSince, settingsHistory, settingsRevision, updateSyncSettings, type SyncSettings, type SyncSettingsPatch } from '../../db/sync-settings.ts';
import { syncStatus, type SyncStatus } from '../../db/sync-status.ts';
import { getContact } from '../../db/contacts.ts';
import { customFieldList } from '../../db/custom-fields.ts';
import { contactLabel } from '../sync/contact-model.ts';
import { releaseFingerprint, releasePreview, type ReleasePreview } from '../sync/release-preview.ts';
import { requireAdmin, type PanelSession } from '../auth/session.ts';
import { tenant } from './tenant.ts';

export const HISTORY_LIMIT = 20;

/** The settings the Sync tab's form saves (pause and resume have their own routes). */
export const FORM_SETTINGS = ['creationDirection', 'updateDirection'] as const;
export type FormSetting = (typeof FORM_SETTINGS)[number];

/**
 * A save carries only the settings the admin changed in the draft, and the revision the draft
 * began from: a form's untouched setting sent back as it was read would undo another admin's
 * change made meanwhile (QA: a stale draft reverted one).
 */
const settingsBody = z
  .strictObject({
    creationDirection: z.enum(DIRECTIONS).optional(),
    updateDirection: z.enum(DIRECTIONS).optional(),
    /** `settings.revision` when the draft began: a change of a sent setting after it is a conflict. */
    revision: z.number().int().nonnegative(),
    /**
     * The fingerprint of the preview the admin confirmed: the save goes through only if it would
     * send exactly that. Absent: no preview was shown (the save releases nothing), no such check.
     */
    fingerprint: z.string().regex(/^[0-9a-f]{64}$/, 'must be the fingerprint of a preview, as the preview gave it').optional(),
  })
  .refine((b) => FORM_SETTINGS.some((k) => b[k] !== undefined), { message: 'name at least one setting to change', path: [] });

/** The settings as a save would leave them: both, whatever the draft changes. */
const previewQuery = z.strictObject({
  creationDirection: z.enum(DIRECTIONS),
  updateDirection: z.enum(DIRECTIONS),
});

type Iso = string;

export interface SyncSettingsView {
  creationDirection: Direction;
  updateDirection: Direction;
  paused: boolean;
  updatedAt: Iso | null;
  /**
   * The latest settings change's id (0 before any): a draft remembers it, and its save is refused
   * when a setting it changes was changed again after it.
   */
  revision: number;
}

/** A setting a save changes that someone else changed after its draft began. */
interface SettingsConflict {
  setting: FormSetting;
  /** Its value now, which the save would overwrite. */
  current: Direction;
  /** Who changed it last (null: a change with no name recorded). */
  userName: string | null;
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
  /** Deletions HighLevel refused of contacts archived in Tandem; `contact`: the latest one's name. */
  refusedDeletion: { count: number; message: string; at: Iso; contact: string } | null;
  /** Changes waiting to be tried again after a passing failure; `contact`: the one that failed last. */
  retrying: { count: number; message: string; nextAttemptAt: Iso; contact: string } | null;
  /** Why HighLevel's custom fields could not be listed (a scope the install lacks); null when they could. */
  customFieldsProblem: { message: string; at: Iso; refused: boolean } | null;
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

/**
 * What saving the queried settings would send to HighLevel at once: what the saved settings hold
 * back and the queried ones release (nothing when they release nothing).
 */
export interface ReleasePreviewView extends ReleasePreview {
  /** The saved settings the preview was made from; the save itself still checks its draft's revision. */
  settings: SyncSettingsView;
  /** The names of the custom fields the samples change (`customFields.<id>` → "Lead score"), as HighLevel last listed them. */
  fieldNames: Record<string, string>;
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
    settings: settingsView(db, getSyncSettings(db, session.locationId)),
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

  /** `check`: runs in the save's transaction first, on the settings as they are; a throw saves nothing. */
  const change = (session: PanelSession, patch: SyncSettingsPatch, check?: (current: SyncSettings) => void): SyncSettings => {
    requireAdmin(session);
    const saved = updateSyncSettings(db, {
      locationId: session.locationId,
      patch,
      user: { id: session.userId, name: session.name },
      now: clock.now(),
      ...(check ? { check } : {}),
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
    const { revision, fingerprint, ...patch } = body.data;
    // The checks run in the save's own transaction (synchronous, and holding the write lock), so
    // nothing they read changes before the write: no other request, pass of the sync loop or
    // process slips in. A setting overtaken is told first: it is the admin's question to answer.
    const saved = change(session, patch, (current) => {
      const overtaken = conflicts(db, session.locationId, patch, revision);
      if (overtaken.length > 0) throw new AppError(409, 'settings_changed', conflictMessage(overtaken));
      if (fingerprint !== undefined && releaseFingerprint(db, session.locationId, current, { ...pick(current), ...patch }) !== fingerprint) {
        throw new AppError(409, 'release_changed', RELEASE_CHANGED);
      }
    });
    reply.header('cache-control', 'no-store');
    return settingsView(db, saved);
  });

  app.get('/api/panel/sync/settings/preview', { ...tenant('session') }, async (req, reply): Promise<ReleasePreviewView> => {
    const { session } = await app.panelSessions.authenticate(req);
    requireAdmin(session);
    const query = previewQuery.safeParse(req.query ?? {});
    if (!query.success) throw invalidPreview(query.error);
    // One transaction: the counts, the sample and the fingerprint describe one moment.
    const answer = transaction(db, (): ReleasePreviewView => {
      const saved = getSyncSettings(db, session.locationId);
      const preview = releasePreview(db, session.locationId, saved, query.data);
      return { ...preview, settings: settingsView(db, saved), fieldNames: fieldNamesOf(db, session.locationId, preview) };
    });
    reply.header('cache-control', 'no-store');
    return answer;
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

/**
 * A preview's query refused: what is wrong with the settings named first, unknown parameters only
 * once they are right, so that one mistake is told at a time and the same way whatever else the
 * query carries.
 */
function invalidPreview(error: z.ZodError): AppError {
  const settings = error.issues.filter((i) => i.code !== 'unrecognized_keys');
  const unknown = error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
  const what = settings.length ? settings.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ') : `unknown parameters: ${unknown.join(', ')}`;
  return new AppError(400, 'invalid_request', `Invalid preview request: ${what}. Name both settings (creationDirection and updateDirection) and nothing else.`);
}

/** The names of the custom fields `preview`'s samples change, from the location's listed definitions. */
function fieldNamesOf(db: Db, locationId: string, preview: ReleasePreview): Record<string, string> {
  const fields = new Set(preview.updated.samples.flatMap((s) => s.changes.map((c) => c.field)).filter((f) => f.startsWith('customFields.')));
  if (!fields.size) return {};
  const names: Record<string, string> = {};
  for (const d of customFieldList(db, locationId).definitions) if (fields.has(`customFields.${d.id}`)) names[`customFields.${d.id}`] = d.name;
  return names;
}

function settingsView(db: Db, s: SyncSettings): SyncSettingsView {
  return {
    creationDirection: s.creationDirection,
    updateDirection: s.updateDirection,
    paused: s.paused,
    updatedAt: iso(s.updatedAt),
    revision: settingsRevision(db, s.locationId),
  };
}

/**
 * The settings of `patch` that would overwrite a value someone set after `revision`: changed
 * (audited) since, and the patch's value is not what it is now. A setting set back and forth
 * meanwhile counts too (another admin decided it after the draft began); one now at the patch's
 * value does not (nothing would be overwritten).
 */
function conflicts(db: Db, locationId: string, patch: Partial<Record<FormSetting, Direction>>, revision: number): SettingsConflict[] {
  const current = getSyncSettings(db, locationId);
  const since = settingsChangedSince(db, locationId, revision);
  const found: SettingsConflict[] = [];
  for (const setting of FORM_SETTINGS) {
    const value = patch[setting];
    if (value === undefined || value === current[setting]) continue;
    // The latest change of it since the draft began, if any: who set what is there now.
    const change = since.findLast((c) => c.setting === setting);
    if (change) found.push({ setting, current: current[setting], userName: change.userName });
  }
  return found;
}

/** The form's settings of `s` (the directions a release preview compares). */
function pick(s: SyncSettings): Record<FormSetting, Direction> {
  return { creationDirection: s.creationDirection, updateDirection: s.updateDirection };
}

const RELEASE_CHANGED =
  'What saving sends to HighLevel changed since it was shown: changes were held or sent meanwhile, or the settings changed. Nothing was saved. Check what it sends now, then save again.';

const SETTING_LABEL: Record<FormSetting, string> = { creationDirection: 'Contact creation', updateDirection: 'Contact update' };
const DIRECTION_LABEL: Record<Direction, string> = { bidirectional: 'Bi-directional', inbound: 'Inbound' };

/** "Contact update was changed by Ada Admin since you began editing; it is now Inbound. …" */
function conflictMessage(found: SettingsConflict[]): string {
  const parts = found.map((c) => `${SETTING_LABEL[c.setting]} was changed by ${c.userName ?? 'another admin'} since you began editing; it is now ${DIRECTION_LABEL[c.current]}.`);
  return `${parts.join(' ')} Nothing was saved. Review the change, then save again to replace it with yours.`;
}

function statusView(db: Db, locationId: string, s: SyncStatus): SyncStatusView {
  // The contact a notice is about, by name (or email, phone); never by an id the admin never sees.
  const whose = (contactId: string) => {
    const contact = getContact(db, locationId, contactId);
    return contact ? contactLabel(contact.fields, 'an unnamed contact') : 'a contact no longer in Tandem';
  };
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
    lastFailure: s.lastFailure ? { message: s.lastFailure.message, at: iso(s.lastFailure.at), contact: whose(s.lastFailure.contactId) } : null,
    refusedDeletion: s.refusedDeletion
      ? { count: s.refusedDeletion.count, message: s.refusedDeletion.message, at: iso(s.refusedDeletion.at)!, contact: whose(s.refusedDeletion.contactId) }
      : null,
    retrying: s.retrying
      ? { count: s.retrying.count, message: s.retrying.message, nextAttemptAt: iso(s.retrying.nextAttemptAt)!, contact: whose(s.retrying.contactId) }
      : null,
    customFieldsProblem: s.customFieldsProblem ? { message: s.customFieldsProblem.message, at: iso(s.customFieldsProblem.at)!, refused: s.customFieldsProblem.refused } : null,
  };
}
