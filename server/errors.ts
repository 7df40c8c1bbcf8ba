// HTTP errors: AppError for expected failures and the one handler that renders every error as
// `{ "error": { "code", "message" } }`, hiding the details of 5xx (they go to the log instead).
import type { FastifyError, FastifyInstance } from 'fastify';

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
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'too_many_requests',
};

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
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
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('not_found', `No route for ${req.method} ${req.url.split('?')[0]}`));
  });
}
