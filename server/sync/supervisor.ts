// The sync supervisor: one loop per installed, active location, because HighLevel budgets requests
// per app and location. A location's passes never overlap (T17); locations run side by side, so a
// slow or rate-limited one never delays another (T05). A pass:
//   1. re-reads the Sync tab's settings (saved settings apply without a restart; paused → nothing),
//   2. lists HighLevel's users when due (owners travel as owners), and its contact custom fields
//      (what the REST API checks custom field writes against),
//   3. applies the queued contact webhooks (webhook-drain.ts),
//   4. pulls when due (reconcile.ts: incremental, or a full sweep daily and after install),
//   5. pushes Tandem's pending changes (outbound.ts),
//   6. records the outcome in sync_state (latest error in plain words).
// A DeferredError (budget, 429, token backoff) reschedules that location at its retryAt, without
// sleeping; any other error backs off exponentially. Times come from the injected clock; the one
// timer sleeps until the earliest location is due (capped, so new installations are noticed). A
// wake right after a pass waits PASS_GAP_MS of real time, so a stream of webhooks is taken in
// passes of many events.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../db/client.ts';
import { recordCustomFieldsProblem, saveCustomFieldDefinitions } from '../../db/custom-fields.ts';
import { tokenRowState } from '../../db/tokens.ts';
import { ownerPairs, unpairedWhy, upsertHighLevelUsers, userMapFor, type HighLevelOwnerWhy, type TandemOwnerWhy } from '../../db/highlevel-users.ts';
import { getInstallation, installationStatus, listInstallations } from '../../db/installations.ts';
import { activeOperation } from '../../db/operations.ts';
import { enqueueOwnedBy, nextOutboxDueAt, retryOutboxNow } from '../../db/outbox.ts';
import { getSyncSettings } from '../../db/sync-settings.ts';
import { getSyncState, updateSyncState, type UnmatchedOwners } from '../../db/sync-state.ts';
import { ownersOfLiveContacts } from '../../db/contacts.ts';
import type { Clock } from '../clock.ts';
import { createLocationApi, DeferredError, type LocationApi, type LocationTokenSource } from '../highlevel/contacts.ts';
import { HighLevelError } from '../highlevel/http.ts';
import type { HighLevelEndpoints } from '../highlevel/oauth.ts';
import { RateBudget } from '../highlevel/rate-budget.ts';
import { pushPending, type PushMemory } from './outbound.ts';
import { FULL_SWEEP_INTERVAL_MS, PAGE_LIMIT, PULL_INTERVAL_MS, pull, pullDue, sweepDue, type PullMemory } from './reconcile.ts';
import { describeError } from './describe-error.ts';
import { drainWebhooks } from './webhook-drain.ts';

export interface SyncOptions {
  /** Start the loop with the app (default true); tests that drive `runOnce` themselves opt out. */
  start?: boolean;
  pageLimit?: number;
  /** Search pages per pass at most; the rest of a pull continues in the next pass, right away. */
  pagesPerPass?: number;
  pullIntervalMs?: number;
  fullSweepIntervalMs?: number;
  /** How often HighLevel's users are listed again. */
  usersRefreshMs?: number;
  /** How often the location's contact custom fields are listed again. */
  customFieldsRefreshMs?: number;
  /** Real milliseconds the timer sleeps at most (it then looks for new installations). */
  maxSleepMs?: number;
  /** Locations whose passes may run at the same time. */
  maxConcurrent?: number;
  /** Outbox rows a pass pushes at the same time, through the location's one gate. */
  pushConcurrency?: number;
  /** Rate-limit figures until HighLevel's headers say otherwise (tests with a shortened window). */
  budget?: ConstructorParameters<typeof RateBudget>[0];
  /** Real ms kept between a location's passes that a wake asks for (default PASS_GAP_MS). */
  passGapMs?: number;
}

export interface Supervisor {
  start(): void;
  /** Stops scheduling and waits for the passes running now. */
  stop(): Promise<void>;
  /** Something changed for the location (a local write, a webhook, an install): run a pass soon. */
  wake(locationId?: string): void;
  /**
   * HighLevel changed the location (its LocationUpdate webhook): one paused by HighLevel is asked
   * again at once whether it is active, instead of at its next PAUSED_PROBE_MS probe.
   */
  locationChanged(locationId: string): void;
  /** Runs one pass now (after the one running, if any) and resolves when it ends. */
  runOnce(locationId: string): Promise<PassResult>;
  /** HighLevel's users changed (a user webhook): the next pass lists them again, and runs soon. */
  usersChanged(locationId: string): void;
  /**
   * A custom field Tandem does not know was asked for (a REST write): the location's custom fields
   * are listed again by a pass at `at` (default now), which is run then if none is due before.
   */
  customFieldsChanged(locationId: string, at?: number): void;
  /** The location's API behind its one budget gate, for any other HighLevel call about the location. */
  locationApi(locationId: string): LocationApi;
  /**
   * The same gate for background work (one-time operations): it leaves `keepShare` of every burst
   * window to this loop. Also returns the gate's current figures, for estimates.
   */
  backgroundApi(locationId: string, keepShare: number): { api: LocationApi; rate: { max: number; intervalMs: number } };
  /**
   * Locations HighLevel reported inactive ("Location is not active") have no loop; this asks
   * HighLevel again by refreshing their token (the same refresh token works once the location is
   * active again), and a success makes the installation active. Runs from the scheduler at most
   * every PAUSED_PROBE_MS per location; tests call it directly.
   */
  probePausedLocations(): Promise<void>;
}

