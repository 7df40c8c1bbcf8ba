// Applies a location's queued contact webhooks, in the order they were received, through the one
// apply path (inbound.ts). Webhooks are hints: payloads may be thin, duplicated or out of order,
// so for every contact that is not deleted the loop re-reads it (one GET) and applies the complete
// record — duplicates then read the same version (an echo), and an older event reads the newest.
// Events about one contact in the same batch share one read. A deletion is final in HighLevel
// (ids are never reused), so a ContactDelete needs no read.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../db/client.ts';
import { countInboxAttempt, markInboxProcessed, queuedInboxEvents, type InboxEvent } from '../../db/webhook-inbox.ts';
import type { Clock } from '../clock.ts';
import { fromHighLevel, highLevelContactEventSchema, type OwnerMap } from '../highlevel/contact-mapping.ts';
import { DeferredError, type LocationApi } from '../highlevel/contacts.ts';
import { MAX_ATTEMPTS } from '../installs/inbox-processor.ts';
import { applyRemote, CHANGED_OUTCOMES, type InboundDeps, type RemoteInput } from './inbound.ts';

export interface DrainDeps {
  db: Db;
  clock: Clock;
  api: LocationApi;
  settings: InboundDeps['settings'];
  ownerMap: OwnerMap;
  log?: Logger;
  /** Events per pass at most, so a flood of webhooks cannot starve the pull and the push. */
  maxEvents?: number;
}

export interface DrainResult {
  events: number;
  /** Contacts whose application changed Tandem. */
  changed: number;
  /** HighLevel owners seen without a paired Tandem user. */
  unmatchedOwners: Set<string>;
}

const BATCH = 100;

export async function drainWebhooks(deps: DrainDeps, locationId: string): Promise<DrainResult> {
  const { db, clock, api } = deps;
  const result: DrainResult = { events: 0, changed: 0, unmatchedOwners: new Set() };
  const max = deps.maxEvents ?? 1000;
  while (result.events < max) {
    const batch = queuedInboxEvents(db, locationId, Math.min(BATCH, max - result.events));
    if (batch.length === 0) break;
    for (const [highlevelId, events] of groupByContact(batch, (e, detail) => markInboxProcessed(db, e.webhookId, `ignored: ${detail}`, clock.now()))) {
      try {
        let input: RemoteInput;
        if (events.some((e) => e.type === 'ContactDelete')) input = { deleted: highlevelId };
        else {
          const doc = await api.getContact(highlevelId);
          // Gone since the event was sent: the deletion's own webhook may be late or lost.
          if (!doc) input = { deleted: highlevelId };
          else {
            input = fromHighLevel(doc, deps.ownerMap, { complete: true });
            if (input.unmatchedOwner) result.unmatchedOwners.add(input.unmatchedOwner);
          }
        }
        const outcome = applyRemote({ db, now: clock.now(), settings: deps.settings, log: deps.log }, locationId, input, { complete: true });
        if (CHANGED_OUTCOMES.has(outcome)) result.changed++;
        for (const e of events) markInboxProcessed(db, e.webhookId, `applied: ${outcome}`, clock.now());
        deps.log?.debug({ locationId, highlevelId, outcome, events: events.length }, 'contact webhook applied');
      } catch (err) {
        // Deferred: the events stay queued, untouched, for the pass the supervisor reschedules.
        if (!(err instanceof DeferredError)) failed(db, events, err, clock.now());
        throw err;
      }
      result.events += events.length;
    }
  }
  return result;
}

/** The batch's contact events grouped per contact, in order of each contact's first event. */
function groupByContact(batch: InboxEvent[], ignore: (e: InboxEvent, detail: string) => void): Map<string, InboxEvent[]> {
  const groups = new Map<string, InboxEvent[]>();
  for (const event of batch) {
    let body: unknown;
    try {
      body = JSON.parse(event.body);
    } catch {
      ignore(event, 'body is not JSON');
      continue;
    }
    const parsed = highLevelContactEventSchema.safeParse(body);
    if (!parsed.success) {
      ignore(event, `${event.type} body has an unexpected shape`);
      continue;
    }
    const list = groups.get(parsed.data.id) ?? [];
    list.push(event);
    groups.set(parsed.data.id, list);
  }
  return groups;
}

/** One more failed attempt; events that failed too often are recorded as failed (the next pull repairs them). */
function failed(db: Db, events: InboxEvent[], err: unknown, now: number): void {
  const message = err instanceof Error ? err.message : String(err);
  for (const e of events) {
    if (e.attempts + 1 >= MAX_ATTEMPTS) markInboxProcessed(db, e.webhookId, `failed: ${message}`, now);
    else countInboxAttempt(db, e.webhookId);
  }
}
