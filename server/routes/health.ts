// GET /health: liveness plus a trivial database query, for load balancers and `curl`.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Database } from '../../db/client.ts';
import { tenant } from './tenant.ts';

const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export function registerHealthRoutes(app: FastifyInstance, deps: { db: Database }): void {
  app.get('/health', { ...tenant('public') }, async (req, reply) => {
    try {
      deps.db.sqlite.prepare('select 1').get();
      return { status: 'ok', db: 'ok', version: VERSION };
    } catch (err) {
      req.log.error({ err }, 'health check: database query failed');
      return reply.code(503).send({ status: 'error', db: 'error', version: VERSION });
    }
  });
}
