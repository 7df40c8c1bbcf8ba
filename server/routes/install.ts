// GET /oauth/install sends the admin to HighLevel's "choose location" consent; GET /oauth/callback
// exchanges the code HighLevel sends back and installs what it grants (installs/installs.ts).
//
// @fastify/oauth2 does both halves: the state (random, in a SameSite=Lax cookie) and the code
// exchange, which HighLevel wants form-encoded with the client credentials in the body
// (`authorizationMethod: 'body', bodyFormat: 'form'`). The raw token answer is then checked by
// highlevel/oauth.ts's parseTokenResponse, so HighLevel's token shape is still known in one place.
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyOauth2, { type OAuth2Namespace } from '@fastify/oauth2';
import type { Db } from '../../db/client.ts';
import { getSyncSettings } from '../../db/sync-settings.ts';
import type { Config } from '../config.ts';
import { TANDEM_SCOPES } from '../config.ts';
import { classifyHighLevelError, errorMessage, HighLevelError, DEFAULT_TIMEOUT_MS } from '../highlevel/http.ts';
import { parseTokenResponse } from '../highlevel/oauth.ts';
import type { Services } from '../services.ts';
import { cancelledPage, errorPage, installedPage } from '../installs/pages.ts';
import { tenant } from './tenant.ts';

/** HighLevel's consent page (CONTRACT §1.1; the SDK's form, also served under /v2). */
const AUTHORIZE_PATH = '/oauth/chooselocation';
const TOKEN_PATH = '/oauth/token';

export function registerInstallRoutes(app: FastifyInstance, deps: { config: Config; services: Services; db: Db }): void {
  const { config, services } = deps;
  const https = config.publicUrl.startsWith('https://');
  const callbackUri = `${config.publicUrl}/oauth/callback`;
  const installUrl = `${config.publicUrl}/oauth/install`;
  // `__Host-` makes the cookie impossible to plant from a sibling subdomain; it needs https.
  const stateCookie = https ? '__Host-tandem-install-state' : 'tandem-install-state';

  // Encapsulated: the cookie parser the plugin brings is needed by these two routes only.
  void app.register(async (scope) => {
    await scope.register(fastifyOauth2, {
      name: 'highlevelOAuth2',
      scope: [...TANDEM_SCOPES],
      credentials: {
        client: { id: config.highlevel.clientId, secret: config.highlevel.clientSecret },
        auth: {
          authorizeHost: config.highlevel.marketplaceUrl,
          authorizePath: AUTHORIZE_PATH,
          tokenHost: config.highlevel.apiUrl,
          tokenPath: TOKEN_PATH,
        },
        options: { authorizationMethod: 'body', bodyFormat: 'form' },
        http: { timeout: DEFAULT_TIMEOUT_MS },
      },
      callbackUri,
      userAgent: 'Tandem',
      redirectStateCookieName: stateCookie,
      verifierCookieName: https ? '__Host-tandem-install-verifier' : 'tandem-install-verifier',
      cookie: { path: '/oauth', secure: https, sameSite: 'lax', httpOnly: true },
      generateStateFunction: () => randomState(),
      // A state that is present must be the one this browser was given. An absent state is accepted:
      // installs started from HighLevel's marketplace carry none of ours. That is safe because the
      // callback creates no session and binds nothing to this browser: the code is exchanged
      // server-to-server with our client secret, and what it installs is exactly what an admin of
      // that HighLevel account approved. A forged callback can only install Tandem where the forger
      // could install it anyway (login CSRF needs a login to hijack; there is none here).
      checkStateFunction: (request) => {
        const state = (request.query as Record<string, unknown>).state;
        if (state === undefined || state === '') return true;
        return typeof state === 'string' && state === request.cookies[stateCookie];
      },
    });
    const oauth = (scope as unknown as { highlevelOAuth2: OAuth2Namespace }).highlevelOAuth2;

    scope.get('/oauth/install', { ...tenant('public') }, async (req, reply) => {
      const uri = await oauth.generateAuthorizationUri(req, reply);
      return reply.header('cache-control', 'no-store').redirect(uri, 302);
    });

    scope.get('/oauth/callback', { ...tenant('oauth') }, async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      reply.header('cache-control', 'no-store');
      if (typeof query.error === 'string') {
        if (query.error === 'access_denied') return html(reply, 200, cancelledPage(installUrl));
        req.log.warn({ error: query.error.slice(0, 100) }, 'install: HighLevel ended the authorization');
        return html(reply, 400, errorPage(authorizationEnded(query.error), installUrl));
      }
      if (typeof query.code !== 'string' || query.code === '') {
        return html(reply, 400, errorPage('This address is missing the authorization code HighLevel adds. Start the installation again.', installUrl));
      }

      let raw: unknown;
      try {
        raw = (await oauth.getAccessTokenFromAuthorizationCodeFlow(req, reply)).token;
      } catch (err) {
        if (err instanceof Error && err.message === 'Invalid state') {
          return html(reply, 400, errorPage('This installation link expired or was opened in another browser. Start the installation again.', installUrl));
        }
        const failure = exchangeFailure(err);
        req.log.warn({ status: failure.status, message: failure.message }, 'install: code exchange failed');
        return html(reply, failure.retry ? 502 : 400, errorPage(exchangeMessage(failure), installUrl));
      }

      try {
        const grant = parseTokenResponse(raw, services.clock.now());
        const result = await services.installs.completeGrant(grant);
        req.log.info(
          { kind: result.kind, companyId: result.companyId, locations: result.kind === 'location' ? 1 : result.locations.length },
          'install: completed',
        );
        return html(reply, 200, installedPage(result, result.kind === 'location' ? getSyncSettings(deps.db, result.location.locationId) : undefined));
      } catch (err) {
        req.log.error({ err }, 'install: could not complete');
        const message =
          err instanceof HighLevelError && err.kind === 'invalid_response'
            ? "HighLevel's answer was not what Tandem expected, so nothing was installed. Try again; if it keeps failing, contact Tandem's support."
            : 'Something went wrong on our side, so the installation did not finish. Try again.';
        return html(reply, 500, errorPage(message, installUrl));
      }
    });
  });
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}