/** How often a location paused by HighLevel is asked again whether it is active. */
export const PAUSED_PROBE_MS = 15 * 60_000;

export interface PassResult {
  skipped?: 'not_installed' | 'inactive' | 'paused';
  webhookEvents: number;
  pulled: number;
  pushed: number;
  /** More work is ready (a pull in progress, more queued events): the next pass runs at once. */
  more: boolean;
  deferredUntil?: number;
  error?: string;
}

export interface SupervisorDeps {
  db: Db;
  clock: Clock;
  endpoints: HighLevelEndpoints;
  tokens: LocationTokenSource;
  log: Logger;
  options?: SyncOptions;
}

interface LocationLoop {
  locationId: string;
  budget: RateBudget;
  api: LocationApi;
  memory: PullMemory;
  pushMemory: PushMemory;
  /** Clock ms when the next pass is due. */
  nextRunAt: number;
  running?: Promise<PassResult>;
  again: boolean;
  failures: number;
  /** When the last pass failed (not deferred); undefined after one that did not. */
  failedAt?: number;
  /** A deferral's retryAt: a wake does not bring the next pass before it. */
  blockedUntil?: number;
  usersListedAt?: number;
  customFieldsListedAt?: number;
  /**
   * When HighLevel last refused to list them (the token lacks the scope), until a listing succeeds
   * or fails otherwise. In memory: a new process lists them at its first pass anyway.
   */
  customFieldsRefusedAt?: number;
  /** When a listing of the custom fields was asked for (customFieldsChanged), until a pass lists them. */
  customFieldsDueAt?: number;
  /** New contacts read one by one since the last pull run for them (toward BULK_UNKNOWN). */
  newContacts: number;
  /** Clock ms of the last pull run for new contacts (an import in HighLevel under way). */
  bulkPulledAt?: number;
  /** Real time (performance.now) before which a wake does not start the next pass (PASS_GAP_MS). */
  gapUntil?: number;
  /**
   * True until this process has begun its catch-up sweep of the location. While Tandem was not
   * running, HighLevel's webhooks went nowhere (it redelivers only after a 429), and a deletion
   * made then is found by a full sweep alone; the scheduled pull could be minutes away, the daily
   * sweep hours. So each process sweeps every location in full from a first page of its own, at
   * once (after finishing a run the previous process left). Set again when a HighLevel owner
   * gets a paired Tandem user: the contacts it owns came in without an owner, and a sweep gives
   * them theirs.
   */
  catchUp: boolean;
  /**
   * HighLevel owners paired at the last pass. An owner who loses their pairing (deactivated or
   * deleted on either side, unpaired by Sync users) owns contacts no pass may meet for a day, so
   * their loss asks for a sweep (`recountOwners`), which counts every unmatched owner.
   */
  pairedOwners?: Set<string>;
  /** A sweep to count unmatched owners is due: at once, or once a Sync users run has ended. */
  recountOwners?: boolean;
  /** When HighLevel's 429s began holding this location back, until a pass completes. */
  rateLimitedSince?: number;
}

/**
 * How long HighLevel may hold a location back with 429s before the status strip says so: one 429
 * now and then is pacing at work, several minutes of them are something an admin should see.
 */
const RATE_LIMITED_NOTICE_MS = 60_000;

const USERS_REFRESH_MS = 60 * 60_000;
/** HighLevel sends no webhook when a custom field is made or changed: they are listed this often. */
const CUSTOM_FIELDS_REFRESH_MS = 60 * 60_000;
/** A listing that failed for another reason than a refusal is tried again after this. */
const CUSTOM_FIELDS_RETRY_MS = 5 * 60_000;
const FIRST_BACKOFF_MS = 15_000;
/**
 * A location whose passes keep failing is tried at most this far apart (doubling from
 * FIRST_BACKOFF_MS); a webhook or a Tandem write in between brings a pass FIRST_BACKOFF_MS after
 * the last failure. Longer (30 min) kept sync stopped for that long after HighLevel was back (QA).
 */
const MAX_BACKOFF_MS = 5 * 60_000;
/** Webhook events a pass applies at most before it pulls and pushes. */
const EVENTS_PER_PASS = 500;
/**
 * Queued ContactCreates about this many contacts Tandem does not know (or more) are read by a pull
 * first. Below it a read per contact costs about what a pull would and brings each contact alone.
 */
