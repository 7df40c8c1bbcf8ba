// The control API's fault scripting and logs: API fault rules, the request log, webhook deliveries
// and webhook faults (the rest of /__emulator is in control.ts).
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../server.ts';
import { FaultCreate, FaultId, RequestsQuery, WebhookFaultCreate, WebhooksQuery, parse } from './control-schemas.ts';

export function registerControlLogRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;

  app.post('/__emulator/faults', async (req) => emu.addFault(parse(FaultCreate, req.body)));

  app.get('/__emulator/faults', async () => ({ faults: emu.faults }));

  app.delete('/__emulator/faults', async () => {
    emu.clearFaults();
    return {};
  });

  app.delete('/__emulator/faults/:id', async (req, reply) => {
    const { id } = parse(FaultId, req.params);
    if (!emu.clearFaults(id)) return reply.code(404).send({ error: `No fault ${id} is set or holding a request` });
    return {};
  });

  // `path` is a prefix, or a regular expression when it starts with '^' (as in fault rules).
  app.get('/__emulator/requests', async (req) => {
    const q = parse(RequestsQuery, req.query);
    const pathMatches = q.path?.startsWith('^')
      ? (p: string) => new RegExp(q.path!).test(p)
      : (p: string) => !q.path || p.startsWith(q.path);
    const requests = emu.requestLog.filter(
      (r) =>
        (q.since === undefined || r.seq > q.since) &&
        (!q.locationId || r.locationId === q.locationId) &&
        (!q.method || r.method === q.method.toUpperCase()) &&
        pathMatches(r.path),
    );
    return { requests };
  });

  app.delete('/__emulator/requests', async () => {
    emu.requestLog = [];
    return {};
  });

  // `pending` counts deliveries not yet settled, so an out-of-process caller can wait for them.
  app.get('/__emulator/webhooks', async (req) => {
    const q = parse(WebhooksQuery, req.query);
    const deliveries = emu.webhooks.log.filter(
      (d) => (!q.appId || d.appId === q.appId) && (!q.type || d.type === q.type) && (!q.webhookId || d.webhookId === q.webhookId),
    );
    return { deliveries, pending: emu.webhooks.pending() };
  });

  app.delete('/__emulator/webhooks', async () => {
    emu.webhooks.clearLog();
    return {};
  });

  app.post('/__emulator/webhooks/faults', async (req) => emu.webhooks.addFault(parse(WebhookFaultCreate, req.body)));

  app.get('/__emulator/webhooks/faults', async () => ({ faults: emu.webhooks.faults }));

  app.delete('/__emulator/webhooks/faults', async () => {
    emu.webhooks.clearFaults();
    return {};
  });
}
