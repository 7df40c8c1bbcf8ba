// The emulator's whole world: plain data, serialisable to JSON so the sandbox survives restarts.
// Route modules read and change it; nothing here speaks HTTP.
import { clientIdFor, hexToken, objectId, recordId } from './ids.ts';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface RateLimitConfig {
  /** Requests allowed per burst window (HighLevel: 100). */
  burstMax: number;
  /** Burst window length in ms (HighLevel: 10,000). */
  burstWindowMs: number;
  /** Requests allowed per day (HighLevel: 200,000). */
  dailyMax: number;
}

export interface EmulatorConfig {
  rateLimit: RateLimitConfig;
  /** Access-token lifetime in seconds (HighLevel: 86399). */
  accessTokenTtlSec: number;
  /** Refresh-token lifetime in seconds (HighLevel: one year). */
  refreshTokenTtlSec: number;
  /** Authorization-code lifetime in seconds (undocumented; guess: 10 minutes). */
  authCodeTtlSec: number;
  /** How long a write takes to become visible in POST /contacts/search (0 = at once). */
  searchLagMs: number;
  /**
   * A random extra delay in [0, searchLagJitterMs) drawn for each write on top of searchLagMs, so
   * writes may reach search out of order (HighLevel promises only "a few seconds", no order).
   */
  searchLagJitterMs: number;
  /** Delay before a webhook answered with 429 is sent again (HighLevel: 10 min + jitter). */
  webhookRetryIntervalMs: number;
  /** Redeliveries after the first attempt (HighLevel: 6). */
  webhookMaxRetries: number;
  /** Per-attempt delivery timeout (undocumented; guess: 10 s). */
  webhookTimeoutMs: number;
  /** Deliveries in flight at once per app (undocumented; guess: 8, see README). */
  webhookConcurrency: number;
}

export const defaultConfig: EmulatorConfig = {
  rateLimit: { burstMax: 100, burstWindowMs: 10_000, dailyMax: 200_000 },
  accessTokenTtlSec: 86_399,
  refreshTokenTtlSec: 365 * 24 * 3600,
  authCodeTtlSec: 600,
  searchLagMs: 0,
  searchLagJitterMs: 0,
  webhookRetryIntervalMs: 10 * 60_000,
  webhookMaxRetries: 6,
  webhookTimeoutMs: 10_000,
  webhookConcurrency: 8,
};

export interface Company {
  id: string;
  name: string;
  /** White-label domain shown in INSTALL webhooks, when the agency has one. */
  whitelabelDomain?: string;
}

export interface LocationSettings {
  allowDuplicateContact: boolean;
  allowDuplicateOpportunity: boolean;
  allowFacebookNameMerge: boolean;
  disableContactTimezone: boolean;
}

export interface Location {
  id: string;
  companyId: string;
  name: string;
  email?: string;
  phone?: string;
  address?: string;
  city?: string;
  state?: string;
  country?: string;
  postalCode?: string;
  website?: string;
  timezone: string;
  settings: LocationSettings;
  /** false = SaaS-paused: refresh answers "Location is not active". */
  active: boolean;
  /** Private integration token: a Location-Access bearer token standing for a person or tool. */
  privateToken: string;
  dateAdded: string;
}

export type UserRoleType = 'agency' | 'account';
export type UserRole = 'admin' | 'user';

export interface User {
  id: string;
  companyId: string;
  firstName: string;
  lastName: string;
  email: string;
  phone?: string;
  extension?: string;
  roles: { type: UserRoleType; role: UserRole; locationIds: string[]; restrictSubAccount: boolean };
  /** Deactivated users still exist but cannot sign in; HighLevel has no documented field, we expose it. */
  deactivated: boolean;
  deleted: boolean;
  /** Epoch ms at which a queued delete takes effect. */
  deleteAt?: number;
  dateAdded: string;
}

export type CustomFieldModel = 'contact' | 'opportunity';

/**
 * A custom field definition of a location, stored in the shape GET /locations/{id}/customFields
 * answers (apps/locations.json CustomFieldSchema) plus when it was made, for a stable order.
 */
export interface CustomField {
  /** 20-char record id, what contact documents carry in `customFields[].id`. */
  id: string;
  name: string;
  /** `<model>.<snake_case name>`, fixed at creation: what a write's `customFields[].key` names. */
  fieldKey: string;
  placeholder?: string;
  /** TEXT, LARGE_TEXT, NUMERICAL, MONETORY, SINGLE_OPTIONS, MULTIPLE_OPTIONS, … (CUSTOM_FIELD_DATA_TYPES). */
  dataType: string;
  position: number;
  /** The choices of an option field (SINGLE_OPTIONS, MULTIPLE_OPTIONS, RADIO, CHECKBOX, TEXTBOX_LIST); absent on others. */
  picklistOptions?: string[];
  /** FILE_UPLOAD only. */
  isMultiFileAllowed?: boolean;
  maxFileLimit?: number;
  locationId: string;
  model: CustomFieldModel;
  dateAdded: string;
}

