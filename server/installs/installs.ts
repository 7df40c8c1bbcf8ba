// Install orchestration: what a token grant (OAuth callback) or an INSTALL/UNINSTALL webhook means
// for Tandem's installations, companies and token vault. Work for one location runs under that
// location's lock (keyed-lock.ts), so the callback, the webhooks and an uninstall never interleave.
//
// Invariants:
// - An installation row is never deleted: uninstall marks it `uninstalled` and deletes its tokens,
//   and a reinstall reactivates the same row (installedAt kept), so Tandem's data for the location
//   is picked up again without duplicates; its sync starts again with a full sweep (deletions made
//   in HighLevel meanwhile reached no webhook).
// - Tokens are written before the row says `active`, in one transaction.
// - A late event never undoes a later one. HighLevel delivers webhooks concurrently and out of
//   order, and redelivers after a 429 (for about 70 minutes) with the original timestamp: an
//   UNINSTALL stamped before Tandem's stored token was issued (installedSince), or an INSTALL
//   stamped before the installation's latest UNINSTALL, is ignored.
// - No HTTP call happens inside a transaction.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../db/client.ts';
import {
  getCompany,
  getInstallation,
  installationsOfCompany,
  listCompanies,
  setCompanyStatus,
  setInstallationStatus,
  setLocationName,
  setWhitelabelDomain,
  upsertCompany,
  upsertInstallation,
} from '../../db/installations.ts';
import { transaction } from '../../db/prepared.ts';
import { requestFullSweep } from '../../db/sync-state.ts';
import { deleteTokens, deleteTokensOfLocation, hasTokens, readTokens, saveGrant, tokenRowState, type TokenOwner } from '../../db/tokens.ts';
import { dropQueuedInboxEvents, insertInboxEvent, wakeDeferredInboxEvents } from '../../db/webhook-inbox.ts';
import type { Clock } from '../clock.ts';
import { classifyHighLevelError, HighLevelError, retryHintMs } from '../highlevel/http.ts';
import { getLocation, mintLocationToken, type HighLevelEndpoints, type TokenGrant } from '../highlevel/oauth.ts';
import { PAUSED_REASON, TransientTokenError, type TokenProvider } from '../highlevel/token-provider.ts';
import { whitelabelDomainOf, type InstallEvent, type UninstallEvent } from '../highlevel/webhook-events.ts';
import type { TokenCipher } from '../security/token-cipher.ts';
import type { EventOutcome } from './inbox-processor.ts';
import { keyedLock } from './keyed-lock.ts';

// Reasons an installation needs re-authorization, as the panel shows them: what happened, in plain
// words. What to do (Reconnect) is the panel's to say, once for every reason; HighLevel's own
// answer goes to the log.
export const NO_AUTHORIZATION_REASON = 'Tandem was installed in HighLevel, but never received the authorization to act for this sub-account.';
export const NO_TOKEN_REASON = 'HighLevel did not give Tandem access to this sub-account when the agency installed it.';

/**
 * HighLevel sends INSTALL while the admin's browser is on its way to /oauth/callback. An INSTALL
 * Tandem cannot act on yet (no token) waits this long for the callback before the installation is
 * recorded as needing re-authorization, so a normal install never shows that state in passing.
 */
export const AUTHORIZATION_GRACE_MS = 2 * 60_000;
/**
 * An INSTALL stamped this long after Tandem's token for the location was issued is a reinstall:
 * the uninstall before it revoked that token. Less than this apart, it is taken as the INSTALL of
 * the very install that token came from (its callback, or the agency's mint, a moment before).
 */
export const REINSTALL_MARGIN_MS = 60_000;

export interface LocationResult {
  locationId: string;
  name: string | null;
  /**
   * connecting: a transient failure; Tandem keeps retrying in the background. paused: HighLevel
   * reports the location inactive; Tandem connects it once HighLevel reports it active again.
   */
  status: 'active' | 'needs_reauth' | 'connecting' | 'paused';
  problem?: string;
}

export type GrantResult =
  | { kind: 'location'; companyId: string; location: LocationResult }
  | { kind: 'company'; companyId: string; installToFutureLocations: boolean; locations: LocationResult[] };

