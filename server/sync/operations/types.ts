// The contract between the one-time operations runner (runner.ts: lifecycle, lease, checkpoints,
// cancel, progress events) and each operation (push.ts, pull.ts, sync-users.ts, undo.ts: what it
// reads, decides and writes). The runner knows no HighLevel or contact detail; a handler knows no
// lifecycle detail beyond the context it is given.
import type { FastifyBaseLogger as Logger } from 'fastify';
import type { Db } from '../../../db/client.ts';
import type { OperationItemRow, OperationRow } from '../../../db/operations.ts';
import type { OperationKind } from '../../../db/schema.ts';
import type { SyncSettings } from '../../../db/sync-settings.ts';
import type { Clock } from '../../clock.ts';
import type { LocationApi } from '../../highlevel/contacts.ts';

export type { OperationKind };
export type Side = 'tandem' | 'highlevel';

/** Per side, what a run did (or, in a preview, will do) to contacts. */
export interface SideCounts {
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  failed: number;
  /** Deleted (HighLevel) or archived (Tandem): only an undo removes what its run created. */
  removed: number;
}
export type Counts = Record<Side, SideCounts>;

/** A count in words for a preview's notes: "1 contact was", "3 contacts were". */
export function counted(n: number, one: string, many: string): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

export function emptyCounts(): Counts {
  const side = (): SideCounts => ({ created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0, removed: 0 });
  return { tandem: side(), highlevel: side() };
}

/** One field a run changes on one record, for the preview's sample. */
export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

export interface ContactSample {
  /** Tandem's contact id and/or HighLevel's, whichever exist. */
  contactId?: string;
  highlevelId?: string;
  /** A name or email the admin recognises. */
  label: string;
  side: Side;
  action: 'create' | 'update' | 'remove';
  changes: FieldChange[];
}

export interface UserChange {
  name: string;
  email: string;
  /** What Sync users does with this user and why, in plain words. */
  action: 'add' | 'pair' | 'repair' | 'unpair';
  reason: string;
}

export interface OwnerChanges {
  /** Contacts whose Tandem owner changes to the user paired with their HighLevel owner. */
  change: number;
  /** Contacts left without an owner, and why (grouped reasons with counts). */
  lose: number;
  reasons: Array<{ reason: string; contacts: number }>;
  sample: Array<{ contactId: string; label: string; from: string | null; to: string | null }>;
}

/** What the confirmation dialog shows; stored with the operation as it was shown. */
export interface Preview {
  counts: Counts;
  /** Up to SAMPLE_SIZE records with their field-level changes. */
  samples: ContactSample[];
  users?: UserChange[];
  owners?: OwnerChanges;
  /** HighLevel requests the run is expected to need (reads included). */
  requests: number;
  /** How long the rate limits make it take at least, in ms. */
  durationMs: number;
  /** Anything else the admin should know before confirming, in plain words. */
  notes: string[];
  /**
   * The continuous sync was paused (the Sync tab's pause) when the preview was read: the run still
   * goes ahead once confirmed (nothing in it waits for the loop), and the dialog says so.
   */
  syncPaused?: boolean;
}

export const SAMPLE_SIZE = 20;

export interface Progress {
  phase: string;
  /** Records the run will look at (null while unknown). */
  total: number | null;
  done: number;
  counts: Counts;
  /** Sync users: users added, paired, repaired, unpaired, skipped (by action). */
  users?: Record<string, number>;
  /** HighLevel requests made so far. */
  requests: number;
  /** Estimated ms left (null while unknown). */
  etaMs: number | null;
  /**
   * Why the work is held up, in plain words, while it waits out HighLevel's daily budget, a 429, a
   * token refresh backing off or HighLevel not answering (null or absent while it moves).
   */
  waiting?: string | null;
  /**
   * What holds the work up while `waiting` says so: HighLevel's daily limit used up, a 429, a token
   * refresh backing off, or HighLevel failing for now ('retry': no answer, a timeout, a 5xx); with
   * `waitingUntil` (ISO), when the work goes on. The panel words these itself, in the viewer's time
   * zone; `waiting` is for any other reader.
   */
  waitingFor?: 'daily' | 'rate_limited' | 'token' | 'retry' | null;
  waitingUntil?: string | null;
  /**
   * A finished run's failed and skipped records grouped by their recorded reason, the largest
   * groups first (REASON_GROUPS at most of each): what the panel says about them at a glance.
   */
  reasons?: Record<'failed' | 'skipped', ReasonGroup[]>;
}

/** Records of one outcome that share a reason. */
export interface ReasonGroup {
  reason: string;
  count: number;
  entity: 'contact' | 'user';
  /** The record's name when the group is that one record (null for a larger group). */
  label: string | null;
}

/** Reason groups a finished run keeps of each outcome; the records themselves list every one. */
export const REASON_GROUPS = 3;

/** One record's outcome in a run, written through `RunContext.record`. */
export interface ItemInput {
  key: string;
  entity: 'contact' | 'user';
  side: Side;
  action: string;
  /** 'pending' before a HighLevel write (with `before`), 'done' once committed. Default 'done'. */
  state?: 'pending' | 'done';
  contactId?: string | null;
  highlevelId?: string | null;
  label?: string | null;
  reason?: string | null;
  before?: unknown;
  after?: unknown;
}

export interface BaseContext {
  db: Db;
  clock: Clock;
  log: Logger;
  locationId: string;
  operation: OperationRow;
  settings: SyncSettings;
  /**
   * The location's HighLevel API through the SAME budget gate as the continuous loop, leaving a
   * share of each burst window to the loop. Budget deferrals are waited out inside (a background
   * job has no request to answer), and cancellation interrupts the wait.
   */
  api: LocationApi;
  /** Rate figures for estimates: requests per window. */
  rate: { max: number; intervalMs: number };
}

export interface PreviewContext extends BaseContext {
  /** Reports preview progress (reading pages) to the panel. */
  progress(p: Partial<Progress>): void;
}

export interface RunContext extends BaseContext {
  /** The checkpoint saved last (null on a fresh start). */
  checkpoint: unknown;
  saveCheckpoint(checkpoint: unknown): void;
  /**
   * Call between records: throws OperationCancelled when the admin cancelled, renews the lease,
   * and (tests only) throws SimulatedCrash at a named point.
   */
  step(point?: string): void;
  progress(p: Partial<Progress>): void;
  /**
   * Writes or replaces one record's outcome (idempotent per key); the run's counts follow the items
   * in state 'done' (contacts: the action must be a SideCounts key; users: any action word).
   */
  record(item: ItemInput): void;
  item(key: string): OperationItemRow | undefined;
}

export interface OperationHandler {
  kind: OperationKind;
  /** Read-only: what a run would do now. Nothing is written anywhere. */
  preview(ctx: PreviewContext): Promise<Preview>;
  /** Runs, or resumes from ctx.checkpoint; every record is idempotent (items are keyed). */
  run(ctx: RunContext): Promise<void>;
}

/** The admin cancelled: the run stops between two records, both sides consistent. */
export class OperationCancelled extends Error {
  override readonly name = 'OperationCancelled';
}

/** The run stops (failed) with this plain message for the admin, having written nothing more. */
export class RunStopped extends Error {
  override readonly name: string = 'RunStopped';
}

/** Thrown by `step(point)` when a test asked to crash there (T16); the runner treats it as a process death. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
  constructor(readonly point: string) {
    super(`simulated crash at ${point}`);
  }
}
