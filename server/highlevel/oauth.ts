// HighLevel's OAuth wire format (CONTRACT §1.3-1.6): the code exchange and refresh at /oauth/token
// (form-encoded, no Version header), agency → location tokens at /oauth/locationToken, and the
// location lookup used at install. Responses are checked with zod: extra fields are tolerated,
// the fields Tandem relies on are required. Tokens never appear in errors or logs.
import { z } from 'zod';
import { HighLevelError, request, type HighLevelTarget } from './http.ts';

export interface HighLevelEndpoints extends HighLevelTarget {
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  fetch?: typeof fetch;
  /** Per-request timeout (default DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
}

export type UserType = 'Location' | 'Company';

/** One token response, normalised: what the vault stores and the installer reads. */
export interface TokenGrant {
  accessToken: string;
  refreshToken: string | null;
  /** Epoch ms. */
  expiresAt: number;
  scopes: string[];
  userType: UserType;
  locationId?: string;
  companyId: string;
  approvedLocations: string[];
  userId?: string;
  installToFutureLocations: boolean;
  isBulkInstallation: boolean;
}

const nonEmpty = z.string().min(1);
/** HighLevel omits or nulls optional fields; both mean absent. */
const optionalString = nonEmpty.nullish();
const lifetimeSec = z.coerce.number().positive();

/** `GetAccessCodeSuccessfulResponseDto` (CONTRACT §1.3). */
export const TokenResponseSchema = z
  .looseObject({
    access_token: nonEmpty,
    token_type: z.string().nullish(),
    expires_in: lifetimeSec,
    refresh_token: optionalString,
    scope: z.string().nullish(),
    userType: z.enum(['Location', 'Company']),
    locationId: optionalString,
    companyId: nonEmpty,
    approvedLocations: z.array(z.string()).nullish(),
    userId: optionalString,
    isBulkInstallation: z.boolean().nullish(),
    installToFutureLocations: z.boolean().nullish(),
  })
  .refine((r) => r.userType !== 'Location' || !!r.locationId, { message: 'a Location token response has no locationId', path: ['locationId'] });

/** `/oauth/locationToken` 200 (CONTRACT §1.6; refresh_token per ISS #285). */
export const LocationTokenResponseSchema = z.looseObject({
  access_token: nonEmpty,
  token_type: z.string().nullish(),
  expires_in: lifetimeSec,
  refresh_token: optionalString,
  scope: z.string().nullish(),
  locationId: nonEmpty,
  userId: optionalString,
});

/** `GET /locations/{id}` → `{ location: {...} }`; only what Tandem shows is required. */
export const LocationResponseSchema = z.looseObject({
  location: z.looseObject({ id: nonEmpty, name: z.string(), companyId: nonEmpty }),
});

function scopesOf(scope: string | null | undefined): string[] {
  return (scope ?? '').split(/\s+/).filter(Boolean);
}

/** A schema failure names the fields, never their values (they may be tokens). */
function shapeError(what: string, error: z.ZodError, status = 200): HighLevelError {
  const fields = [...new Set(error.issues.map((i) => i.path.join('.') || '(root)'))].join(', ');
  return new HighLevelError(status, `${what} has an unexpected shape (${fields})`, { kind: 'invalid_response' });
}

export function parseTokenResponse(raw: unknown, now: number): TokenGrant {
  const parsed = TokenResponseSchema.safeParse(raw);
  if (!parsed.success) throw shapeError('token response', parsed.error);
  const r = parsed.data;
  return {
    accessToken: r.access_token,
    refreshToken: r.refresh_token ?? null,
    expiresAt: now + r.expires_in * 1000,
    scopes: scopesOf(r.scope),
    userType: r.userType,
    ...(r.locationId ? { locationId: r.locationId } : {}),
    companyId: r.companyId,
    approvedLocations: r.approvedLocations ?? [],
    ...(r.userId ? { userId: r.userId } : {}),
    installToFutureLocations: r.installToFutureLocations ?? false,
    isBulkInstallation: r.isBulkInstallation ?? false,
  };
}

async function tokenCall(ep: HighLevelEndpoints, form: Record<string, string>, now: number): Promise<TokenGrant> {
  const res = await request(ep, {
    method: 'POST',
    path: '/oauth/token',
    form: { client_id: ep.clientId, client_secret: ep.clientSecret, ...form },
    timeoutMs: ep.timeoutMs,
    now,
  });
  return parseTokenResponse(res.body, now);
}

/**
 * authorization_code grant. No user_type: the consent decides whether the code yields a Location or
 * a Company token (the official template omits it too, CONTRACT §1.4).
 */
export function exchangeCode(ep: HighLevelEndpoints, code: string, redirectUri: string, now: number): Promise<TokenGrant> {
  return tokenCall(ep, { grant_type: 'authorization_code', code, redirect_uri: redirectUri }, now);
}

/** refresh_token grant; the refresh token is single-use: the answer carries its successor. */
export function refreshGrant(ep: HighLevelEndpoints, refreshToken: string, userType: UserType, now: number): Promise<TokenGrant> {
  return tokenCall(ep, { grant_type: 'refresh_token', refresh_token: refreshToken, user_type: userType }, now);
}

/** A Location token for one of the agency's approved locations, from the Company access token. */
export async function mintLocationToken(
  ep: HighLevelEndpoints,
  companyAccessToken: string,
  companyId: string,
  locationId: string,
  now: number,
): Promise<TokenGrant> {
  const res = await request(ep, {
    method: 'POST',
    path: '/oauth/locationToken',
    token: companyAccessToken,
    form: { companyId, locationId },
    timeoutMs: ep.timeoutMs,
    now,
  });
  const parsed = LocationTokenResponseSchema.safeParse(res.body);
  if (!parsed.success) throw shapeError('location token response', parsed.error);
  const r = parsed.data;
  if (r.locationId !== locationId) throw new HighLevelError(200, 'location token response is for another location', { kind: 'invalid_response' });
  return {
    accessToken: r.access_token,
    refreshToken: r.refresh_token ?? null,
    expiresAt: now + r.expires_in * 1000,
    scopes: scopesOf(r.scope),
    userType: 'Location',
    locationId,
    companyId,
    approvedLocations: [],
    ...(r.userId ? { userId: r.userId } : {}),
    installToFutureLocations: false,
    isBulkInstallation: true,
  };
}

export async function getLocation(
  ep: HighLevelEndpoints,
  accessToken: string,
  locationId: string,
): Promise<{ id: string; name: string; companyId: string }> {
  const res = await request(ep, { method: 'GET', path: `/locations/${encodeURIComponent(locationId)}`, token: accessToken, timeoutMs: ep.timeoutMs });
  const parsed = LocationResponseSchema.safeParse(res.body);
  if (!parsed.success) throw shapeError('location response', parsed.error);
  const { id, name, companyId } = parsed.data.location;
  return { id, name, companyId };
}