export interface Installs {
  /** A token grant from the OAuth callback: store it and install what it covers. */
  completeGrant(grant: TokenGrant): Promise<GrantResult>;
  /** `receivedAt`: when the webhook arrived (starts the grace period for the callback). */
  onInstall(event: InstallEvent, receivedAt: number): Promise<EventOutcome>;
  onUninstall(event: UninstallEvent): Promise<EventOutcome>;
}

export interface InstallsDeps {
  db: Db;
  cipher: TokenCipher;
  clock: Clock;
  endpoints: HighLevelEndpoints;
  tokens: TokenProvider;
  log: Logger;
  /** Called after inbox work became due (a queued token mint, webhooks woken by a callback). */
  onQueued?: () => void;
}

/** Locations minted at once from one agency grant; the agency's burst budget is shared by all. */
const MINT_CONCURRENCY = 4;

const locationKey = (id: string) => `location:${id}`;
const companyKey = (id: string) => `company:${id}`;
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * When HighLevel says the event happened: its `timestamp` (clock ms), which a redelivery keeps.
 * Undefined without one: the mints Tandem queues for itself (queueMint) carry none.
 */
function happenedAt(event: Readonly<Record<string, unknown>>): number | undefined {
  const at = typeof event.timestamp === 'string' ? Date.parse(event.timestamp) : Number.NaN;
  return Number.isFinite(at) ? at : undefined;
}

