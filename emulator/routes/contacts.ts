// Contacts API, Version 2021-07-28 (CONTRACT §3.1-3.3, §3.6): get, create, update, delete, upsert,
// tag add/remove and the duplicate lookup. Every change is stored as a new contact version and
// sends the HighLevel webhook(s) to the apps installed on the location.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteContext } from '../server.ts';
import type { ContactDoc, Location } from '../state.ts';
import { isoAt } from '../state.ts';
import { fail, ok, requireLocation, unprocessable, type AuthContext } from '../http.ts';
import { parseContactWrite, parseTagsBody, type ContactInput } from '../contact-validate.ts';
import { createContactWrite, updateContactWrite } from '../contact-writes.ts';
import { resolveCustomFieldKeys } from '../custom-fields.ts';
import {
  applyInput,
  commitContact,
  createdByFor,
  createView,
  findMatches,
  firstMatch,
  getView,
  newContact,
} from '../contact-model.ts';

const READ = { scopes: ['contacts.readonly'], access: 'location' as const };
const WRITE = { scopes: ['contacts.write'], access: 'location' as const };

export function registerContactsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;

  /** The contact as GET sees it: 400 when unknown (HighLevel's observed answer), 403 when another location's. */
  function loadContact(auth: AuthContext, id: string): ContactDoc {
    const doc = emu.contact(id);
    if (!doc) fail(400, `Contact with id ${id} not found`);
    requireLocation(emu, auth, doc.locationId);
    return doc;
  }

  function locationOf(locationId: string): Location {
    const location = emu.world.locations[locationId];
    if (!location) fail(400, 'Location not found');
    return location;
  }

  const bodyLocation = (req: FastifyRequest) => {
    const b = req.body as Record<string, unknown> | undefined;
    return typeof b?.locationId === 'string' ? b.locationId : undefined;
  };

  app.get('/contacts/search/duplicate', async (req, reply) => {
    const auth = ctx.auth(req, reply, READ);
    const q = req.query as Record<string, string | undefined>;
    if (q.locationId) requireLocation(emu, auth, q.locationId);
    else unprocessable(['locationId should not be empty', 'locationId must be a string']);
    if (!q.email && !q.number) fail(400, 'Pass at least one of number, email query parameter');
    // Email first, then phone: the spec's order when duplicates are allowed, and the emulator's
    // default unique-identifier order when they are not.
    const match = firstMatch(findMatches(emu, q.locationId!, q.email, q.number));
    return ok(reply, 200, { contact: match ? getView(match.doc) : null });
  });

  app.get('/contacts/:contactId', async (req, reply) => {
    const auth = ctx.auth(req, reply, READ);
    const { contactId } = req.params as { contactId: string };
    return ok(reply, 200, { contact: getView(loadContact(auth, contactId)) });
  });

  const create = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = ctx.auth(req, reply, WRITE);
    requireLocation(emu, auth, bodyLocation(req));
    const input = parseContactWrite(req.body, 'create');
    const locationId = input.locationId!;
    const doc = createContactWrite(emu, locationId, input, createdByFor(emu, auth.token));
    return ok(reply, 201, { contact: createView(doc) });
  };
  app.post('/contacts/', create);
  app.post('/contacts', create);

  app.put('/contacts/:contactId', async (req, reply) => {
    const auth = ctx.auth(req, reply, WRITE);
    const { contactId } = req.params as { contactId: string };
    const input = parseContactWrite(req.body, 'update');
    const after = updateContactWrite(emu, loadContact(auth, contactId), input);
    return ok(reply, 200, { succeded: true, contact: getView(after) });
  });

  app.delete('/contacts/:contactId', async (req, reply) => {
    const auth = ctx.auth(req, reply, WRITE);
    const { contactId } = req.params as { contactId: string };
    const before = loadContact(auth, contactId);
    commitContact(emu, before, null);
    return ok(reply, 200, { succeded: true });
  });

  app.post('/contacts/upsert', async (req, reply) => {
    const auth = ctx.auth(req, reply, WRITE);
    requireLocation(emu, auth, bodyLocation(req));
    const parsed = parseContactWrite(req.body, 'upsert');
    const locationId = parsed.locationId!;
    const input = resolveCustomFieldKeys(emu, locationId, parsed);
    if (typeof input.email !== 'string' && typeof input.phone !== 'string') {
      // Guess: HighLevel needs one of them to identify the contact (issue #59); the exact answer is unknown.
      fail(400, 'Either email or phone is required to upsert a contact.');
    }
    const allowDuplicates = locationOf(locationId).settings.allowDuplicateContact;
    if (!(allowDuplicates && input.createNewIfDuplicateAllowed)) {
      const matches = findMatches(emu, locationId, input.email, input.phone);
      const match = firstMatch(matches);
      if (match) {
        const update: ContactInput = { ...input };
        // Upsert on an existing contact silently drops gender (highlevel-api-docs issue #313).
        delete update.gender;
        // Email matched one contact and phone another: update the first, ignore the phone (spec).
        if (!allowDuplicates && match.field === 'email' && matches.phone && matches.phone.id !== match.doc.id) delete update.phone;
        const after = applyInput(match.doc, update, isoAt(emu.now()));
        commitContact(emu, match.doc, after);
        return ok(reply, 200, { new: false, contact: getView(after) });
      }
    }
    const doc = newContact(emu, locationId, input, createdByFor(emu, auth.token));
    commitContact(emu, null, doc);
    // Guess (CONTRACT §10): 200 on create too; the spec lists only 200.
    return ok(reply, 200, { new: true, contact: getView(doc) });
  });

  app.post('/contacts/:contactId/tags', async (req, reply) => {
    const auth = ctx.auth(req, reply, WRITE);
    const { contactId } = req.params as { contactId: string };
    const tags = parseTagsBody(req.body);
    const before = loadContact(auth, contactId);
    const current = (before.tags as string[] | undefined) ?? [];
    const after = applyInput(before, { tags: [...current, ...tags.filter((t) => !current.includes(t))] }, isoAt(emu.now()));
    commitContact(emu, before, after);
    return ok(reply, 201, { tags: after.tags });
  });

  app.delete('/contacts/:contactId/tags', async (req, reply) => {
    const auth = ctx.auth(req, reply, WRITE);
    const { contactId } = req.params as { contactId: string };
    const tags = parseTagsBody(req.body);
    const before = loadContact(auth, contactId);
    const current = (before.tags as string[] | undefined) ?? [];
    const after = applyInput(before, { tags: current.filter((t) => !tags.includes(t)) }, isoAt(emu.now()));
    commitContact(emu, before, after);
    return ok(reply, 200, { tags: after.tags });
  });
}
