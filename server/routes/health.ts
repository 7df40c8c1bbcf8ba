// GET /health: liveness plus the database, for load balancers and `curl`: it must answer a query
// and take a write (a database that became read-only fails every request that changes data).
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { writeProblem, type Database } from '../../db/client.ts';
import { tenant } from './tenant.ts';

const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export function registerHealthRoutes(app: FastifyInstance, deps: { db: Database }): void {
  app.get('/health', { ...tenant('public') }, async (req, reply) => {
    try {
      deps.db.sqlite.prepare('select 1').get();
    } catch (err) {
      req.log.error({ err }, 'health check: database query failed');
      return reply.code(503).send({ status: 'error', db: 'error', version: VERSION });
    }
    const problem = writeProblem(deps.db);
    if (problem) {
      req.log.error({ problem }, 'health check: the database cannot be written');
      return reply.code(503).send({ status: 'error', db: 'not_writable', version: VERSION });
    }
    return { status: 'ok', db: 'ok', version: VERSION };
  });
}
