// REST API: the location's users (contact owners). Email is unique per location, case-insensitively.
import { isDeepStrictEqual } from 'node:util';
import { AppError, errorBody } from '../errors.ts';
import { createUser, getUser, listUsers, setUserActive, updateUser, UserEmailTakenError, type User } from '../../db/users.ts';
import {
  described,
  errorReply,
  errors,
  idParams,
  USER_READ_ONLY_FIELDS,
  userCreateBody,
  userJson,
  userListQuery,
  userPatchBody,
  userResponse,
} from './api-v1-schemas.ts';
import { apiTenant, type ApiInstance, type ApiV1Deps } from './api-v1.ts';
import { tenant } from './tenant.ts';
import { z } from 'zod';

function notFound(): AppError {
  return new AppError(404, 'not_found', 'No user with this id in this location.');
}

function found(user: User | undefined): User {
  if (!user) throw notFound();
  return user;
}

/**
 * A PATCH body without the properties it sends as the user has them, as a contact's
 * (api-v1-contacts.ts): a user read with GET can be sent back as read, its read-only properties
 * included, and a name or email HighLevel gave that the API would not take as new is not refused
 * for being left as it is. A changed read-only property stays, and the schema refuses it.
 */
function unchangedLeftOut(body: unknown, current: User): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const json: Record<string, unknown> = userJson(current);
  const known = new Set<string>([...USER_READ_ONLY_FIELDS, 'name', 'email']);
  return Object.fromEntries(Object.entries(body).filter(([k, v]) => !(known.has(k) && isDeepStrictEqual(v, json[k]))));
}

const duplicateUser = errorReply('Another user of this location has the email, in any case (`duplicate_user`; `error.userId` names it).');

function emailTaken(err: UserEmailTakenError) {
  return { error: { ...errorBody('duplicate_user', `A user with this email already exists (${err.existingId}).`).error, userId: err.existingId } };
}

export function registerApiUserRoutes(api: ApiInstance, deps: ApiV1Deps): void {
  const { db, clock } = deps;
  // Users pair with HighLevel's by email: a change here can let owners travel (or stop them), so
  // the location's loop looks at once instead of at its next scheduled pull.
  const changed = <T>(locationId: string, user: T): T => {
    deps.wake?.(locationId);
    return user;
  };

  api.get(
    '/api/v1/users',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['users'],
        operationId: 'listUsers',
        summary: 'List users',
        description: 'By name; deactivated users only with includeInactive=true.',
        querystring: userListQuery,
        response: { 200: described('The users, by name.', z.object({ users: z.array(userResponse) })), ...errors(400, 401) },
      },
    },
    async (req) => {
      const { locationId } = apiTenant(req);
      const users = listUsers(db, locationId, {
        includeInactive: req.query.includeInactive === 'true',
        ...(req.query.email !== undefined ? { email: req.query.email } : {}),
      });
      return { users: users.map(userJson) };
    },
  );

  api.get(
    '/api/v1/users/:id',
    {
      ...tenant('apiKey'),
      schema: { tags: ['users'], operationId: 'getUser', summary: 'Get a user', params: idParams, response: { 200: described('The user.', userResponse), ...errors(400, 401, 404) } },
    },
    async (req) => userJson(found(getUser(db, apiTenant(req).locationId, req.params.id))),
  );

  api.post(
    '/api/v1/users',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['users'],
        operationId: 'createUser',
        summary: 'Create a user',
        description: 'An email another user of this location has (in any case) is refused with 409 naming it (`error.userId`).',
        body: userCreateBody,
        response: { 201: described('Created: Location names the new user.', userResponse), ...errors(400, 401, 413, 415), 409: duplicateUser },
      },
    },
    async (req, reply) => {
      const { locationId } = apiTenant(req);
      try {
        const user = changed(locationId, createUser(db, { locationId, name: req.body.name, email: req.body.email, now: clock.now() }));
        reply.code(201).header('location', `/api/v1/users/${user.id}`);
        return userJson(user);
      } catch (err) {
        if (err instanceof UserEmailTakenError) return reply.code(409).send(emailTaken(err));
        throw err;
      }
    },
  );

  api.patch(
    '/api/v1/users/:id',
    {
      ...tenant('apiKey'),
      schema: {
        tags: ['users'],
        operationId: 'updateUser',
        summary: 'Update a user’s name or email',
        description:
          'Only the fields sent change. A user read with GET can be sent back as read: its read-only properties (id, active, createdAt, updatedAt) are then ignored, and refused as read-only when they differ (deactivate / reactivate change `active`).',
        params: idParams,
        body: userPatchBody,
        response: { 200: described('The user as it now is.', userResponse), ...errors(400, 401, 404, 413, 415), 409: duplicateUser },
      },
      // Before validation, which then sees only what changes (unchangedLeftOut).
      preValidation: async (req) => {
        const current = getUser(db, apiTenant(req).locationId, req.params.id);
        if (current) req.body = unchangedLeftOut(req.body, current) as typeof req.body;
      },
    },
    async (req, reply) => {
      const { locationId } = apiTenant(req);
      try {
        const patch = { ...(req.body.name !== undefined ? { name: req.body.name } : {}), ...(req.body.email !== undefined ? { email: req.body.email } : {}) };
        return userJson(changed(locationId, found(updateUser(db, { locationId, id: req.params.id, patch, now: clock.now() }))));
      } catch (err) {
        if (err instanceof UserEmailTakenError) return reply.code(409).send(emailTaken(err));
        throw err;
      }
    },
  );

  for (const [action, active] of [
    ['deactivate', false],
    ['reactivate', true],
  ] as const) {
    api.post(
      `/api/v1/users/:id/${action}`,
      {
        ...tenant('apiKey'),
        schema: {
          tags: ['users'],
          operationId: `${action}User`,
          summary: active ? 'Reactivate a user' : 'Deactivate a user (contacts keep their owner)',
          params: idParams,
          response: { 200: described(active ? 'The user, active again.' : 'The user, now inactive.', userResponse), ...errors(400, 401, 404, 413, 415) },
        },
      },
      async (req) => {
        const { locationId } = apiTenant(req);
        return userJson(changed(locationId, found(setUserActive(db, { locationId, id: req.params.id, active, now: clock.now() }))));
      },
    );
  }
}
