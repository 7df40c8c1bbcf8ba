// Every route says how its tenant is established; a test walks the route table and fails on any
// route that does not. The tenant comes only from a verified credential, never from the request's
// URL, query or body.
export type TenantSource =
  /** No tenant: health, static panel files, OAuth redirects. */
  | 'public'
  /** Panel session token (Bearer) issued after HighLevel's encrypted user-data handshake. */
  | 'session'
  /** Per-location API key of Tandem's REST API. */
  | 'apiKey'
  /** HighLevel webhook verified by its Ed25519 signature. */
  | 'webhook'
  /** HighLevel OAuth callback: the tenant is whatever the exchanged code grants. */
  | 'oauth'
  /** The panel's sign-in: the tenant is the active location in HighLevel's encrypted user data. */
  | 'sso';

declare module 'fastify' {
  interface FastifyContextConfig {
    tenant?: TenantSource;
  }
}

/** Route options fragment: `app.get(path, { ...tenant('public') }, handler)`. */
export function tenant(source: TenantSource): { config: { tenant: TenantSource } } {
  return { config: { tenant: source } };
}
