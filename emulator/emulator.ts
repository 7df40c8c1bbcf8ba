// The emulator's state and the operations every route module shares: contact versions (for the
// search lag), installs and their webhook fan-out, fault rules and the request log.
import { chmodSync, readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { generateKeyPairSync, type KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';
import {
  defaultConfig,
  emptyWorld,
  systemClock,
  type Clock,
  type ContactDoc,
  type ContactVersion,
  type EmulatorConfig,
  type Installation,
  type MarketplaceApp,
  type RateLimitConfig,
  type World,
} from './state.ts';
import { WebhookDispatcher } from './webhooks.ts';

/** A partial configuration; the rate limit may be changed one field at a time. */
export type ConfigPatch = Omit<Partial<EmulatorConfig>, 'rateLimit'> & { rateLimit?: Partial<RateLimitConfig> };

export interface FaultRule {
  id: number;
  method?: string;
  /** Path prefix or, when it starts with '^', a regular expression matched against the path. */
  path?: string;
  locationId?: string;
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Delay before answering (or before the fault), in ms. */
  delayMs?: number;
  /** Destroy the connection without an answer. */
  drop?: boolean;
  /** Let the request through to the real handler, then drop the connection (the write happened). */
  dropAfterHandling?: boolean;
  /** How many matching requests this rule still applies to. */
  remaining: number;
}

/** A test's request that contact writes reach search late (Emulator.delaySearch). */
export interface SearchDelay {
  delayMs: number;
  /** Only writes to this location / this contact; absent: any. */
  locationId?: string;
  contactId?: string;
  /** How many matching writes this delay still applies to. */
  remaining: number;
}

/** Which version of a contact search shows at a given time, and while that stays so. */
export interface SearchChoice {
  /** Index in the contact's versions; -1: none (search does not know the contact). */
  index: number;
  /** The choice holds while the time is in [from, until). */
  from: number;
  until: number;
}

export interface RequestLogEntry {
  seq: number;
  at: string;
  method: string;
  path: string;
  query: Record<string, unknown>;
  /** HTTP status answered; 0 when a fault dropped the connection. */
  status: number;
  locationId?: string;
  companyId?: string;
  appId?: string;
  tokenKind?: 'oauth' | 'private';
  durationMs: number;
  fault?: number;
}

export interface EmulatorOptions {
  clock?: Clock;
  config?: ConfigPatch;
  /** Where the world is saved (JSON) after changes, so the sandbox survives restarts. */
  persistPath?: string;
  /** PEM of an Ed25519 private key to sign webhooks with; generated when absent. */
  webhookPrivateKeyPem?: string;
}

export class Emulator {
  readonly clock: Clock;
  config: EmulatorConfig;
  world: World;
  /** locationId -> contact ids (current and deleted-but-still-visible-to-search). */
  private contactIndex = new Map<string, Set<string>>();
  /** Bumped by every contact write and reset, so caches over contacts (search) know to look again. */
  contactWriteSeq = 0;
  faults: FaultRule[] = [];
  /** Requests a fault's delay is holding: each entry lets its request go on at once, by the fault's id. */
  readonly delayed = new Map<() => void, number>();
  private nextFaultId = 1;
  searchDelays: SearchDelay[] = [];
  requestLog: RequestLogEntry[] = [];
  private nextRequestSeq = 1;
  readonly webhookKey: { privateKey: KeyObject; publicKey: KeyObject; publicKeyPem: string };
  readonly webhooks: WebhookDispatcher;
  /** Set once the HTTP server listens. */
  baseUrl = '';
  private readonly persistPath?: string;
  private persistTimer?: NodeJS.Timeout;

  constructor(options: EmulatorOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.config = mergeConfig(defaultConfig, options.config);
    this.persistPath = options.persistPath;
    this.world = emptyWorld();
    if (this.persistPath) this.load(this.persistPath);
    const privateKey = options.webhookPrivateKeyPem
      ? createPrivateKey(options.webhookPrivateKeyPem)
      : generateKeyPairSync('ed25519').privateKey;
    const publicKey = createPublicKey(privateKey);
    this.webhookKey = {
      privateKey,
      publicKey,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
    this.webhooks = new WebhookDispatcher(this);
  }

  now(): number {
    return this.clock.now();
  }

  setConfig(patch: ConfigPatch): void {
    this.config = mergeConfig(this.config, patch);
  }

  // ---- contacts -------------------------------------------------------------------------------

  /** The contact as GET sees it: always the latest write. */
  contact(id: string): ContactDoc | null {
    const versions = this.world.contacts[id];
    if (!versions || versions.length === 0) return null;
    return versions[versions.length - 1]!.doc;
  }

  /**
   * When search starts showing a version: the time fixed when it was written (the lag then, a
   * random jitter, a test's delay), so that writes may reach search out of order, as HighLevel's
   * "a few seconds" allows; and never before `at` + the CURRENT lag. That floor keeps what the lag
   * meant when it was judged only at read time: raising searchLagMs hides recent writes too (tests
   * set it after writing, e.g. to make a pull see an older version). Lowering it reveals no pending
   * write early: a write's own time still holds, as an index does not jump its queue.
   */
  searchVisibleAt(v: ContactVersion): number {
    return Math.max(v.visibleAt, v.at + this.config.searchLagMs);
  }

  /**
   * The version search shows at `now`: the newest one visible by then. A newer version overtakes
   * an older one still pending (that one is never shown), as an index keeps the latest write. The
   * search snapshot (contact-search.ts) uses the same choice and its bounds.
   */
  searchChoice(versions: ContactVersion[], now: number): SearchChoice {
    let until = Infinity;
    for (let i = versions.length - 1; i >= 0; i--) {
      const visibleAt = this.searchVisibleAt(versions[i]!);
      if (visibleAt <= now) return { index: i, from: visibleAt, until };
      until = Math.min(until, visibleAt);
    }
    return { index: -1, from: -Infinity, until };
  }

  /** The contact as search sees it (searchChoice). */
  contactForSearch(id: string): ContactDoc | null {
    const versions = this.world.contacts[id];
    if (!versions) return null;
    const { index } = this.searchChoice(versions, this.now());
    return index < 0 ? null : versions[index]!.doc;
  }

  /** Ids of every contact of a location that GET or search may still see. */
  contactIds(locationId: string): Iterable<string> {
    return this.contactIndex.get(locationId) ?? [];
  }

  /**
   * The next `times` (default 1) contact writes matching the rule (a location, a contact, or any)
   * reach search `delayMs` later than the lag and its jitter alone would make them: a test's
   * deterministic way to have one write show after later ones. Cleared by reset().
   */
  delaySearch(rule: { delayMs: number; locationId?: string; contactId?: string; times?: number }): void {
    const { times, ...rest } = rule;
    this.searchDelays.push({ ...rest, remaining: times ?? 1 });
  }

  /** The delay a write gets: the jitter, plus the first matching delaySearch rule (consumed). */
  private extraSearchDelay(id: string, locationId: string): number {
    const jitter = this.config.searchLagJitterMs > 0 ? Math.floor(Math.random() * this.config.searchLagJitterMs) : 0;
    const rule = this.searchDelays.find((d) => (!d.locationId || d.locationId === locationId) && (!d.contactId || d.contactId === id));
    if (!rule) return jitter;
    if (--rule.remaining <= 0) this.searchDelays = this.searchDelays.filter((d) => d !== rule);
    return jitter + rule.delayMs;
  }

  /** Records a new version (doc) or a deletion (null). */
  writeContact(id: string, locationId: string, doc: ContactDoc | null): void {
    const now = this.now();
    this.contactWriteSeq++;
    const versions = (this.world.contacts[id] ??= []);
    versions.push({ at: now, visibleAt: now + this.config.searchLagMs + this.extraSearchDelay(id, locationId), doc });
    // Keep only what search can still show: the version it shows now, and later ones.
    const { index } = this.searchChoice(versions, now);
    if (index > 0) versions.splice(0, index);
    // A deletion search already shows, with nothing before it: search no longer knows the contact.
    if (versions.length === 1 && versions[0]!.doc === null && index >= 0) {
      delete this.world.contacts[id];
      this.contactIndex.get(locationId)?.delete(id);
    } else {
      let set = this.contactIndex.get(locationId);
      if (!set) this.contactIndex.set(locationId, (set = new Set()));
      set.add(id);
    }
    this.changed();
  }

  // ---- installs and webhooks --------------------------------------------------------------------

  /** Apps whose installation covers this location (direct install, or agency install approving it). */
  appsInstalledOn(locationId: string): MarketplaceApp[] {
    const location = this.world.locations[locationId];
    if (!location) return [];
    const appIds = new Set<string>();
    for (const inst of this.world.installations) {
      if (inst.locationId === locationId) appIds.add(inst.appId);
      else if (!inst.locationId && inst.companyId === location.companyId && inst.approvedLocations.includes(locationId)) {
        appIds.add(inst.appId);
      }
    }
    return [...appIds].map((id) => this.world.apps[id]!).filter(Boolean);
  }

  installationFor(appId: string, locationId: string): Installation | undefined {
    return this.world.installations.find((i) => i.appId === appId && i.locationId === locationId);
  }

  /** Sends an event about a location to every app installed there (the app's own writes included). */
  emitLocationEvent(locationId: string, payload: Record<string, unknown>): void {
    for (const app of this.appsInstalledOn(locationId)) this.webhooks.send(app, payload);
  }

  /** Sends an event about a company (agency-level users) to every app installed in that company. */
  emitCompanyEvent(companyId: string, payload: Record<string, unknown>): void {
    const appIds = new Set(this.world.installations.filter((i) => i.companyId === companyId).map((i) => i.appId));
    for (const appId of appIds) {
      const app = this.world.apps[appId];
      if (app) this.webhooks.send(app, payload);
    }
  }

  // ---- faults and request log ---------------------------------------------------------------------

  addFault(rule: Omit<FaultRule, 'id' | 'remaining'> & { times?: number }): FaultRule {
    const { times, ...rest } = rule;
    const added: FaultRule = { ...rest, id: this.nextFaultId++, remaining: times ?? 1 };
    this.faults.push(added);
    return added;
  }

  /** Finds and consumes the first fault rule matching a request. */
  takeFault(method: string, path: string, locationId: string | undefined): FaultRule | undefined {
    const rule = this.faults.find(
      (f) =>
        f.remaining > 0 &&
        (!f.method || f.method.toUpperCase() === method.toUpperCase()) &&
        (!f.path || (f.path.startsWith('^') ? new RegExp(f.path).test(path) : path.startsWith(f.path))) &&
        (!f.locationId || f.locationId === locationId),
    );
    if (!rule) return undefined;
    rule.remaining--;
    if (rule.remaining <= 0) this.faults = this.faults.filter((f) => f !== rule);
    return rule;
  }

  /**
   * Removes fault rules (one by its id, or all) and lets the requests their delays hold go on now,
   * so a test can hold a request for exactly as long as it needs. True when something was removed.
   */
  clearFaults(id?: number): boolean {
    const before = this.faults.length;
    this.faults = id === undefined ? [] : this.faults.filter((f) => f.id !== id);
    const held = [...this.delayed].filter(([, faultId]) => id === undefined || faultId === id);
    for (const [release] of held) release();
    return this.faults.length < before || held.length > 0;
  }

  logRequest(entry: Omit<RequestLogEntry, 'seq'>): void {
    this.requestLog.push({ seq: this.nextRequestSeq++, ...entry });
    // Bounded: benchmarks send hundreds of thousands of requests.
    if (this.requestLog.length > 200_000) this.requestLog.splice(0, 50_000);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  reset(): void {
    this.world = emptyWorld();
    this.contactIndex.clear();
    this.contactWriteSeq++;
    this.clearFaults();
    this.searchDelays = [];
    this.requestLog = [];
    this.webhooks.reset();
    this.changed();
  }

  /** Marks the world dirty; it is saved shortly after (debounced) when persistence is on. */
  changed(): void {
    if (!this.persistPath || this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      this.save();
    }, 200);
    this.persistTimer.unref();
  }

  save(): void {
    if (!this.persistPath) return;
    if (this.persistTimer) {
      clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
    }
    mkdirSync(dirname(this.persistPath), { recursive: true });
    const tmp = `${this.persistPath}.tmp`;
    // Its owner's only: the world holds the app's client secret, shared secret and tokens.
    writeFileSync(tmp, JSON.stringify(this.world), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.persistPath);
  }

  private load(path: string): void {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return;
    }
    this.world = { ...emptyWorld(), ...(JSON.parse(text) as Partial<World>) };
    for (const [id, versions] of Object.entries(this.world.contacts)) {
      // Saved before versions had their own visibility time: as they were, visible after the lag.
      for (const v of versions) v.visibleAt ??= v.at;
      const last = versions[versions.length - 1];
      const locationId = last?.doc?.locationId ?? versions.find((v) => v.doc)?.doc?.locationId;
      if (!locationId) continue;
      let set = this.contactIndex.get(locationId);
      if (!set) this.contactIndex.set(locationId, (set = new Set()));
      set.add(id);
    }
  }

  close(): void {
    this.webhooks.close();
    this.save();
  }
}

function mergeConfig(
  base: EmulatorConfig,
  patch?: ConfigPatch,
): EmulatorConfig {
  if (!patch) return { ...base, rateLimit: { ...base.rateLimit } };
  return { ...base, ...patch, rateLimit: { ...base.rateLimit, ...(patch.rateLimit ?? {}) } };
}
