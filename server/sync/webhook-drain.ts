// Applies a location's queued contact webhooks, in the order they were received, through the one
// apply path (inbound.ts). Webhooks may be thin, duplicated or out of order. A contact webhook
// carries the contact's fields (CONTRACT §5.3), so for a linked contact the loop applies that
// snapshot itself, versioned by the event's timestamp: HighLevel's burst budget (100 requests per
// 10 s) could not pay one GET per event at hundreds of events per second. It re-reads the contact
// (one GET, the complete record) when the snapshot cannot be trusted to say everything: an
// unlinked contact (its timezone, which webhooks never carry, would be created empty), no readable
// timestamp, a field the payload left out that Tandem holds a value for (cleared, or a thin
// payload?), or a change not certainly newer than all the ledger holds (see trustedSnapshot).
// Snapshots older than the ledger's version are stale, and those equal to the ledger echoes,
// without a read. Events about one contact in the same batch collapse to the newest. A deletion is
// final in HighLevel (ids are never reused), so a ContactDelete needs no read. Assumption (not in
// CONTRACT): stamps order changes as their writes. A stamp comes after the write's dateUpdated (the
// emulator's by a millisecond or so, HighLevel's by however long its queue takes), so the next read
// of the same write looks older than the ledger; it is applied all the same (inbound.ts
// isLedgerVersion), and brings the timezone, which no snapshot carries.
// A read HighLevel refuses for that contact alone (refusedForThisContact: e.g. an event naming
// another location's contact) sets its events aside as failed and the drain goes on; a failure
// about the whole location (its token, 429, HighLevel down) ends the pass, which the supervisor
// defers or backs off, the events staying queued.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../db/client.ts';
import { transaction } from '../../db/prepared.ts';
import { countInboxAttempt, markInboxProcessed, queuedInboxEvents, type InboxEvent } from '../../db/webhook-inbox.ts';
import type { Clock } from '../clock.ts';
import { getLinkByRemote, type Link } from '../../db/links.ts';
import {
  fromContactEvent, fromHighLevel, highLevelContactEventSchema, keepLedgerPhone, WEBHOOK_SNAPSHOT_FIELDS,
  type HighLevelContactEvent, type OwnerMap, type RemoteContact,
} from '../highlevel/contact-mapping.ts';
import { DeferredError, type LocationApi } from '../highlevel/contacts.ts';
import { classifyHighLevelError, HighLevelError } from '../highlevel/http.ts';
import { MAX_ATTEMPTS } from '../installs/inbox-processor.ts';
import { fieldEquals } from './contact-model.ts';
import { applyRemote, CHANGED_OUTCOMES, type InboundDeps, type RemoteInput } from './inbound.ts';
import { isEcho } from './merge.ts';
import { nextTurn } from './reconcile.ts';

export interface DrainDeps {
  db: Db;
  clock: Clock;
  api: LocationApi;
  settings: InboundDeps['settings'];
  ownerMap: OwnerMap;
  log?: Logger;
  /** Events per pass at most, so a flood of webhooks cannot starve the pull and the push. */
  maxEvents?: number;
  /**
   * Many new contacts at once (an import in HighLevel): the drain adds the contacts of the
   * ContactCreates it reads that Tandem has no link for to `tally` (kept by the caller across
   * drains, so a drain that throws still counts), and once the tally reaches `threshold` it stops
   * before the batch that reached it and says so (`pullFirst`): a pull reads them 500 a request,
   * the drain one each.
   */
  pullFirst?: { threshold: number; tally: { newContacts: number } };
  /** Only events received by then (clock ms); later ones stay queued for the next pass. */
  receivedUntil?: number;
}

export interface DrainResult {
  events: number;
  /** Contacts whose application changed Tandem. */
  changed: number;
  /** HighLevel owners seen without a paired Tandem user. */
  unmatchedOwners: Set<string>;
  /** Stopped early: a pull should read the new contacts first (DrainDeps.pullFirst). */
  pullFirst?: boolean;
}

const BATCH = 100;
/**
 * Contacts applied from their snapshots (no read, so no wait) before the drain lets the event loop
 * run what waits (webhooks going into the inbox first, see nextTurn): a batch of 100 applied in one
 * go held it for tens of milliseconds. A count, not a time, as everywhere in the loop (a manual
 * clock changes nothing).
 */
export const CONTACTS_PER_TURN = 16;

