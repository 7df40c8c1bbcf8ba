// What each stored webhook event means today: INSTALL and UNINSTALL keep installations true;
// everything else waits for contact sync (issue 4) and is marked ignored, not lost.
import type { InboxEvent } from '../../db/webhook-inbox.ts';
import { installEventSchema, uninstallEventSchema } from '../highlevel/webhook-events.ts';
import type { EventHandler, EventOutcome } from './inbox-processor.ts';
import type { Installs } from './installs.ts';

export function eventHandler(installs: Installs): EventHandler {
  return async (event: InboxEvent): Promise<EventOutcome> => {
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
        return installs.onInstall(parsed.data, event.receivedAt);
      }
      case 'UNINSTALL': {
        const parsed = uninstallEventSchema.safeParse(body);
        if (!parsed.success) return { outcome: 'ignored', detail: 'UNINSTALL body has an unexpected shape' };
        return installs.onUninstall(parsed.data);
      }
      default:
        return { outcome: 'ignored', detail: 'contact sync not yet built' };
    }
  };
}
