// Hands out valid HighLevel access tokens per location or agency company, refreshing them ahead of
// expiry with exactly one refresh per owner at a time, across processes (RELIABILITY.md):
// - in this process, concurrent callers for one owner share one promise (single flight);
// - across processes, the refresher first claims the token row (one conditional UPDATE); a process
//   that loses the claim polls the row until the winner releases it, then re-reads the new pair;
// - under the lock the row is re-read (another process may have refreshed meanwhile), and the new
//   pair is persisted before anyone is handed the new access token, because the refresh token
//   HighLevel just spent is gone for good.
// Failures map to states: "Invalid grant" → needs_reauth (the dead refresh token is forgotten so
// nothing retries it); "Location is not active" → paused (token untouched: it works again once the
// location is reactivated); network, timeout, 5xx, 429 → TransientTokenError with a backoff, tokens
// untouched. A location of an agency install is recovered by minting a new token with the agency's
// Company token instead of going to needs_reauth.
// The state is reported with a reason in Tandem's own words (REAUTH_REASON, PAUSED_REASON): the
// panel shows it as it is. HighLevel's answer stays in the thrown error's message, for the logs.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Db } from '../../db/client.ts';
import { getInstallation } from '../../db/installations.ts';
import {
  hasTokens,
  markRefreshDead,
  readTokens,
  releaseRefresh,
  saveGrant,
  storeRefreshed,
  storeRefreshedIfUnchanged,
  tokenRowId,
  tokenRowState,
  tryClaimRefresh,
  type StoredTokens,
  type TokenOwner,
} from '../../db/tokens.ts';
import type { Clock } from '../clock.ts';
import { TokenCipherError, type TokenCipher } from '../security/token-cipher.ts';
import { HighLevelError, classifyHighLevelError, isInvalidGrant, retryHintMs } from './http.ts';
import { mintLocationToken, refreshGrant, type HighLevelEndpoints, type TokenGrant, type UserType } from './oauth.ts';
import { backoffMs, needsRefresh, stillUsable } from './token-policy.ts';

export type OwnerStatus = 'needs_reauth' | 'paused' | 'active';

/** Why an owner needs re-authorization, as the panel shows it (what to do is the panel's to say). */
export const REAUTH_REASON = {
  /** HighLevel refused the grant: "Invalid grant" (revoked, expired, spent), or a mint it would not make. */
  revoked: 'HighLevel no longer accepts Tandem’s access to this sub-account: its authorization was revoked or has expired.',
  /** The agency's own grant is dead, so no location token can be minted from it. */
  agency: 'HighLevel no longer accepts Tandem’s access to the agency that installed it: its authorization was revoked or has expired.',
  /** Tandem holds nothing to ask HighLevel with (no refresh token, no agency token to mint one). */
  missing: 'Tandem holds no authorization from HighLevel for this sub-account.',
} as const;

/**
 * Why there is no token at all for an owner Tandem does not report on: uninstalled (an uninstall
 * deletes the tokens), or never installed. Not a state change, so never reported.
 */
export const UNINSTALLED_REASON = 'Tandem was uninstalled from this sub-account.';

/** Why an owner is paused, as the panel shows it. */
export const PAUSED_REASON = 'HighLevel reports this sub-account as inactive.';

interface StateErrorOptions extends ErrorOptions {
  /** The plain reason reported with the state; the message keeps HighLevel's own words for the logs. */
  reason?: string;
}

export class ReauthRequiredError extends Error {
  override readonly name = 'ReauthRequiredError';
  readonly reason: string;
  constructor(readonly owner: TokenOwner, message: string, options?: StateErrorOptions) {
    super(message, options);
    this.reason = options?.reason ?? REAUTH_REASON.revoked;
  }
}

export class LocationPausedError extends Error {
  override readonly name = 'LocationPausedError';
  readonly reason: string;
  constructor(readonly owner: TokenOwner, message: string, options?: StateErrorOptions) {
    super(message, options);
    this.reason = options?.reason ?? PAUSED_REASON;
  }
}