export async function drainWebhooks(deps: DrainDeps, locationId: string): Promise<DrainResult> {
  const { db, clock, api } = deps;
  const result: DrainResult = { events: 0, changed: 0, unmatchedOwners: new Set() };
  const max = deps.maxEvents ?? 1000;
  let sinceTurn = 0;
  while (result.events < max) {
    const batch = queuedInboxEvents(db, locationId, Math.min(BATCH, max - result.events), deps.receivedUntil);
    if (batch.length === 0) break;
    const groups = groupByContact(batch, (e, detail) => markInboxProcessed(db, e.webhookId, `ignored: ${detail}`, clock.now()));
    if (deps.pullFirst) {
      // Across batches and drains: an import's webhooks keep arriving while they are read one by one.
      deps.pullFirst.tally.newContacts += newContacts(db, locationId, groups);
      if (deps.pullFirst.tally.newContacts >= deps.pullFirst.threshold) return { ...result, pullFirst: true };
    }
    // Contacts whose input is known without a read wait here and are applied together, each with
    // its events' outcomes, in one transaction (one commit for a turn's worth, not two per contact).
    let ready: Ready[] = [];
    const applyReady = () => {
      const batch = ready;
      ready = [];
      applyBatch(deps, locationId, batch, result);
    };
    for (const [highlevelId, events] of groups) {
      let input: RemoteInput | undefined;
      let complete = true;
      let trusted: ReturnType<typeof trustedSnapshot>;
      // The link trustedSnapshot read: still what it was when the contact is applied, since the
      // contacts waiting in `ready` are applied before anything is awaited (applyReady).
      let link: Link | undefined;
      try {
        if (events.some(({ event }) => event.type === 'ContactDelete')) input = { deleted: highlevelId };
        else if ((trusted = trustedSnapshot(db, locationId, events, deps.ownerMap))) {
          ({ snapshot: input, link } = trusted);
          complete = false;
        } else {
          applyReady();
          sinceTurn = 0;
          const doc = await api.getContact(highlevelId);
          // Gone since the event was sent: the deletion's own webhook may be late or lost.
          input = doc ? fromHighLevel(doc, deps.ownerMap, { complete: true }) : { deleted: highlevelId };
        }
      } catch (err) {
        if (refusedForThisContact(err)) {
          // Retrying cannot change HighLevel's answer, and holding the pass for it would hold every
          // other event, pull and push of the location: set aside, seen by operators as failed.
          const now = clock.now();
          for (const { event } of events) markInboxProcessed(db, event.webhookId, `failed: HighLevel refused to read this contact (${err.status} ${err.message})`, now);
          deps.log?.warn({ err, locationId, highlevelId, events: events.length }, 'contact webhook set aside: HighLevel refused to read the contact');
          // Counted: each cost a read, and the pass's cap bounds its requests too.
          result.events += events.length;
          continue;
        }
        try {
          applyReady();
        } finally {
          // Deferred: the events stay queued, untouched, for the pass the supervisor reschedules.
          if (!(err instanceof DeferredError)) failed(db, events.map(({ event }) => event), err, clock.now());
        }
        throw err;
      }
      ready.push({ highlevelId, events, input, complete, link });
      if (++sinceTurn >= CONTACTS_PER_TURN) {
        applyReady();
        sinceTurn = 0;
        await nextTurn();
      }
    }
    applyReady();
  }
  return result;
}

interface Ready {
  highlevelId: string;
  events: ParsedEvent[];
  input: RemoteInput;
  complete: boolean;
  /** Its link as read for the decision, when the snapshot was trusted; read again otherwise. */
  link: Link | undefined;
}

/**
 * Applies contacts whose input is known, in order, in one transaction: each contact (its own
 * savepoint) together with its events' outcomes. A contact whose application throws is rolled back
 * alone and counted as a failed attempt; the ones before it are kept, the ones after it stay queued,
 * and the error is thrown once the transaction has committed.
 */
function applyBatch(deps: DrainDeps, locationId: string, batch: Ready[], result: DrainResult): void {
  if (batch.length === 0) return;
  const { db, clock } = deps;
  let failure: { err: unknown } | undefined;
  transaction(db, () => {
    for (const { highlevelId, events, input, complete, link } of batch) {
      try {
        const outcome = transaction(db, () => {
          const applied = applyRemote({ db, now: clock.now(), settings: deps.settings, log: deps.log }, locationId, input, { complete }, link);
          for (const { event } of events) markInboxProcessed(db, event.webhookId, `applied: ${applied}`, clock.now());
          return applied;
        });
        if ('unmatchedOwner' in input && input.unmatchedOwner) result.unmatchedOwners.add(input.unmatchedOwner);
        if (CHANGED_OUTCOMES.has(outcome)) result.changed++;
        result.events += events.length;
        deps.log?.debug({ locationId, highlevelId, outcome, events: events.length }, 'contact webhook applied');
      } catch (err) {
        failed(db, events.map(({ event }) => event), err, clock.now());
        failure = { err };
        return;
      }
    }
  });
  if (failure) throw failure.err;
}