/** A contact as stored: the GET shape, sparse (unset keys absent). */
export type ContactDoc = Record<string, unknown> & {
  id: string;
  locationId: string;
  dateAdded: string;
  dateUpdated: string;
};

export interface ContactVersion {
  /** Epoch ms the version was written. */
  at: number;
  /**
   * Epoch ms from which search may show it, fixed when written: the lag then, its jitter and any
   * delay a test asked for (Emulator.searchVisibleAt adds the current lag as a floor).
   */
  visibleAt: number;
  /** null = deleted at that time. */
  doc: ContactDoc | null;
}

export interface MarketplaceApp {
  appId: string;
  versionId: string;
  name: string;
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  webhookUrl?: string;
  customPageUrl?: string;
  sharedSecret: string;
  scopes: string[];
  /** Installs here reach the agency's locations (true) or one sub-account (false). */
  distribution: 'agency' | 'location' | 'both';
}

export interface Installation {
  appId: string;
  companyId: string;
  /** Undefined for an agency (Company) install. */
  locationId?: string;
  installedAt: string;
  /** Agency installs: approved location ids; "future" ones are added on location creation. */
  approvedLocations: string[];
  installToFutureLocations: boolean;
  approveAllLocations: boolean;
  userId: string;
}

export interface AuthCode {
  code: string;
  appId: string;
  userType: 'Location' | 'Company';
  companyId: string;
  locationId?: string;
  approvedLocations: string[];
  scopes: string[];
  redirectUri: string;
  userId: string;
  expiresAt: number;
  used: boolean;
  isBulkInstallation: boolean;
  installToFutureLocations: boolean;
  approveAllLocations: boolean;
}

export interface AccessToken {
  token: string;
  /** Absent for private integration tokens. */
  appId?: string;
  kind: 'oauth' | 'private';
  authClass: 'Location' | 'Company';
  companyId: string;
  locationId?: string;
  scopes: string[];
  userId: string;
  expiresAt: number;
  revoked: boolean;
}

export interface RefreshToken {
  token: string;
  appId: string;
  authClass: 'Location' | 'Company';
  companyId: string;
  locationId?: string;
  approvedLocations: string[];
  scopes: string[];
  userId: string;
  expiresAt: number;
  used: boolean;
  revoked: boolean;
}

export interface World {
  companies: Record<string, Company>;
  locations: Record<string, Location>;
  users: Record<string, User>;
  /** contactId -> version history, newest last (pruned to what search lag still needs). */
  contacts: Record<string, ContactVersion[]>;
  /**
   * locationId -> the location's custom field definitions, in creation order. Worlds saved
   * before definitions existed have none: load() fills in an empty record.
   */
  customFields: Record<string, CustomField[]>;
  apps: Record<string, MarketplaceApp>;
  installations: Installation[];
  authCodes: Record<string, AuthCode>;
  accessTokens: Record<string, AccessToken>;
  refreshTokens: Record<string, RefreshToken>;
}

export function emptyWorld(): World {
  return {
    companies: {},
    locations: {},
    users: {},
    contacts: {},
    customFields: {},
    apps: {},
    installations: [],
    authCodes: {},
    accessTokens: {},
    refreshTokens: {},
  };
}

export function isoAt(ms: number): string {
  return new Date(ms).toISOString();
}

export function newCompany(name: string, whitelabelDomain?: string): Company {
  return { id: recordId(), name, ...(whitelabelDomain ? { whitelabelDomain } : {}) };
}

export function newLocation(companyId: string, name: string, now: number, settings: Partial<LocationSettings> = {}): Location {
  return {
    id: recordId(),
    companyId,
    name,
    timezone: 'America/Los_Angeles',
    settings: {
      allowDuplicateContact: false,
      allowDuplicateOpportunity: false,
      allowFacebookNameMerge: false,
      disableContactTimezone: false,
      ...settings,
    },
    active: true,
    privateToken: `pit-${hexToken(16).replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')}`,
    dateAdded: isoAt(now),
  };
}

export function newApp(input: {
  name: string;
  redirectUris: string[];
  webhookUrl?: string;
  customPageUrl?: string;
  scopes: string[];
  sharedSecret?: string;
  distribution?: MarketplaceApp['distribution'];
}): MarketplaceApp {
  const appId = objectId();
  return {
    appId,
    versionId: appId,
    name: input.name,
    clientId: clientIdFor(appId),
    clientSecret: crypto.randomUUID(),
    redirectUris: input.redirectUris,
    ...(input.webhookUrl ? { webhookUrl: input.webhookUrl } : {}),
    ...(input.customPageUrl ? { customPageUrl: input.customPageUrl } : {}),
    sharedSecret: input.sharedSecret ?? crypto.randomUUID(),
    scopes: input.scopes,
    distribution: input.distribution ?? 'both',
  };
}