export class TransientTokenError extends Error {
  override readonly name = 'TransientTokenError';
  constructor(
    readonly owner: TokenOwner,
    /** Epoch ms (injected clock) before which trying again is pointless. */
    readonly retryAt: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface TokenProviderOptions {
  db: Db;
  cipher: TokenCipher;
  clock: Clock;
  endpoints: HighLevelEndpoints;
  /**
   * Told what each refresh or mint taught: needs_reauth/paused with a plain reason when one fails,
   * 'active' when one succeeds (so a recovery is reported even after a restart). Called every time,
   * not only on a change: it must be idempotent (write only a change), and must not revive an
   * uninstalled installation.
   */
  onStatus(owner: TokenOwner, status: OwnerStatus, reason: string | null): void;
  /**
   * How long a claimed refresh lock lasts (clock ms). It must outlive one refresh request (timeout
   * 20 s), the only step that spends a single-use token; the longer mint path spends none, so two
   * processes minting after a lapsed lock merely get two valid tokens.
   */
  lockTtlMs?: number;
  /** Real milliseconds a caller waits for another process's refresh before giving up (transiently). */
  waitTimeoutMs?: number;
  /** Real milliseconds between polls of a row another process is refreshing. */
  pollMs?: number;
  random?: () => number;
  /** Names this provider in the lock column; unique per instance by default. */
  lockOwner?: string;
}

export interface TokenProvider {
  locationToken(locationId: string): Promise<string>;
  companyToken(companyId: string): Promise<string>;
  /**
   * A location token other than `rejected`, which HighLevel refused ("Invalid JWT") before its
   * expiry: refreshed now (one refresh at a time, as always) unless the stored token already changed.
   */
  refreshLocationToken(locationId: string, rejected: string): Promise<string>;
}

const DEFAULT_LOCK_TTL_MS = 60_000;
const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
const DEFAULT_POLL_MS = 20;
/** Claim attempts per call: a winner that failed transiently hands the next claim to a waiter. */
const MAX_ROUNDS = 3;

const userTypeOf = (owner: TokenOwner): UserType => (owner.type === 'company' ? 'Company' : 'Location');
const describe = (owner: TokenOwner) => `${owner.type} ${owner.id}`;

export function createTokenProvider(options: TokenProviderOptions): TokenProvider {
  const { db, cipher, clock, endpoints } = options;
  const lockTtlMs = options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS;
  const waitTimeoutMs = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const random = options.random ?? Math.random;
  const lockOwner = options.lockOwner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  const inflight = new Map<string, Promise<string>>();
  /** Per owner: consecutive transient failures and when the next attempt is due (this process only). */
  const backoff = new Map<string, { attempts: number; retryAt: number }>();
  /** Access tokens HighLevel refused before their expiry: due for refresh whatever their age. */
  const refused = new Set<string>();
  const due = (t: StoredTokens, now: number) => needsRefresh(t, now) || refused.has(t.accessToken);

  /**
   * Every time: onStatus writes only a change. Remembering here what was reported hid a second
   * loss of access after a reconnect (the install callback sets the row active without this
   * provider knowing), so the panel said Connected (QA).
   */
  function report(owner: TokenOwner, status: OwnerStatus, reason: string | null): void {
    options.onStatus(owner, status, reason);
  }

  function succeeded(owner: TokenOwner): void {
    backoff.delete(tokenRowId(owner));
    report(owner, 'active', null);
  }

  function transient(owner: TokenOwner, cause: unknown): TransientTokenError {
    if (cause instanceof TransientTokenError) return new TransientTokenError(owner, cause.retryAt, cause.message, { cause });
    const id = tokenRowId(owner);
    const attempts = (backoff.get(id)?.attempts ?? 0) + 1;
    const hint = cause instanceof HighLevelError ? retryHintMs(cause) : undefined;
    const retryAt = clock.now() + backoffMs(attempts, random, hint);
    backoff.set(id, { attempts, retryAt });
    const why = cause instanceof Error ? cause.message : String(cause);
    return new TransientTokenError(owner, retryAt, `token refresh for ${describe(owner)} failed, retry later: ${why}`, { cause });
  }

  // `detail`, what HighLevel said, goes into the error's message for the logs; the panel gets `reason`.
  function reauth(owner: TokenOwner, reason: string, cause?: unknown, detail = cause instanceof Error ? cause.message : reason): ReauthRequiredError {
    report(owner, 'needs_reauth', reason);
    return new ReauthRequiredError(owner, `${describe(owner)} needs re-authorization: ${detail}`, { cause, reason });
  }

  function paused(owner: TokenOwner, cause: unknown): LocationPausedError {
    report(owner, 'paused', PAUSED_REASON);
    const detail = cause instanceof Error ? cause.message : PAUSED_REASON;
    return new LocationPausedError(owner, `${describe(owner)} is paused in HighLevel: ${detail}`, { cause });
  }

  /** Maps a failed HighLevel call to the owner's error (reporting the state), never leaving a raw HighLevelError. */
  function failure(owner: TokenOwner, err: unknown): Error {
    // A row no configured key opens is an operator's mistake (a missing old key), not HighLevel's answer.
    if (err instanceof ReauthRequiredError || err instanceof LocationPausedError || err instanceof TokenCipherError) return err;
    if (err instanceof TransientTokenError) return transient(owner, err);
    switch (classifyHighLevelError(err)) {
      case 'retry':
        return transient(owner, err);
      case 'paused':
        return paused(owner, err);
      default:
        // reauth, or an answer we do not understand (record): stop this owner. Either way only a
        // new authorization helps, which is all the admin needs to read.
        return reauth(owner, REAUTH_REASON.revoked, err);
    }
  }

  // async so that a failure to open the row rejects instead of throwing; everything before the
  // first await runs synchronously, so the in-flight entry is set before any other caller looks.
  async function token(owner: TokenOwner): Promise<string> {
    const id = tokenRowId(owner);
    const current = readTokens(db, cipher, owner);
    if (current && !due(current, clock.now())) return current.accessToken;
    const running = inflight.get(id);
    if (running) return running;
    const p = obtain(owner).finally(() => inflight.delete(id));
    inflight.set(id, p);
    return p;
  }

  async function obtain(owner: TokenOwner): Promise<string> {
    const id = tokenRowId(owner);
    for (let round = 1; ; round++) {
      const now = clock.now();
      const current = readTokens(db, cipher, owner);
      if (!current) return mintWithoutRow(owner);
      if (!due(current, now)) return current.accessToken;
      const gate = backoff.get(id);
      if (gate && now < gate.retryAt) {
        if (stillUsable(current, now)) return current.accessToken;
        throw new TransientTokenError(owner, gate.retryAt, `token refresh for ${describe(owner)} is backing off`);
      }
      if (tryClaimRefresh(db, id, lockOwner, now, lockTtlMs)) return refreshHoldingLock(owner);
      await waitForRelease(owner);
      if (round >= MAX_ROUNDS) {
        const after = readTokens(db, cipher, owner);
        if (after && !due(after, clock.now())) return after.accessToken;
        throw transient(owner, new Error('another process kept the refresh lock'));
      }
    }
  }

  /** Polls (real time, bounded) until no live lock is held on the owner's row by someone else. */
  async function waitForRelease(owner: TokenOwner): Promise<void> {
    const deadline = performance.now() + waitTimeoutMs;
    for (;;) {
      const state = tokenRowState(db, owner);
      if (!state || state.lockUntil === null || state.lockUntil < clock.now()) return;
      if (performance.now() > deadline) throw transient(owner, new Error('timed out waiting for another process to refresh'));
      await delay(pollMs);
    }
  }

  async function refreshHoldingLock(owner: TokenOwner): Promise<string> {
    const id = tokenRowId(owner);
    try {
      // Re-read under the lock: the pair may have been refreshed since the first read.
      const current = readTokens(db, cipher, owner);
      if (!current) throw new ReauthRequiredError(owner, `${describe(owner)} has no stored tokens`, { reason: UNINSTALLED_REASON });
      if (!due(current, clock.now())) return current.accessToken;
      const grant = await renew(owner, current);
      if (!grant) return current.accessToken;
      if (!store(id, current, grant)) {
        // Someone stored a newer pair while we waited (a reinstall): ours is valid but not kept.
        return grant.accessToken;
      }
      succeeded(owner);
      return grant.accessToken;
    } finally {
      releaseRefresh(db, id, lockOwner);
    }
  }

  function store(id: string, spent: StoredTokens, grant: TokenGrant): boolean {
    const now = clock.now();
    if (storeRefreshed(db, cipher, id, lockOwner, grant, now)) return true;
    return spent.sealedRefreshToken !== null && storeRefreshedIfUnchanged(db, cipher, id, spent.sealedRefreshToken, grant, now);
  }

  /**
   * A new grant for an owner whose lock we hold: refresh, or mint for an agency location. Null when
   * a refresh ahead of expiry failed transiently: the next attempt is scheduled and the current,
   * still valid token carries on meanwhile.
   */
  async function renew(owner: TokenOwner, current: StoredTokens): Promise<TokenGrant | null> {
    if (current.refreshToken === null || current.sealedRefreshToken === null) {
      const minted = await mintForLocation(owner, current.companyId);
      // Its refresh token was refused before (and forgotten): the same case as that refusal.
      if (!minted) throw reauth(owner, REAUTH_REASON.revoked, undefined, 'no refresh token stored');
      return minted;
    }
    try {
      return await refreshGrant(endpoints, current.refreshToken, userTypeOf(owner), clock.now());
    } catch (err) {
      const kind = classifyHighLevelError(err);
      if (kind === 'retry' && stillUsable(current, clock.now())) {
        transient(owner, err);
        return null;
      }
      if (isInvalidGrant(err)) {
        markRefreshDead(db, current.id, current.sealedRefreshToken);
        const minted = await mintForLocation(owner, current.companyId);
        if (minted) return minted;
      }
      throw failure(owner, err);
    }
  }

  /**
   * For a location of an agency install: a new Location token from the agency's Company token
   * (itself obtained through this provider). Undefined when there is no Company token to use.
   */
  async function mintForLocation(owner: TokenOwner, companyId: string): Promise<TokenGrant | undefined> {
    if (owner.type !== 'location') return undefined;
    const company: TokenOwner = { type: 'company', id: companyId };
    if (!hasTokens(db, company)) return undefined;
    let companyAccess: string;
    try {
      companyAccess = await token(company);
    } catch (err) {
      if (err instanceof ReauthRequiredError) throw reauth(owner, REAUTH_REASON.agency, err);
      if (err instanceof LocationPausedError) throw paused(owner, err);
      throw failure(owner, err);
    }
    try {
      return await mintLocationToken(endpoints, companyAccess, companyId, owner.id, clock.now());
    } catch (err) {
      throw failure(owner, err);
    }
  }

  /**
   * No row for this owner: a location of an agency install (still installed) gets a minted token;
   * anything else was never installed or was uninstalled, which is not a state change to report.
   */
  async function mintWithoutRow(owner: TokenOwner): Promise<string> {
    const installation = owner.type === 'location' ? getInstallation(db, owner.id) : undefined;
    if (!installation || installation.status === 'uninstalled') {
      throw new ReauthRequiredError(owner, `${describe(owner)} has no stored tokens`, { reason: UNINSTALLED_REASON });
    }
    const grant = await mintForLocation(owner, installation.companyId);
    if (!grant) throw reauth(owner, REAUTH_REASON.missing, undefined, 'no tokens stored and no agency token to mint one');
    // Uninstalled while we were minting: keep no token for it.
    if (getInstallation(db, owner.id)?.status === 'uninstalled') throw new ReauthRequiredError(owner, `${describe(owner)} was uninstalled`, { reason: UNINSTALLED_REASON });
    saveGrant(db, cipher, grant, clock.now());
    succeeded(owner);
    return grant.accessToken;
  }

  async function replaceRefused(owner: TokenOwner, rejected: string): Promise<string> {
    refused.add(rejected);
    const fresh = await token(owner);
    // The stored token moved on: the refused one is never handed out again. (On failure it stays
    // refused, so the next call tries again, after the usual backoff.)
    if (fresh !== rejected) refused.delete(rejected);
    return fresh;
  }

  return {
    locationToken: (locationId) => token({ type: 'location', id: locationId }),
    companyToken: (companyId) => token({ type: 'company', id: companyId }),
    refreshLocationToken: (locationId, rejected) => replaceRefused({ type: 'location', id: locationId }, rejected),
  };
}
