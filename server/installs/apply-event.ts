// What each stored webhook event means: INSTALL and UNINSTALL keep installations true; contact
// events are queued for their location's sync loop (which applies them in order, server/sync/);
// a LocationUpdate of a location paused by HighLevel asks HighLevel at once whether it is active
// again; everything else is marked ignored, not lost.
import type { Db } from '../../db/client.ts';
import { getInstallation, installationStatus, installationsOfCompany } from '../../db/installations.ts';
import type { InboxEvent, NewInboxEvent } from '../../db/webhook-inbox.ts';
import { CONTACT_EVENT_TYPES } from '../highlevel/contact-mapping.ts';
import { installEventSchema, locationUpdateSchema, uninstallEventSchema } from '../highlevel/webhook-events.ts';
import type { EventHandler, EventOutcome } from './inbox-processor.ts';
import type { Installs } from './installs.ts';

/** The sync loop, as far as the inbox is concerned: `wake` runs the location's pass soon. */
export interface SyncHook {
  db: Db;
  wake(locationId?: string): void;
  /** HighLevel changed the location: one paused by HighLevel is asked at once whether it is active again. */
  locationChanged?(locationId: string): void;
  /** HighLevel's users changed: list them again on the location's next pass (owners pair by email). */
  usersChanged?(locationId: string): void;
}

const CONTACT_EVENTS: ReadonlySet<string> = new Set(CONTACT_EVENT_TYPES);
const USER_EVENTS: ReadonlySet<string> = new Set(['UserCreate', 'UserUpdate', 'UserDelete']);


/**
 * The decision the handler below makes for a contact event, taken when the event is stored (the
 * webhook receiver's inbox writer): a contact event of an installed location goes straight to its
 * loop. Any other event, including a contact event whose location is not installed yet, waits for
 * the inbox processor, which decides again when it applies it.
 */
export function queuesForLoop(db: Db): (event: Pick<NewInboxEvent, 'type' | 'locationId'>) => boolean {
  return (event) => {
    if (!CONTACT_EVENTS.has(event.type) || !event.locationId) return false;
    const status = installationStatus(db, event.locationId);
    return status !== undefined && status !== 'uninstalled';
  };
}

export function eventHandler(installs: Installs, sync?: SyncHook): EventHandler {
  return async (event: InboxEvent): Promise<EventOutcome> => {
    if (sync && CONTACT_EVENTS.has(event.type)) {
      // Queued, not applied here: the location's loop applies its events in order, one pass at a time.
      if (!queuesForLoop(sync.db)(event)) return { outcome: 'ignored', detail: 'location not installed' };
      sync.wake(event.locationId!);
      return { outcome: 'queued', detail: 'handed to the location\'s sync loop' };
    }
    if (sync?.usersChanged && USER_EVENTS.has(event.type)) {
      // A location user's event names its location; an agency user's, its company (every location).
      const locations = event.locationId
        ? [event.locationId]
        : event.companyId
          ? installationsOfCompany(sync.db, event.companyId).map((i) => i.locationId)
          : [];
      const installed = locations.filter((id) => getInstallation(sync.db, id)?.status === 'active');
      for (const id of installed) sync.usersChanged(id);
      return installed.length
        ? { outcome: 'applied', detail: 'users are listed again on the next sync pass' }
        : { outcome: 'ignored', detail: 'no active installation for this user' };
    }
    let body: unknown;
    try {
      body = JSON.parse(event.body);
    } catch {
      return { outcome: 'ignored', detail: 'body is not JSON' };
    }
    switch (event.type) {
      case 'INSTALL': {
        const parsed = installEventSchema.safeParse(body);
        if (!parsed.success) return { outcome: 'ignored', detail: 'INSTALL body has an unexpected shape' };
        const outcome = await installs.onInstall(parsed.data, event.receivedAt);
        // A new installation starts its loop (its first pass imports HighLevel's contacts).
        if (outcome.outcome === 'applied') sync?.wake(parsed.data.locationId);
        return outcome;
      }
      case 'UNINSTALL': {
        const parsed = uninstallEventSchema.safeParse(body);
        if (!parsed.success) return { outcome: 'ignored', detail: 'UNINSTALL body has an unexpected shape' };
        return installs.onUninstall(parsed.data);
      }
      case 'LocationUpdate': {
        if (!sync?.locationChanged) return { outcome: 'ignored', detail: 'LocationUpdate is used only by the sync loop' };
        const parsed = locationUpdateSchema.safeParse(body);
        if (!parsed.success) return { outcome: 'ignored', detail: 'LocationUpdate body has an unexpected shape' };
        const installation = getInstallation(sync.db, parsed.data.id);
        if (installation?.status !== 'paused' || (parsed.data.companyId && parsed.data.companyId !== installation.companyId)) {
          return { outcome: 'ignored', detail: 'not a location Tandem holds paused' };
        }
        // Reactivated, perhaps: the paused location is asked now rather than at its next probe.
        sync.locationChanged(parsed.data.id);
        return { outcome: 'applied', detail: 'paused location: HighLevel is asked now whether it is active again' };
      }
      default:
        return { outcome: 'ignored', detail: `${event.type} is not used by Tandem` };
    }
  };
}