/** Contacts created in HighLevel (a ContactCreate) that Tandem has no link for. */
function newContacts(db: Db, locationId: string, groups: Map<string, ParsedEvent[]>): number {
  let n = 0;
  for (const [id, events] of groups) {
    if (events.some(({ event }) => event.type === 'ContactCreate') && !getLinkByRemote(db, locationId, id)) n++;
  }
  return n;
}

interface ParsedEvent {
  event: InboxEvent;
  payload: HighLevelContactEvent;
}

/**
 * How far HighLevel's clock (event timestamps) and Tandem's (the ledger's updatedAt) may disagree,
 * lag of the timestamp behind the write included: a snapshot that changes something is applied
 * only when it was stamped this long after the ledger's last write; a closer one is read instead.
 */
const CLOCK_MARGIN_MS = 1000;

/**
 * The newest snapshot of the group when it can stand for the contact's current state without a
 * read (see the header), with the link the decision read; undefined when the contact must be read.
 * A snapshot older than the ledger's version, or equal to what the ledger holds, is returned as
 * is: applyRemote finds it stale or an echo.
 */
function trustedSnapshot(db: Db, locationId: string, events: ParsedEvent[], ownerMap: OwnerMap): { snapshot: RemoteContact; link: Link } | undefined {
  const snapshots = events.map(({ payload }) => fromContactEvent(payload, ownerMap));
  if (snapshots.some((s) => s.dateUpdated === undefined)) return undefined;
  // The newest by version; among equal versions the last received (events of one contact in one
  // batch come in the order they were stored).
  const newest = snapshots.reduce((a, b) => (b.dateUpdated! >= a.dateUpdated! ? b : a));
  const version = newest.dateUpdated!;
  // Two different states with one stamp: which is the later write is not known.
  const sameStamp = snapshots.filter((s) => s.dateUpdated === version && s !== newest);
  if (sameStamp.some((s) => WEBHOOK_SNAPSHOT_FIELDS.some((f) => !fieldEquals(f, s.fields[f] as never, newest.fields[f] as never)))) return undefined;
  const link = getLinkByRemote(db, locationId, newest.id);
  if (!link) return undefined;
  const trusted = { snapshot: newest, link };
  if (link.remoteDeletedAt !== null) return trusted;
  if (WEBHOOK_SNAPSHOT_FIELDS.some((f) => newest.fields[f] === undefined && !fieldEquals(f, undefined, link.base[f]))) return undefined;
  if (link.remoteUpdatedAt !== null && version < link.remoteUpdatedAt) return trusted;
  // As applyRemote compares it: a phone HighLevel holds as it did, without +prefix, is the ledger's number.
  if (isEcho(keepLedgerPhone(newest, link.base).fields, link.base)) return trusted;
  // A change. The ledger's version can lag what it holds (Tandem's tag writes answer without a
  // dateUpdated, so the ledger records them under the version before), hence the second bound: a
  // snapshot older than Tandem's own last write would undo it.
  const newer = (link.remoteUpdatedAt === null || version > link.remoteUpdatedAt) && version > link.updatedAt + CLOCK_MARGIN_MS;
  return newer ? trusted : undefined;
}

/** The batch's contact events grouped per contact, in order of each contact's first event. */
function groupByContact(batch: InboxEvent[], ignore: (e: InboxEvent, detail: string) => void): Map<string, ParsedEvent[]> {
  const groups = new Map<string, ParsedEvent[]>();
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
    list.push({ event, payload: parsed.data });
    groups.set(parsed.data.id, list);
  }
  return groups;
}

/**
 * HighLevel refused to read this one contact, for good: a 4xx about the request, such as the 403
 * "The token does not have access to this location" for a contact of another location, or a 400 or
 * 422 about the id (a contact that is gone is no error: getContact answers null). Not: a 401 (the
 * location's token, or a scope Tandem lacks: every read fails alike), a scope refusal whatever its
 * status, 408, 429, 5xx or no answer (retried), "Location is not active" (classified 'paused'):
 * those concern the whole location.
 */
function refusedForThisContact(err: unknown): err is HighLevelError {
  return (
    err instanceof HighLevelError &&
    err.kind === 'http' &&
    err.status >= 400 &&
    err.status < 500 &&
    err.status !== 401 &&
    !/scope/i.test(err.message) &&
    classifyHighLevelError(err) === 'record'
  );
}

/** One more failed attempt; events that failed too often are recorded as failed (the next pull repairs them). */
function failed(db: Db, events: InboxEvent[], err: unknown, now: number): void {
  const message = err instanceof Error ? err.message : String(err);
  for (const e of events) {
    if (e.attempts + 1 >= MAX_ATTEMPTS) markInboxProcessed(db, e.webhookId, `failed: ${message}`, now);
    else countInboxAttempt(db, e.webhookId);
  }
}