export const BULK_UNKNOWN = 10;
/**
 * After such a pull the location is importing for this long: its next new contacts are not read one
 * by one (an import's webhooks trickle in, a few per pass, and each pass read up to BULK_UNKNOWN - 1
 * of them before the next pull) but wait for a pull, run at most every BULK_PULL_EVERY_MS.
 */
export const IMPORT_MODE_MS = 10_000;
export const BULK_PULL_EVERY_MS = 1_000;
/**
 * Rows pushed at once: with HighLevel's round trips (hundreds of ms) one row at a time could not
 * use the burst budget (100 per 10 s); a few at once keep it busy, and the gate bounds them.
 */
const PUSH_CONCURRENCY = 4;
/**
 * Real-time gap kept after a pass before the next one a wake asks for. Under a stream of webhooks
 * the inbox hands events over about every 5 ms, and a pass ran for each (about 200 a second, five
 * events each): every pass reads the location's state, settings and owners and writes its outcome.
 * Waiting a little lets one pass take more events; a wake after a quiet spell still runs at once,
 * and a pass with more work ready (a backlog, a pull in progress) is followed at once. Real time,
 * like the inbox's pass gap: it paces CPU work, not anything a clock schedules.
 */
const PASS_GAP_MS = 20;

export function createSupervisor(deps: SupervisorDeps): Supervisor {
  const { db, clock, log } = deps;
  const o = deps.options ?? {};
  const loops = new Map<string, LocationLoop>();
  let started = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  /** performance.now() of the last listing of installations (scan), and whether a wake asked for one. */
  let scannedAt = Number.NEGATIVE_INFINITY;
  let scanNeeded = true;

  function loopFor(locationId: string): LocationLoop {
    let loop = loops.get(locationId);
    if (!loop) {
      const budget = new RateBudget({ clock, ...o.budget });
      const api = createLocationApi({ endpoints: deps.endpoints, tokens: deps.tokens, budget, clock, locationId });
      loop = { locationId, budget, api, memory: {}, pushMemory: { lookups: new Map() }, nextRunAt: clock.now(), again: false, failures: 0, newContacts: 0, catchUp: true };
      loops.set(locationId, loop);
    }
    return loop;
  }

  /** Every active installation has a loop; loops of the others are dropped. */
  const probedAt = new Map<string, number>();
  /** Probes under way per paused location, and those woken meanwhile (asked again once it ends). */
  const probing = new Map<string, Promise<void>>();
  const probeAgain = new Set<string>();

  async function probePausedLocations(force = true): Promise<void> {
    const now = clock.now();
    const due = listInstallations(db).filter(
      (i) => i.status === 'paused' && (force || now - (probedAt.get(i.locationId) ?? -Infinity) >= PAUSED_PROBE_MS),
    );
    await Promise.all(due.map(({ locationId }) => probe(locationId)));
  }

  /**
   * Asks HighLevel whether a paused location is active again, one probe per location at a time: a
   * wake during a probe (the LocationUpdate of a reactivation may race the probe's refusal) asks
   * once more after it, so a stream of wakes costs one request at a time.
   */
  function probe(locationId: string): Promise<void> {
    const running = probing.get(locationId);
    if (running) {
      probeAgain.add(locationId);
      return running;
    }
    const p = probeOnce(locationId).finally(() => {
      probing.delete(locationId);
      if (probeAgain.delete(locationId) && !stopped && installationStatus(db, locationId) === 'paused') void probe(locationId);
    });
    probing.set(locationId, p);
    return p;
  }

  async function probeOnce(locationId: string): Promise<void> {
    probedAt.set(locationId, clock.now());
    try {
      // No token yet (an agency install that reached the location while it was inactive): getting
      // one mints it with the agency's token, which is the question itself.
      const held = tokenRowState(db, { type: 'location', id: locationId }) !== undefined;
      const current = await deps.tokens.locationToken(locationId);
      // A forced refresh: the token provider reports 'active' on success, which revives the installation.
      if (held) await deps.tokens.refreshLocationToken?.(locationId, current);
    } catch (err) {
      log.debug({ err, locationId }, 'paused location is still not active');
      return;
    }
    // Active again: its loop starts now, not at the next listing of installations.
    if (installationStatus(db, locationId) === 'active') wake(locationId);
  }

  function scan(): void {
    void probePausedLocations(false);
    const active = new Set(listInstallations(db).filter((i) => i.status === 'active').map((i) => i.locationId));
    for (const id of active) loopFor(id);
    for (const [id, loop] of loops) if (!active.has(id) && !loop.running) loops.delete(id);
  }

  /**
   * Lists the location's contact custom fields. Contacts sync whatever happens here (HighLevel's
   * values are kept by id); a failure is recorded for the REST API to tell, and the definitions
   * listed before stay in use. A deferral is the pass's own (rate limit, token backoff).
   */
  async function listCustomFields(loop: LocationLoop): Promise<void> {
    const { locationId } = loop;
    loop.customFieldsRefusedAt = undefined;
    try {
      // Fields defined since the last listing: contacts holding values for them are queued, for this pass's push.
      const queued = saveCustomFieldDefinitions(db, locationId, await loop.api.listCustomFields(), clock.now());
      if (queued > 0) log.info({ locationId, queued }, 'custom fields newly defined in HighLevel: contacts holding values for them queued');
    } catch (err) {
      if (err instanceof DeferredError) {
        loop.customFieldsListedAt = undefined;
        throw err;
      }
      recordCustomFieldsProblem(db, locationId, customFieldsProblem(err), isRefusal(err), clock.now());
      log.warn({ err, locationId }, 'listing HighLevel custom fields failed');
      // A refusal of the token stays until the location is installed again; anything else (a
      // timeout, a 5xx) is tried again sooner than the hourly listing.
      if (isRefusal(err)) loop.customFieldsRefusedAt = clock.now();
      else loop.customFieldsListedAt = clock.now() - (o.customFieldsRefreshMs ?? CUSTOM_FIELDS_REFRESH_MS) + CUSTOM_FIELDS_RETRY_MS;
    }
  }

  /**
   * HighLevel refused to list the custom fields (the token lacks the scope) and the location has a
   * token stored since: installed again (or refreshed), it may have the scope now. Read only after
   * a refusal: passes run many times a second under a stream of webhooks.
   */
  function tokenSinceRefusal(loop: LocationLoop): boolean {
    if (loop.customFieldsRefusedAt === undefined) return false;
    const issuedAt = tokenRowState(db, { type: 'location', id: loop.locationId })?.issuedAt;
    return issuedAt !== undefined && issuedAt > loop.customFieldsRefusedAt;
  }

  /**
   * Unmatched owners are learned from the contacts a pass meets, so an owner who loses their
   * pairing while their contacts stay as they are would be counted at the next daily sweep only:
   * their loss brings a sweep now (a catch-up, which also counts). Not beside a running Sync users,
   * which re-applies owners itself; right after it.
   */
  function recountOnLostPairing(loop: LocationLoop, pairsNow: Map<string, string>): void {
    if (loop.pairedOwners && [...loop.pairedOwners].some((id) => !pairsNow.has(id))) loop.recountOwners = true;
    loop.pairedOwners = new Set(pairsNow.keys());
    if (!loop.recountOwners) return;
    const running = activeOperation(db, loop.locationId);
    if (running?.kind === 'sync_users' && running.status === 'running') return;
    loop.catchUp = true;
    loop.recountOwners = false;
  }

  async function pass(loop: LocationLoop): Promise<PassResult> {
    const { locationId, api } = loop;
    const result: PassResult = { webhookEvents: 0, pulled: 0, pushed: 0, more: false };
    const installation = getInstallation(db, locationId);
    if (!installation) return { ...result, skipped: 'not_installed' };
    if (installation.status !== 'active') return { ...result, skipped: 'inactive' };
    const settings = getSyncSettings(db, locationId);
    if (settings.paused) return { ...result, skipped: 'paused' };

    const unmatched = new Set<string>();
    const unmatchedLocal = new Set<string>();
    let sweptOwners: Set<string> | undefined;
    try {
      const now = clock.now();
      if (loop.usersListedAt === undefined || now - loop.usersListedAt >= (o.usersRefreshMs ?? USERS_REFRESH_MS)) {
        loop.usersListedAt = now;
        try {
          upsertHighLevelUsers(db, locationId, await api.listUsers(), clock.now(), { complete: true });
        } catch (err) {
          // Owners wait for the next listing; contacts still sync (their owner stays unknown meanwhile).
          if (err instanceof DeferredError) {
            loop.usersListedAt = undefined;
            throw err;
          }
          log.warn({ err, locationId }, 'listing HighLevel users failed');
        }
      }
      const customFieldsDue = (loop.customFieldsDueAt !== undefined && loop.customFieldsDueAt <= now) || tokenSinceRefusal(loop);
      if (customFieldsDue || loop.customFieldsListedAt === undefined || now - loop.customFieldsListedAt >= (o.customFieldsRefreshMs ?? CUSTOM_FIELDS_REFRESH_MS)) {
        loop.customFieldsListedAt = now;
        loop.customFieldsDueAt = undefined;
        await listCustomFields(loop);
      }
      const pairsNow = ownerPairs(db, locationId);
      const ownerMap = (id: string) => pairsNow.get(id) ?? null;
      recountOnLostPairing(loop, pairsNow);

      const pullNow = async () => {
        // A run the previous process left is resumed from its checkpoint first (pull takes it up
        // whatever `full` says); the catch-up sweep begins after it, from a first page of its own,
        // since a run begun elsewhere cannot tell which contacts it has seen.
        const resuming = getSyncState(db, locationId).cursor.run !== null;
        const catchUp = loop.catchUp && !resuming;
        const full = loop.catchUp || sweepDue(db, locationId, clock.now(), o.fullSweepIntervalMs ?? FULL_SWEEP_INTERVAL_MS);
        let pulled: Awaited<ReturnType<typeof pull>> | undefined;
        try {
          pulled = await pull(
            { db, clock, api, settings, ownerMap, log, pageLimit: o.pageLimit ?? PAGE_LIMIT, maxPages: o.pagesPerPass ?? 20, memory: loop.memory },
            locationId,
            { full, intervalMs: o.pullIntervalMs ?? PULL_INTERVAL_MS },
          );
        } finally {
          // Begun once a page is checkpointed (or it is done): later passes go on with its run. A
          // deferral before its first page leaves the catch-up to the next pass.
          if (catchUp && (pulled?.done || getSyncState(db, locationId).cursor.run !== null)) loop.catchUp = false;
        }
        // The resumed run is done: the catch-up sweep is the next pass's work, not the next pull's.
        if (loop.catchUp) result.more = true;
        result.pulled += pulled.contacts;
        for (const u of pulled.unmatchedOwners) unmatched.add(u);
        if (pulled.sweptOwners) sweptOwners = pulled.sweptOwners;
        if (!pulled.done) result.more = true;
      };

      // Webhooks about many contacts Tandem does not know yet (an import in HighLevel): the pull
      // reads them 500 a request, where the drain would read each one; their events then find the
      // contacts linked and are applied without a read. Counted across passes (an import's
      // webhooks trickle in over many of them) until such a pull; the events it did not cover (a
      // search lagging behind writes) are then read one by one, in the same pass.
      const drainDeps = { db, clock, api, settings, ownerMap, log, maxEvents: EVENTS_PER_PASS };
      // While an import is under way, one new contact is enough, and the pull waits for its turn.
      const importing = loop.bulkPulledAt !== undefined && now - loop.bulkPulledAt < IMPORT_MODE_MS;
      const drains = [await drainWebhooks({ ...drainDeps, pullFirst: { threshold: importing ? 1 : BULK_UNKNOWN, tally: loop } }, locationId)];
      const pulledFirst = drains[0]!.pullFirst === true;
      let importPullAt: number | undefined;
      if (pulledFirst && importing && clock.now() < loop.bulkPulledAt! + BULK_PULL_EVERY_MS) {
        // The queue waits (from its first new contact on) for the import's next pull.
        importPullAt = loop.bulkPulledAt! + BULK_PULL_EVERY_MS;
      } else if (pulledFirst) {
        loop.newContacts = 0;
        const pullFrom = (loop.bulkPulledAt = clock.now());
        await pullNow();
        // Only what was queued when the pull began: a contact it did not bring then (search lags
        // behind writes) is read. Events that came in during the pull (an import goes on) wait for
        // the next pass, and so for the import's next pull, instead of being read one by one.
        drains.push(await drainWebhooks({ ...drainDeps, maxEvents: EVENTS_PER_PASS - drains[0]!.events, receivedUntil: pullFrom }, locationId));
      }
      for (const drained of drains) {
        result.webhookEvents += drained.events;
        for (const u of drained.unmatchedOwners) unmatched.add(u);
      }
      if (drains.some((d) => d.changed)) updateSyncState(db, locationId, { lastInboundAt: clock.now() }, clock.now());
      if (result.webhookEvents >= EVENTS_PER_PASS) result.more = true;

      // A pull that fails (HighLevel's search down) does not hold back the push: Tandem's changes go
      // out through other endpoints, and may well get through (QA: a failing search alone held every
      // push for minutes). A deferral holds every request, so it still ends the pass here.
      let pullFailure: unknown;
      if (!pulledFirst && (loop.catchUp || pullDue(db, locationId, clock.now()))) {
        try {
          await pullNow();
        } catch (err) {
          if (err instanceof DeferredError) throw err;
          pullFailure = err;
        }
      }

      // pushPending records lastOutboundAt itself and reports a deferral as a time, not a throw.
      const userMap = userMapFor(db, locationId);
      const pushed = await pushPending(
        { db, clock, api, settings, ownerMap, userMap, log, memory: loop.pushMemory, concurrency: o.pushConcurrency ?? PUSH_CONCURRENCY },
        locationId,
      );
      result.pushed = pushed.sent;
      for (const u of pushed.unmatchedOwners) unmatchedLocal.add(u);
      // HighLevel kept other values than Tandem sent (normalised, or dropped a field): Tandem took
      // them, and says so. Field names and ids only: the values are people's data.
      for (const { contactId, fields } of pushed.notStuck) log.warn({ locationId, contactId, fields }, 'HighLevel stored other values than Tandem sent; Tandem took them');
      if (pushed.deferred !== null) throw new DeferredError(pushed.deferred, pushed.deferredReason ?? 'burst', 'outbox deferred by the budget gate');
      if (pullFailure !== undefined) throw pullFailure;

      // HighLevel answers again after failed passes: the changes whose sends failed meanwhile (each
      // waiting out its own backoff, up to 15 minutes) go now, not when their wait ends.
      if (loop.failures > 0 && retryOutboxNow(db, locationId, clock.now()) > 0) result.more = true;
      loop.failures = 0;
      loop.rateLimitedSince = undefined;
      const { paired, ...owners } = unmatchedOwnersNow(db, locationId, { ownerMap, userMap }, { remote: unmatched, local: unmatchedLocal, swept: sweptOwners });
      updateSyncState(db, locationId, { unmatchedOwners: owners, lastError: unmatchedNotice(owners, () => unpairedWhy(db, locationId)) }, clock.now());
      // Owners that could not travel and now can (a user made with the same email, Sync users):
      // HighLevel's reach Tandem by a sweep; Tandem's go out with their contacts, queued again. A
      // Sync users run re-applies the owners itself, as its preview said: no sweep beside it.
      const syncingUsers = activeOperation(db, locationId);
      if (paired.remote.length && !(syncingUsers?.kind === 'sync_users' && syncingUsers.status === 'running')) loop.catchUp = true;
      if (enqueueOwnedBy(db, locationId, paired.local, clock.now()) > 0 || paired.remote.length) result.more = true;
      // Not before the import's next pull: every webhook of the import would otherwise bring a pass.
      if (importPullAt !== undefined) result.deferredUntil = importPullAt;
    } catch (err) {
      if (err instanceof DeferredError) {
        result.deferredUntil = err.retryAt;
        if (err.reason === 'rate_limited') loop.rateLimitedSince ??= clock.now();
        const held = err.reason === 'rate_limited' && clock.now() - loop.rateLimitedSince! >= RATE_LIMITED_NOTICE_MS;
        if (err.reason === 'daily' || err.reason === 'token' || held) {
          updateSyncState(db, locationId, { lastError: describeError(err, { since: loop.rateLimitedSince }) }, clock.now());
        }
        log.debug({ locationId, retryAt: err.retryAt, reason: err.reason }, 'sync deferred');
      } else {
        loop.failures++;
        result.error = describeError(err);
        result.deferredUntil = clock.now() + Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (loop.failures - 1));
        updateSyncState(db, locationId, { lastError: result.error }, clock.now());
        log.warn({ err, locationId, failures: loop.failures }, 'sync pass failed');
      }
    }
    return result;
  }

  /** When the location's next pass is due after `result`. */
  function nextRun(loop: LocationLoop, result: PassResult): number {
    const now = clock.now();
    if (result.deferredUntil !== undefined) return result.deferredUntil;
    // A paused location looks again now and then (a resume also wakes it); others are dropped by scan.
    if (result.skipped === 'paused') return now + Math.min(o.pullIntervalMs ?? PULL_INTERVAL_MS, 60_000);
    if (result.skipped) return Number.POSITIVE_INFINITY;
    if (result.more || loop.again) return now;
    const state = getSyncState(db, loop.locationId);
    // The next pull, an outbox retry coming due, or (for anything a wake missed) one interval.
    const outboxDue = nextOutboxDueAt(db, loop.locationId) ?? Number.POSITIVE_INFINITY;
    return Math.max(now, Math.min(state.nextPullAt ?? now, outboxDue, loop.customFieldsDueAt ?? Number.POSITIVE_INFINITY, now + (o.pullIntervalMs ?? PULL_INTERVAL_MS)));
  }

  function runOnce(locationId: string): Promise<PassResult> {
    const loop = loopFor(locationId);
    if (loop.running) {
      loop.again = true;
      return loop.running.then(() => runOnce(locationId));
    }
    loop.again = false;
    const running = pass(loop)
      .catch((err: unknown): PassResult => {
        // Only the database can fail outside the pass's own handling; back off like any failure.
        log.error({ err, locationId }, 'sync pass crashed');
        return { webhookEvents: 0, pulled: 0, pushed: 0, more: false, error: describeError(err), deferredUntil: clock.now() + FIRST_BACKOFF_MS };
      })
      .then((result) => {
        loop.running = undefined;
        loop.blockedUntil = result.deferredUntil;
        loop.failedAt = result.error !== undefined ? clock.now() : undefined;
        loop.gapUntil = result.more ? undefined : performance.now() + (o.passGapMs ?? PASS_GAP_MS);
        loop.nextRunAt = nextRun(loop, result);
        if (result.skipped === 'not_installed' || result.skipped === 'inactive') loops.delete(locationId);
        schedule();
        return result;
      });
    loop.running = running;
    return running;
  }

  function tick(): void {
    timer = undefined;
    if (stopped) return;
    // Installations are listed again after a wake that names no location, and otherwise once per
    // timer cap: a wake per stored webhook (hundreds a second) listed them every time.
    if (scanNeeded || performance.now() - scannedAt >= (o.maxSleepMs ?? 5_000)) {
      scanNeeded = false;
      scannedAt = performance.now();
      scan();
    }
    const now = clock.now();
    let runningCount = [...loops.values()].filter((l) => l.running).length;
    const realNow = performance.now();
    const due = [...loops.values()].filter((l) => !l.running && l.nextRunAt <= now && (l.gapUntil ?? 0) <= realNow).sort((a, b) => a.nextRunAt - b.nextRunAt);
    for (const loop of due) {
      if (runningCount >= (o.maxConcurrent ?? 8)) break;
      runningCount++;
      void runOnce(loop.locationId);
    }
    schedule();
  }

  /** Arms the timer for the earliest due location (a pass ending calls this again). */
  function schedule(): void {
    if (!started || stopped) return;
    if (timer) clearTimeout(timer);
    const now = clock.now();
    // Clock ms until each idle location is due, but not before its real-time gap has passed.
    const realNow = performance.now();
    const waits = [...loops.values()].filter((l) => !l.running).map((l) => Math.max(l.nextRunAt - now, (l.gapUntil ?? 0) - realNow));
    const next = Math.min(...waits);
    const wait = Math.max(0, Math.min(Number.isFinite(next) ? next : Infinity, o.maxSleepMs ?? 5_000));
    timer = setTimeout(tick, wait);
    timer.unref();
  }

  /**
   * Until when a wake (a webhook, a Tandem write) still waits: a deferral (rate limit, daily limit,
   * token) holds it to its end, but a failure's backoff only FIRST_BACKOFF_MS after that failure:
   * the change may well get through now, and a stream of wakes costs one pass per FIRST_BACKOFF_MS.
   */
  function wokenBlock(loop: LocationLoop): number {
    const blocked = loop.blockedUntil ?? 0;
    return loop.failedAt === undefined ? blocked : Math.min(blocked, loop.failedAt + FIRST_BACKOFF_MS);
  }

  function wake(locationId?: string): void {
    if (stopped) return;
    if (!locationId) scanNeeded = true;
    else {
      const loop = loopFor(locationId);
      if (loop.running) loop.again = true;
      else loop.nextRunAt = Math.min(loop.nextRunAt, Math.max(clock.now(), wokenBlock(loop)));
    }
    if (!started || immediate) return;
    immediate = setImmediate(() => {
      immediate = undefined;
      tick();
    });
  }

  return {
    start() {
      if (started || stopped) return;
      started = true;
      tick();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
      await Promise.allSettled([...loops.values()].map((l) => l.running));
    },
    wake,
    runOnce,
    probePausedLocations: () => probePausedLocations(true),
    locationApi: (locationId: string) => loopFor(locationId).api,
    backgroundApi(locationId: string, keepShare: number) {
      const { budget } = loopFor(locationId);
      const api = createLocationApi({ endpoints: deps.endpoints, tokens: deps.tokens, budget, clock, locationId, keepShare });
      const snap = budget.snapshot(clock.now());
      return { api, rate: { max: snap.max, intervalMs: snap.intervalMs } };
    },
    usersChanged(locationId: string) {
      loopFor(locationId).usersListedAt = undefined;
      wake(locationId);
    },
    locationChanged(locationId: string) {
      if (!stopped && installationStatus(db, locationId) === 'paused') void probe(locationId);
    },
    customFieldsChanged(locationId: string, at = clock.now()) {
      const loop = loopFor(locationId);
      loop.customFieldsDueAt = Math.min(loop.customFieldsDueAt ?? Number.POSITIVE_INFINITY, at);
      if (at <= clock.now()) return wake(locationId);
      if (!loop.running) loop.nextRunAt = Math.min(loop.nextRunAt, Math.max(at, loop.blockedUntil ?? 0));
      schedule();
    },
  };
}

