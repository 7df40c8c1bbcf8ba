// Tandem's long-lived services, assembled once from the configuration: the token cipher, HighLevel
// endpoints, the token provider, install orchestration and the webhook inbox processor. buildApp
// receives them as `deps.services`; the routes are thin adapters over them.
import type { KeyObject } from 'node:crypto';
import pino from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import type { Database } from '../db/client.ts';
import { getCompany, getInstallation, setCompanyStatus, setInstallationStatus } from '../db/installations.ts';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { HighLevelEndpoints } from './highlevel/oauth.ts';
import { createTokenProvider, type TokenProvider } from './highlevel/token-provider.ts';
import { parseWebhookPublicKey } from './highlevel/webhook-signature.ts';
import { eventHandler, queuesForLoop } from './installs/apply-event.ts';
import { createInboxWriter, type InboxWriter } from './installs/inbox-writer.ts';
import { createInboxProcessor, type InboxProcessor } from './installs/inbox-processor.ts';
import { createInstalls, type Installs } from './installs/installs.ts';
import { loggerOptions } from './log.ts';
import { createTokenCipher, type TokenCipher } from './security/token-cipher.ts';
import { createSupervisor, type Supervisor, type SyncOptions } from './sync/supervisor.ts';
import { operationHandlers } from './sync/operations/index.ts';
import { createOperations, type Operations, type OperationsOptions } from './sync/operations/runner.ts';

export interface Services {
  clock: Clock;
  cipher: TokenCipher;
  endpoints: HighLevelEndpoints;
  /** Access tokens per location or agency, refreshed as needed (one refresh at a time). */
  tokens: TokenProvider;
  installs: Installs;
  /** Stores verified webhook events (the receiver's group commit), contact events queued for their loop. */
  webhookInbox: InboxWriter;
  /** Applies stored webhook events outside the request. */
  inbox: InboxProcessor;
  /**
   * The contact sync loop, one per active location. Not started here (start.ts starts it after
   * listen); `wake(locationId)` after a Tandem-side write runs the location's pass soon.
   */
  sync: Supervisor;
  /** One-time operations (Push contacts, Pull contacts, Sync users, undo): started with the loop. */
  operations: Operations;
  /** Verifies `x-ghl-signature`. */
  webhookKey: KeyObject;
  /** This app's id (the client id's part before the first '-'); webhooks for other apps are refused. */
  appId: string;
  /** Stops background work and waits for what is running; idempotent. */
  close(): Promise<void>;
}

export interface ServicesOptions {
  config: Config;
  db: Database;
  clock: Clock;
  /** A ready logger, or false for none (default: pino with Tandem's options). */
  logger?: FastifyBaseLogger | false;
  /** Inbox sweep interval in real ms; 0 disables the sweep (tests drive `inbox.runOnce()`). */
  inboxSweepMs?: number;
  /** Outbound HTTP for HighLevel calls (default global fetch). */
  fetch?: typeof fetch;
  /** The sync loop's tuning (page size, intervals); see server/sync/supervisor.ts. */
  sync?: SyncOptions;
  /** One-time operations' tuning (lease, sweep, test crash points); see server/sync/operations/runner.ts. */
  operations?: OperationsOptions;
}

export function createServices(options: ServicesOptions): Services {
  const { config, clock } = options;
  const db = options.db.db;
  const log: FastifyBaseLogger =
    options.logger === false
      ? (pino({ level: 'silent' }) as FastifyBaseLogger)
      : (options.logger ?? (pino(loggerOptions(config)) as FastifyBaseLogger));

  // Keys from before a rotation still open old rows, which are resealed on their next refresh.
  const cipher = createTokenCipher(config.tokenEncryptionKey, config.tokenEncryptionKeysOld);
  const endpoints: HighLevelEndpoints = {
    apiUrl: config.highlevel.apiUrl,
    clientId: config.highlevel.clientId,
    clientSecret: config.highlevel.clientSecret,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };

  const tokens = createTokenProvider({
    db,
    cipher,
    clock,
    endpoints,
    // The provider reports what refreshing taught it. An uninstalled location stays uninstalled:
    // a refresh that fails because HighLevel revoked the token on uninstall is not a re-auth case.
    onStatus(owner, status, reason) {
      const now = clock.now();
      if (owner.type === 'location') {
        const current = getInstallation(db, owner.id);
        if (!current || current.status === 'uninstalled') return;
        if (current.status !== status || current.statusReason !== reason) setInstallationStatus(db, owner.id, status, now, reason);
        return;
      }
      const company = getCompany(db, owner.id);
      if (!company || company.status === 'uninstalled' || status === 'paused') return;
      if (company.status !== status) setCompanyStatus(db, owner.id, status, now);
    },
  });

  // Installs queue work into the inbox, and the inbox applies events through installs.
  const processor: { current?: InboxProcessor } = {};
  const installs = createInstalls({ db, cipher, clock, endpoints, tokens, log, onQueued: () => processor.current?.schedule() });
  const sync = createSupervisor({ db, clock, endpoints, tokens, log, options: options.sync });
  const operations = createOperations({ db, clock, log, sync, handlers: operationHandlers, options: options.operations });
  const inbox = createInboxProcessor({
    db,
    clock,
    log,
    handle: eventHandler(installs, {
      db,
      wake: (locationId) => sync.wake(locationId),
      usersChanged: (locationId) => sync.usersChanged(locationId),
      locationChanged: (locationId) => sync.locationChanged(locationId),
    }),
    sweepIntervalMs: options.inboxSweepMs,
  });
  processor.current = inbox;
  const webhookInbox = createInboxWriter(db, {
    wake: () => inbox.schedule(),
    forLoop: queuesForLoop(db),
    wakeLoops: (locationIds) => locationIds.forEach((id) => sync.wake(id)),
  });

  let closing: Promise<void> | undefined;
  return {
    clock,
    cipher,
    endpoints,
    tokens,
    installs,
    webhookInbox,
    inbox,
    sync,
    operations,
    webhookKey: parseWebhookPublicKey(config.highlevel.webhookPublicKeyPem),
    appId: config.highlevel.appId,
    close() {
      closing ??= Promise.all([inbox.close(), operations.stop(), sync.stop()]).then(() => undefined);
      return closing;
    },
  };
}
