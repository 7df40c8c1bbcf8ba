// HTTP errors: AppError for expected failures and the one handler that renders every error as
// `{ "error": { "code", "message" } }`, hiding the details of 5xx (they go to the log instead),
// including what Fastify's router refuses before any route runs (frameworkErrors).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'too_many_requests',
};

/**
 * The largest request body Tandem takes on any route (Fastify's default, which the app keeps; a
 * route may take less). The front refuses a larger one itself (server/front.ts createProxy).
 */
export const BODY_LIMIT = 1024 * 1024;

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

function sendError(err: FastifyError | AppError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof AppError) {
    if (err.status >= 500) req.log.error({ err }, 'request failed');
    const message = err.status >= 500 ? 'Something went wrong on our side. Please try again.' : err.message;
    return reply.code(err.status).send(errorBody(err.code, message));
  }
  if (err.validation) {
    // Fastify's message already names the field, e.g. "body/name must be string".
    return reply.code(400).send(errorBody('invalid_request', `Invalid request: ${err.message}`));
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    return reply.code(status).send(errorBody(CODES[status] ?? 'bad_request', err.message));
  }
  req.log.error({ err }, 'unhandled error');
  return reply.code(500).send(errorBody('internal_error', 'Something went wrong on our side. Please try again.'));
}

/**
 * Fastify's `frameworkErrors` option: what its router refuses before any route, hook or error
 * handler is involved, which Fastify would otherwise answer in its own shape
 * (`{"error":"Bad Request","code":"FST_ERR_BAD_URL",…}`). In practice that is a path whose
 * %-escapes do not decode (FST_ERR_BAD_URL); a parameter over Fastify's length limit
 * (FST_ERR_MAX_PARAM_LENGTH) cannot happen since buildApp lifts that limit.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  // No hook runs for these answers, so helmet's headers (server/security/headers.ts) would be
  // missing: at least the JSON body is never sniffed as something else, nor framed.
  reply.headers({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'; frame-ancestors 'none'" });
  if (err.code === 'FST_ERR_BAD_URL') {
    // The REST API's code for malformed input of any kind (README, server/routes/api-v1.ts); the
    // rest of Tandem answers a 400 as `bad_request`, as sendError would.
    const code = req.url.startsWith('/api/v1/') ? 'invalid_request' : 'bad_request';
    reply.code(400).send(errorBody(code, 'Invalid request: the URL path has a %-escape that does not decode as UTF-8 (send a literal "%" as %25).'));
    return;
  }
  sendError(err, req, reply);
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(sendError);

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('not_found', `No route for ${req.method} ${shownPath(req.url)}`));
  });
}

/** A request's path as an error message repeats it: at most 200 characters, the query left out. */
export function shownPath(url: string): string {
  const path = url.split('?')[0]!;
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}