/**
 * Why the custom fields could not be listed, for the REST API's answer. HighLevel refuses a token
 * without the scope with a 401 or 403 naming it; installs made before Tandem asked for the scope
 * hold such tokens until the location is installed again.
 */
const isRefusal = (err: unknown): err is HighLevelError => err instanceof HighLevelError && err.kind === 'http' && (err.status === 401 || err.status === 403);

function customFieldsProblem(err: unknown): string {
  if (isRefusal(err)) {
    return `HighLevel did not let Tandem read this sub-account's custom fields (it answered ${err.status}: ${err.message.trim().replace(/\.$/, '')}). Installing Tandem on the sub-account again grants the access it needs (the scope locations/customFields.readonly).`;
  }
  return `Listing this sub-account's custom fields in HighLevel failed: ${describeError(err)}`;
}

/**
 * The owners that cannot travel after a pass: those known before and those the pass met, less
 * every owner paired since (Sync users, a new user with the same email), which are returned apart
 * (`paired`). A completed full sweep has met every HighLevel contact: its owners replace the remote
 * ones known before. Tandem users who no longer own a live contact are dropped at once.
 */
function unmatchedOwnersNow(
  db: Db,
  locationId: string,
  { ownerMap, userMap }: { ownerMap: (highlevelUserId: string) => string | null; userMap: (tandemUserId: string) => string | null },
  seen: { remote: Set<string>; local: Set<string>; swept: Set<string> | undefined },
): UnmatchedOwners & { paired: UnmatchedOwners } {
  const before = getSyncState(db, locationId).unmatchedOwners;
  const remote = [...(seen.swept ?? before.remote), ...seen.remote].filter((id) => ownerMap(id) === null);
  let local = [...before.local, ...seen.local].filter((id) => userMap(id) === null);
  const owning = ownersOfLiveContacts(db, locationId, local);
  local = local.filter((id) => owning.has(id));
  const paired = { remote: before.remote.filter((id) => ownerMap(id) !== null), local: before.local.filter((id) => userMap(id) !== null) };
  return { remote: [...new Set(remote)], local: [...new Set(local)], paired };
}