function randomState(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString('base64url');
}

/** simple-oauth2 (wreck) fails with a Boom error carrying the response; made a HighLevelError. */
function exchangeFailure(err: unknown): HighLevelError & { retry: boolean } {
  const e = err as { data?: { res?: { statusCode?: number }; payload?: unknown }; message?: string };
  const status = e?.data?.res?.statusCode;
  let failure: HighLevelError;
  if (typeof status === 'number') {
    let body = e.data?.payload;
    if (Buffer.isBuffer(body)) body = parseJson(body.toString('utf8'));
    failure = new HighLevelError(status, errorMessage(status, body), { kind: 'http', body, request: `POST ${TOKEN_PATH}` });
  } else {
    failure = new HighLevelError(0, `POST ${TOKEN_PATH} failed: ${e?.message ?? 'no answer'}`, { kind: 'network', request: `POST ${TOKEN_PATH}` });
  }
  return Object.assign(failure, { retry: classifyHighLevelError(failure) === 'retry' });
}

/**
 * Why HighLevel sent the admin back without a code (RFC 6749 §4.1.2.1 error codes), in words; the
 * code itself goes to the log. What the admin can do: try again, or tell whoever runs Tandem.
 */
function authorizationEnded(code: string): string {
  if (code === 'server_error' || code === 'temporarily_unavailable') return 'HighLevel could not finish the installation just now. Try again in a few minutes.';
  if (code === 'invalid_scope' || code === 'unauthorized_client' || code === 'unsupported_response_type' || code === 'invalid_request') {
    return 'HighLevel refused how Tandem asked for access. Whoever runs Tandem should check its app settings in the HighLevel Marketplace (redirect URL and scopes).';
  }
  return 'HighLevel ended the installation before it finished. Start the installation again.';
}

function exchangeMessage(failure: HighLevelError & { retry: boolean }): string {
  if (failure.retry) return 'Tandem could not reach HighLevel to finish the installation. Try again in a minute.';
  if (failure.status === 401 || /invalid client/i.test(failure.message)) {
    return "HighLevel did not accept Tandem's app credentials. Whoever runs Tandem should check HIGHLEVEL_CLIENT_ID and HIGHLEVEL_CLIENT_SECRET.";
  }
  return 'HighLevel did not accept this authorization (it may have expired or been used already). Start the installation again.';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