export function createInstalls(deps: InstallsDeps): Installs {
  const { db, cipher, clock, endpoints, tokens, log } = deps;
  const lock = keyedLock();
  // Repository calls inside run on the same connection, so they join the transaction.
  const tx = <T>(fn: () => T): T => transaction(db, fn);

  /** Stores a Location grant and marks the installation active; then learns the location's name. */
  async function activate(grant: TokenGrant): Promise<LocationResult> {
    const locationId = grant.locationId!;
    const now = clock.now();
    tx(() => {
      saveGrant(db, cipher, grant, now);
      // A white-label domain learned from an earlier INSTALL (of this location or its agency) stays.
      const known = getInstallation(db, locationId)?.whitelabelDomain ?? getCompany(db, grant.companyId)?.whitelabelDomain ?? null;
      upsertInstallation(db, { locationId, companyId: grant.companyId, now, whitelabelDomain: known });
    });
    return { locationId, name: await learnName(locationId, grant.accessToken), status: 'active' };
  }

  /** The location's display name; a failure only costs the name (the install stands). */
  async function learnName(locationId: string, accessToken: string): Promise<string | null> {
    try {
      const location = await getLocation(endpoints, accessToken, locationId);
      setLocationName(db, locationId, location.name, clock.now());
      return location.name;
    } catch (err) {
      log.warn({ err, locationId }, 'could not read the location name');
      return getInstallation(db, locationId)?.locationName ?? null;
    }
  }

  /** Records an installation Tandem cannot act for (no token): shown as needs re-auth. */
  function recordWithoutToken(locationId: string, companyId: string, reason: string, domain: string | null | undefined): void {
    const now = clock.now();
    tx(() => {
      upsertInstallation(db, { locationId, companyId, now, ...(domain !== undefined ? { whitelabelDomain: domain } : {}) });
      setInstallationStatus(db, locationId, 'needs_reauth', now, reason);
    });
  }

  /**
   * Records an installation HighLevel reports inactive ("Location is not active") while Tandem has
   * no token for it yet: paused, as the token provider pauses a location whose refresh it refuses
   * so. The supervisor asks HighLevel again now and then (probePausedLocations), and a LocationUpdate
   * webhook asks at once: the token provider then mints the location's token with the agency's, and
   * its success makes the installation active.
   */
  function recordPaused(locationId: string, companyId: string, domain: string | null | undefined): void {
    const now = clock.now();
    tx(() => {
      upsertInstallation(db, { locationId, companyId, now, ...(domain !== undefined ? { whitelabelDomain: domain } : {}) });
      setInstallationStatus(db, locationId, 'paused', now, PAUSED_REASON);
    });
  }

  /** One location of an agency grant, minted with its Company token; failures are recorded, never thrown. */
  async function installApproved(grant: TokenGrant, locationId: string, startedAt: number): Promise<LocationResult> {
    try {
      return await lock(locationKey(locationId), async () => {
        // The INSTALL webhook may have installed it from this very grant already.
        const current = tokenRowState(db, { type: 'location', id: locationId });
        const row = getInstallation(db, locationId);
        if (current && current.issuedAt >= startedAt && row?.status === 'active') {
          return { locationId, name: row.locationName, status: 'active' as const };
        }
        return activate(await mintLocationToken(endpoints, grant.accessToken, grant.companyId, locationId, clock.now()));
      });
    } catch (err) {
      const name = getInstallation(db, locationId)?.locationName ?? null;
      const problem = err instanceof Error ? err.message : String(err);
      const kind = classifyHighLevelError(err);
      if (kind === 'retry') {
        // Busy or unreachable HighLevel: the inbox retries the mint with backoff.
        queueMint(grant.companyId, locationId, err);
        return { locationId, name, status: 'connecting', problem };
      }
      if (kind === 'paused') {
        // Installed all the same: HighLevel refuses the token only while the location is inactive.
        log.info({ locationId, companyId: grant.companyId }, 'agency install: location inactive in HighLevel; paused until it is active');
        recordPaused(locationId, grant.companyId, undefined);
        // The agency's token may read the location (Agency-Access), so the page and panel can name it.
        return { locationId, name: await learnName(locationId, grant.accessToken), status: 'paused', problem };
      }
      log.warn({ err, locationId, companyId: grant.companyId }, 'agency install: no token for a location');
      recordWithoutToken(locationId, grant.companyId, NO_TOKEN_REASON, undefined);
      return { locationId, name, status: 'needs_reauth', problem };
    }
  }

  /** A synthetic INSTALL in the inbox: the processor mints it later, with its retries and backoff. */
  function queueMint(companyId: string, locationId: string, err: unknown): void {
    const now = clock.now();
    const hint = err instanceof HighLevelError ? retryHintMs(err) : undefined;
    insertInboxEvent(db, {
      webhookId: `tandem-mint:${locationId}:${now}`,
      type: 'INSTALL',
      locationId,
      companyId,
      body: JSON.stringify({ type: 'INSTALL', locationId, companyId, source: 'tandem' }),
      receivedAt: now,
      nextAttemptAt: now + Math.max(hint ?? 0, 30_000),
    });
    deps.onQueued?.();
  }

  /**
   * INSTALL webhooks that arrived before this callback wait for it (AUTHORIZATION_GRACE_MS); wake
   * them now, so what only they carry (the white-label domain) is recorded at once.
   */
  function wakeWaitingEvents(companyId: string, locationIds: string[]): void {
    if (wakeDeferredInboxEvents(db, { companyId, locationIds }, clock.now()) > 0) deps.onQueued?.();
  }

  async function completeGrant(grant: TokenGrant): Promise<GrantResult> {
    if (grant.userType === 'Location') {
      const location = await lock(locationKey(grant.locationId!), () => activate(grant));
      wakeWaitingEvents(grant.companyId, [location.locationId]);
      return { kind: 'location', companyId: grant.companyId, location };
    }
    const startedAt = clock.now();
    await lock(companyKey(grant.companyId), async () => {
      tx(() => {
        saveGrant(db, cipher, grant, startedAt);
        upsertCompany(db, { companyId: grant.companyId, installToFutureLocations: grant.installToFutureLocations, now: startedAt });
      });
    });
    const queue = [...new Set(grant.approvedLocations)];
    const results: LocationResult[] = [];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) results.push(await installApproved(grant, id, startedAt));
    };
    await Promise.all(Array.from({ length: Math.min(MINT_CONCURRENCY, queue.length) }, worker));
    const order = grant.approvedLocations;
    results.sort((a, b) => order.indexOf(a.locationId) - order.indexOf(b.locationId));
    wakeWaitingEvents(grant.companyId, order);
    return { kind: 'company', companyId: grant.companyId, installToFutureLocations: grant.installToFutureLocations, locations: results };
  }

  async function onInstall(event: InstallEvent, receivedAt: number): Promise<EventOutcome> {
    const domain = whitelabelDomainOf(event);
    const graceEnds = receivedAt + AUTHORIZATION_GRACE_MS;
    // A mint Tandem queued itself dates from when it was queued, after the grant it comes from.
    const at = happenedAt(event) ?? receivedAt;
    if (event.locationId) {
      const locationId = event.locationId;
      return lock(locationKey(locationId), () => installLocationEvent(locationId, event.companyId, domain, graceEnds, at, happenedAt(event)));
    }
    if (!event.companyId) return { outcome: 'ignored', detail: 'INSTALL without locationId or companyId' };
    const companyId = event.companyId;
    return lock(companyKey(companyId), async () => {
      const now = clock.now();
      const known = getCompany(db, companyId);
      if (hasTokens(db, { type: 'company', id: companyId })) {
        if (domain !== undefined) setWhitelabelDomain(db, companyId, domain, now);
        return { outcome: 'applied', detail: 'agency install noted; Tandem holds its token' };
      }
      // Sent before the agency's UNINSTALL (a late delivery of an earlier install): it would record
      // the agency as needing re-authorization while HighLevel has it uninstalled. Companies keep
      // no uninstall time of their own: updatedAt is when Tandem applied the UNINSTALL, at or after
      // its timestamp, so an INSTALL sent just after it may be taken as older. That costs only the
      // needs-re-auth mark: a real reinstall of an agency comes back through the callback.
      if (known?.status === 'uninstalled' && at < known.updatedAt) {
        log.info({ companyId, sentAt: iso(at), uninstalledAt: iso(known.updatedAt) }, 'late agency INSTALL ignored: uninstalled since');
        return { outcome: 'ignored', detail: `agency INSTALL sent at ${iso(at)} is older than its uninstall (${iso(known.updatedAt)})` };
      }
      if (now < graceEnds) return { outcome: 'deferred', detail: 'waiting for the authorization from the callback', retryAt: graceEnds };
      // The agency authorized in HighLevel but its code never reached Tandem: remember the agency
      // (and its white label) as needing re-authorization; the install link completes this row.
      tx(() => {
        upsertCompany(db, {
          companyId,
          installToFutureLocations: known?.installToFutureLocations ?? false,
          now,
          ...(domain !== undefined ? { whitelabelDomain: domain } : {}),
        });
        setCompanyStatus(db, companyId, 'needs_reauth', now);
      });
      return { outcome: 'applied', detail: 'agency install recorded without authorization (needs re-auth)' };
    });
  }

  async function installLocationEvent(
    locationId: string,
    eventCompanyId: string | undefined,
    domain: string | null | undefined,
    graceEnds: number,
    at: number,
    sentAt: number | undefined,
  ): Promise<EventOutcome> {
    const existing = getInstallation(db, locationId);
    // Sent before the location's latest UNINSTALL (a late delivery of an earlier install): HighLevel
    // has the app uninstalled, so the agency's mint would be refused and, once the grace period
    // ends, the location recorded as needing re-authorization while HighLevel says not installed.
    if (existing?.status === 'uninstalled' && existing.uninstalledAt !== null && at < existing.uninstalledAt) {
      log.info({ locationId, sentAt: iso(at), uninstalledAt: iso(existing.uninstalledAt) }, 'late INSTALL ignored: uninstalled since');
      return { outcome: 'ignored', detail: `INSTALL sent at ${iso(at)} is older than the UNINSTALL of ${iso(existing.uninstalledAt)}` };
    }
    const owner = { type: 'location' as const, id: locationId };
    // Installed again since Tandem's token was issued: the uninstall before this INSTALL (its
    // UNINSTALL not seen yet, or lost) revoked that token. With the agency's authorization a new
    // one is minted, so the location works, and that UNINSTALL, when it comes, is older than it.
    const issuedAt = tokenRowState(db, owner)?.issuedAt;
    const agency = eventCompanyId ?? existing?.companyId;
    if (sentAt !== undefined && issuedAt !== undefined && sentAt > issuedAt + REINSTALL_MARGIN_MS && agency && hasTokens(db, { type: 'company', id: agency })) {
      try {
        await activate(await mintLocationToken(endpoints, await tokens.companyToken(agency), agency, locationId, clock.now()));
        if (domain !== undefined) setWhitelabelDomain(db, agency, domain, clock.now());
        return { outcome: 'applied', detail: "installed again: a new location token from the agency's authorization" };
      } catch (err) {
        if (err instanceof TransientTokenError || classifyHighLevelError(err) === 'retry') throw err;
        log.warn({ err, companyId: agency, locationId }, 'agency could not mint a new token for a reinstalled location; keeping the one held');
      }
    }
    if (hasTokens(db, owner)) {
      // The webhook of an install the callback already completed, or a reinstall. A token already
      // known to be dead (needs re-auth) or a paused location is not revived by the event alone.
      const companyId = eventCompanyId ?? existing?.companyId ?? readTokens(db, cipher, owner)!.companyId;
      const now = clock.now();
      const keep = existing?.status === 'needs_reauth' || existing?.status === 'paused';
      tx(() => {
        if (!keep) upsertInstallation(db, { locationId, companyId, now });
        if (domain !== undefined) setWhitelabelDomain(db, companyId, domain, now);
      });
      if (keep) return { outcome: 'applied', detail: `noted; the installation stays ${existing.status} until Tandem gets a working token` };
      if (!existing?.locationName) {
        try {
          await learnName(locationId, await tokens.locationToken(locationId));
        } catch (err) {
          log.warn({ err, locationId }, 'could not read the location name');
        }
      }
      return { outcome: 'applied', detail: 'installed; Tandem already holds its token' };
    }

    // Future locations of an agency install (and bulk installs whose callback has not minted yet):
    // the agency's Company token mints this location's token. Without a companyId in the event,
    // every agency that installs to future locations is a candidate; HighLevel refuses the others.
    const companyId = eventCompanyId ?? existing?.companyId;
    const candidates = companyId
      ? [companyId]
      : listCompanies(db)
          .filter((c) => c.status === 'active' && c.installToFutureLocations)
          .map((c) => c.companyId);
    for (const candidate of candidates) {
      if (!hasTokens(db, { type: 'company', id: candidate })) continue;
      let companyToken: string;
      try {
        companyToken = await tokens.companyToken(candidate);
      } catch (err) {
        if (err instanceof TransientTokenError) throw err;
        log.warn({ err, companyId: candidate }, 'agency token unusable for a location install');
        continue;
      }
      try {
        await activate(await mintLocationToken(endpoints, companyToken, candidate, locationId, clock.now()));
      } catch (err) {
        const kind = classifyHighLevelError(err);
        if (kind === 'retry') throw err;
        if (kind === 'paused') {
          // HighLevel checks the agency's claim on the location first: this agency installed it.
          recordPaused(locationId, candidate, domain);
          if (domain !== undefined) setWhitelabelDomain(db, candidate, domain, clock.now());
          return { outcome: 'applied', detail: 'installed while HighLevel reports the location inactive (paused until it is active)' };
        }
        log.warn({ err, companyId: candidate, locationId }, 'agency could not mint a token for this location');
        continue;
      }
      if (domain !== undefined) setWhitelabelDomain(db, candidate, domain, clock.now());
      return { outcome: 'applied', detail: "installed with a location token from the agency's authorization" };
    }

    if (clock.now() < graceEnds) return { outcome: 'deferred', detail: 'waiting for the authorization from the callback', retryAt: graceEnds };
    if (!companyId) return { outcome: 'ignored', detail: 'INSTALL for an unknown location without companyId and no agency token to mint one' };
    recordWithoutToken(locationId, companyId, NO_AUTHORIZATION_REASON, domain);
    if (domain !== undefined) setWhitelabelDomain(db, companyId, domain, clock.now());
    return { outcome: 'applied', detail: 'installed without authorization (needs re-auth)' };
  }

  /**
   * When Tandem's token for the owner was issued, if that is after `at` (an UNINSTALL's timestamp).
   * HighLevel issues tokens (the callback's code exchange, a location token minted from the
   * agency's, a refresh) only while the app is installed, and revokes them at an uninstall: a
   * token issued after the UNINSTALL was sent means the app was installed again since, and the
   * UNINSTALL is late (out of order, or redelivered after a 429 with its original timestamp).
   * Compares HighLevel's clock with Tandem's: they are assumed to agree to within a second or so.
   */
  function installedSince(owner: TokenOwner, at: number | undefined): number | undefined {
    const issuedAt = tokenRowState(db, owner)?.issuedAt;
    return at !== undefined && issuedAt !== undefined && at < issuedAt ? issuedAt : undefined;
  }

  /**
   * Stops everything for one location: tokens gone, row uninstalled (kept for a reinstall), unless
   * it was installed again after `at` (the UNINSTALL's timestamp). `at` is kept as uninstalledAt,
   * on HighLevel's clock like the INSTALL events later compared with it.
   */
  function uninstallLocation(locationId: string, at: number | undefined): 'uninstalled' | 'unknown' | { installedAt: number } {
    const now = clock.now();
    return tx(() => {
      const installedAt = installedSince({ type: 'location', id: locationId }, at);
      if (installedAt !== undefined) return { installedAt };
      deleteTokensOfLocation(db, locationId);
      const row = getInstallation(db, locationId);
      if (!row) return 'unknown';
      // A second, older UNINSTALL of an uninstalled location leaves the later time in place.
      const when = at ?? now;
      const uninstalledAt = row.status === 'uninstalled' && row.uninstalledAt !== null ? Math.max(row.uninstalledAt, when) : when;
      setInstallationStatus(db, locationId, 'uninstalled', now, null, uninstalledAt);
      dropQueuedInboxEvents(db, locationId, 'ignored: location uninstalled before its sync loop applied it', now);
      // HighLevel sends an uninstalled app nothing: a reinstall starts with a full sweep.
      requestFullSweep(db, locationId, now);
      return 'uninstalled';
    });
  }

  async function onUninstall(event: UninstallEvent): Promise<EventOutcome> {
    const at = happenedAt(event);
    if (event.locationId) {
      const locationId = event.locationId;
      const result = await lock(locationKey(locationId), async () => uninstallLocation(locationId, at));
      if (result === 'unknown') return { outcome: 'ignored', detail: 'not installed here' };
      if (result === 'uninstalled') return { outcome: 'applied', detail: 'uninstalled; tokens deleted' };
      log.info({ locationId, sentAt: iso(at!), installedAt: iso(result.installedAt) }, 'late UNINSTALL ignored: installed again since');
      return { outcome: 'ignored', detail: `UNINSTALL sent at ${iso(at!)} is older than the install of ${iso(result.installedAt)}` };
    }
    if (!event.companyId) return { outcome: 'ignored', detail: 'UNINSTALL without locationId or companyId' };
    const companyId = event.companyId;
    // HighLevel revokes the agency's token and every location token it minted; each location is
    // stopped under its own lock so no mint in flight can reactivate it afterwards. A location (or
    // the agency) installed again since the UNINSTALL was sent keeps going (installedSince).
    const locations = installationsOfCompany(db, companyId);
    let kept = 0;
    for (const inst of locations) {
      const result = await lock(locationKey(inst.locationId), async () => uninstallLocation(inst.locationId, at));
      if (typeof result === 'object') kept++;
    }
    const company: TokenOwner = { type: 'company', id: companyId };
    const agencyKept = await lock(companyKey(companyId), async () =>
      tx(() => {
        if (installedSince(company, at) !== undefined) return true;
        // Location tokens went with their locations above (those installed again keep theirs).
        deleteTokens(db, company);
        if (getCompany(db, companyId)) setCompanyStatus(db, companyId, 'uninstalled', clock.now());
        return false;
      }),
    );
    if (agencyKept && kept === locations.length) {
      log.info({ companyId, sentAt: iso(at!) }, 'late agency UNINSTALL ignored: installed again since');
      return { outcome: 'ignored', detail: `agency UNINSTALL sent at ${iso(at!)} is older than the agency's latest install` };
    }
    const keptNote = kept ? `; ${kept} installed again since it was sent kept` : '';
    if (agencyKept) return { outcome: 'applied', detail: `${locations.length - kept} location(s) uninstalled${keptNote}; the agency, authorized again since, kept` };
    return { outcome: 'applied', detail: `agency uninstalled with ${locations.length - kept} location(s)${keptNote}` };
  }

  return { completeGrant, onInstall, onUninstall };
}