/** Each reason an owner is unpaired, in the notice's words (one owner, several) and in its order. */
const HIGHLEVEL_WHY: Record<HighLevelOwnerWhy, [string, string]> = {
  deactivated: ['is deactivated in HighLevel', 'are deactivated in HighLevel'],
  deleted: ['was deleted in HighLevel', 'were deleted in HighLevel'],
  unknown: ['is not a user of this sub-account in HighLevel', 'are not users of this sub-account in HighLevel'],
  'no-email': ['has no email in HighLevel', 'have no email in HighLevel'],
  'shared-email': ['shares their email with another HighLevel user', 'share their email with another HighLevel user'],
  'tandem-deactivated': ['has the same email as a deactivated Tandem user', 'have the same email as deactivated Tandem users'],
  'no-tandem-user': ['has no active Tandem user with the same email', 'have no active Tandem user with the same email'],
};
const TANDEM_WHY: Record<TandemOwnerWhy, [string, string]> = {
  deactivated: ['is deactivated in Tandem', 'are deactivated in Tandem'],
  'highlevel-deactivated': ['has the same email as a user deactivated in HighLevel', 'have the same email as users deactivated in HighLevel'],
  'highlevel-deleted': ['has the same email as a user deleted in HighLevel', 'have the same email as users deleted in HighLevel'],
  'shared-email': ['has the same email as more than one HighLevel user', 'have the same email as more than one HighLevel user'],
  'no-highlevel-user': ['has no active HighLevel user with the same email', 'have no active HighLevel user with the same email'],
  'not-paired': ['is not paired with the HighLevel user of the same email', 'are not paired with the HighLevel users of the same email'],
};
/**
 * What Sync users repairs: it adds a live HighLevel owner Tandem lacks, and pairs a Tandem owner
 * with the HighLevel user of its email. Deactivated or deleted users, emails shared by HighLevel
 * users, and a Tandem user HighLevel lacks (Sync users adds no HighLevel user) it cannot.
 */
