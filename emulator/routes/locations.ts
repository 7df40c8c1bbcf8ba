// GET /locations/{locationId} (apps/locations.json GetLocationByIdSuccessfulResponseDto): the
// sub-account with its settings, notably settings.allowDuplicateContact (CONTRACT §3.6).
import type { FastifyInstance } from 'fastify';
import { ok, requireLocation, sparse } from '../http.ts';
import type { Location } from '../state.ts';
import type { RouteContext } from '../server.ts';

export function locationView(l: Location): Record<string, unknown> {
  return sparse({
    id: l.id,
    companyId: l.companyId,
    name: l.name,
    address: l.address,
    city: l.city,
    state: l.state,
    country: l.country,
    postalCode: l.postalCode,
    website: l.website,
    timezone: l.timezone,
    email: l.email,
    phone: l.phone,
    business: sparse({
      name: l.name,
      address: l.address,
      city: l.city,
      state: l.state,
      country: l.country,
      postalCode: l.postalCode,
      website: l.website,
      timezone: l.timezone,
    }),
    social: {},
    settings: { ...l.settings },
  });
}

export function registerLocationsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;
  app.get('/locations/:locationId', async (req, reply) => {
    const auth = ctx.auth(req, reply, { scopes: ['locations.readonly'], access: 'both' });
    const { locationId } = req.params as { locationId: string };
    // An unknown id is indistinguishable from someone else's location: 403 either way.
    requireLocation(emu, auth, locationId);
    return ok(reply, 200, { location: locationView(emu.world.locations[locationId]!) });
  });
}