const REPAIRABLE = new Set<string>(['no-tandem-user', 'not-paired']);

/**
 * Owners that could not travel, as the status strip's notice (null when every owner is paired):
 * how many and why, those Sync users repairs said apart from those it cannot (the panel offers
 * Sync users on "Sync users repairs it/them").
 */
function unmatchedNotice({ remote, local }: UnmatchedOwners, whyOf: () => ReturnType<typeof unpairedWhy>): string | null {
  if (!remote.length && !local.length) return null;
  const why = whyOf();
  const clauses = (ids: string[], side: 'HighLevel' | 'Tandem', words: Record<string, [string, string]>, reason: (id: string) => string) => {
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(reason(id), (counts.get(reason(id)) ?? 0) + 1);
    return Object.keys(words)
      .filter((w) => counts.has(w))
      .map((w) => {
        const n = counts.get(w)!;
        return { repairable: REPAIRABLE.has(w), n, text: `${n} ${side} user${n === 1 ? ' owns' : 's own'} contacts but ${words[w]![n === 1 ? 0 : 1]}` };
      });
  };
  const all = [...clauses(remote, 'HighLevel', HIGHLEVEL_WHY, why.highlevel), ...clauses(local, 'Tandem', TANDEM_WHY, why.tandem)];
  const sentence = (part: typeof all, end: (one: boolean) => string) => {
    if (!part.length) return null;
    const one = part.reduce((n, c) => n + c.n, 0) === 1;
    return `${part.map((c) => c.text).join('; ')}: ${end(one)}.`;
  };
  // An owner who cannot be paired is not copied either way: each contact keeps the owner it has on
  // each side (a Tandem owner paired before stays, QA), which "not copied" alone did not say.
  return [
    sentence(all.filter((c) => c.repairable), (one) => `${one ? 'that owner was' : 'those owners were'} not copied (Sync users repairs ${one ? 'it' : 'them'})`),
    sentence(all.filter((c) => !c.repairable), (one) => `their contacts keep the owner they have on each side, and Sync users cannot pair ${one ? 'it' : 'them'}`),
  ]
    .filter(Boolean)
    .join(' ');
}
