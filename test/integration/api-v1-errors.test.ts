// The REST API's answers to malformed or misdirected requests, over real HTTP: bodies where none is
// expected, one error code for malformed input, 415 for non-JSON bodies, 405 with Allow for a path
// that exists under another method (OPTIONS: 204 with Allow), messages that say what is wrong in words (bounds, a missing
// field), and an OpenAPI document whose responses say what they are and which errors can come.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { contactCreateBody } from '../../server/routes/api-v1-schemas.ts';
import { installedTandem } from '../helpers/tandem.ts';
import { restCall, type RestAnswer } from '../helpers/rest.ts';

let t: Awaited<ReturnType<typeof installedTandem>>;
let key: string;

beforeAll(async () => {
  t = await installedTandem({ sync: { start: false } });
  key = createApiKey(t.db, { locationId: t.location.id, name: 'errors', createdBy: null, now: t.clock.now() }).key;
});
afterAll(async () => {
  await t?.close();
});

type Res = RestAnswer;

/** `body` is sent as given (a string) with `contentType`, or as JSON when it is not a string. */
function call(method: string, path: string, opts: { body?: unknown; contentType?: string | null } = {}): Promise<Res> {
  const body = typeof opts.body === 'string' ? { raw: opts.body } : { body: opts.body };
  return restCall(t.url, method, path, { key, ...body, ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}) });
}

async function contact(): Promise<{ id: string }> {
  const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'Probe' } });
  expect(res.status).toBe(201);
  return res.body;
}

describe('routes that take no body', () => {
  it('restore refuses unknown properties and non-objects; nothing, an empty body or {} are fine', async () => {
    const c = await contact();
    expect((await call('DELETE', `/api/v1/contacts/${c.id}`)).status).toBe(204);
    const unknown = await call('POST', `/api/v1/contacts/${c.id}/restore`, { body: { x: 1 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('invalid_request');
    expect(unknown.body.error.message).toContain('"x"');
    expect((await call('POST', `/api/v1/contacts/${c.id}/restore`, { body: [] })).status).toBe(400);
    // Refused before anything happened: still archived.
    expect((await call('GET', `/api/v1/contacts/${c.id}`)).body.archivedAt).toEqual(expect.any(String));

    expect((await call('POST', `/api/v1/contacts/${c.id}/restore`)).status).toBe(200);
    expect((await call('POST', `/api/v1/contacts/${c.id}/restore`, { body: {} })).status).toBe(200);
    expect((await call('POST', `/api/v1/contacts/${c.id}/restore`, { body: '', contentType: 'application/json' })).status).toBe(200);
  });

  it('so do DELETE, deactivate and reactivate', async () => {
    const c = await contact();
    const del = await call('DELETE', `/api/v1/contacts/${c.id}`, { body: { archive: false } });
    expect(del.status).toBe(400);
    expect(del.body.error.message).toContain('"archive"');
    expect((await call('GET', `/api/v1/contacts/${c.id}`)).body.archivedAt).toBeNull();

    const user = await call('POST', '/api/v1/users', { body: { name: 'Body Less', email: `bodyless-${Date.now()}@example.com` } });
    for (const action of ['deactivate', 'reactivate']) {
      const res = await call('POST', `/api/v1/users/${user.body.id}/${action}`, { body: { active: true } });
      expect(res.status, action).toBe(400);
      expect(res.body.error.message).toContain('"active"');
      expect((await call('POST', `/api/v1/users/${user.body.id}/${action}`, { body: {} })).status).toBe(200);
    }
  });
});

describe('malformed input', () => {
  it('refuses to restore a contact while another active contact has its email, naming that one', async () => {
    const email = `restore-dup-${Date.now()}@example.com`;
    const first = await call('POST', '/api/v1/contacts', { body: { firstName: 'First', email } });
    expect((await call('DELETE', `/api/v1/contacts/${first.body.id}`)).status).toBe(204);
    const second = await call('POST', '/api/v1/contacts', { body: { firstName: 'Second', email } });
    expect(second.status).toBe(201);
    const refused = await call('POST', `/api/v1/contacts/${first.body.id}/restore`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'duplicate_contact', contactId: second.body.id });
    expect((await call('GET', `/api/v1/contacts/${first.body.id}`)).body.archivedAt).not.toBeNull();
    // Once the other is archived, the restore goes through.
    expect((await call('DELETE', `/api/v1/contacts/${second.body.id}`)).status).toBe(204);
    expect((await call('POST', `/api/v1/contacts/${first.body.id}/restore`)).status).toBe(200);
  });

  it('refuses a time zone that does not exist, and takes real ones', async () => {
    const bad = await call('POST', '/api/v1/contacts', { body: { firstName: 'Zed', timezone: 'Mars/Olympus' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('timezone: must be an IANA time zone');
    const good = await call('POST', '/api/v1/contacts', { body: { firstName: 'Zed', timezone: ' America/New_York ' } });
    expect(good.status).toBe(201);
    expect(good.body.timezone).toBe('America/New_York');
    // Written as the time zone's own name, whatever the case it was sent in.
    const lower = await call('POST', '/api/v1/contacts', { body: { firstName: 'Zed', timezone: 'europe/paris' } });
    expect(lower.body.timezone).toBe('Europe/Paris');
  });

  it('refuses a contact with nothing to tell it apart, on create and on an update that would clear the last of it', async () => {
    for (const body of [{}, { tags: ['lead'], dnd: true }, { firstName: '   ', phone: '' }]) {
      const res = await call('POST', '/api/v1/contacts', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.message).toContain('at least one of firstName, lastName, email, phone or companyName');
    }
    const company = await call('POST', '/api/v1/contacts', { body: { companyName: 'Acme' } });
    expect(company.status).toBe(201);
    const cleared = await call('PATCH', `/api/v1/contacts/${company.body.id}`, { body: { companyName: null } });
    expect(cleared.status).toBe(400);
    expect(cleared.body.error.message).toContain('at least one of');
    // Refused before anything was written.
    const after = await call('GET', `/api/v1/contacts/${company.body.id}`);
    expect(after.body).toMatchObject({ companyName: 'Acme', version: company.body.version });
    expect((await call('PATCH', `/api/v1/contacts/${company.body.id}`, { body: { companyName: null, lastName: 'Acme' } })).status).toBe(200);
  });

  it('answers invalid JSON with the same code as every other invalid request', async () => {
    const res = await call('POST', '/api/v1/contacts', { body: '{"firstName": ', contentType: 'application/json' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toMatch(/JSON/);
    // Fastify's own parser still refuses prototype keys.
    const poisoned = await call('POST', '/api/v1/contacts', { body: '{"customFields":{"__proto__":{"x":"1"}}}', contentType: 'application/json' });
    expect(poisoned.status).toBe(400);
    expect(poisoned.body.error.code).toBe('invalid_request');
    // Valid JSON, refused for its key: the message says which, not "not valid JSON".
    expect(poisoned.body.error.message).toBe('Invalid request: the body has a "__proto__" or "constructor" / "prototype" key, which is refused (it could alter objects on the server).');
    expect(res.body.error.message).toBe('Invalid request: the body is not valid JSON.');
  });

  it('answers a body that is not JSON with 415 naming application/json', async () => {
    for (const [contentType, body] of [
      ['text/plain', '{"firstName":"Plain"}'],
      ['application/x-www-form-urlencoded', 'firstName=Form'],
      [null, '{"firstName":"Untyped"}'],
    ] as const) {
      const res = await call('POST', '/api/v1/contacts', { body, contentType });
      expect(res.status, String(contentType)).toBe(415);
      expect(res.body.error.code).toBe('unsupported_media_type');
      expect(res.body.error.message).toContain('application/json');
    }
    // JSON with a charset is JSON.
    expect((await call('POST', '/api/v1/contacts', { body: '{"firstName":"Utf"}', contentType: 'application/json; charset=utf-8' })).status).toBe(201);
  });

  it('answers a path that exists under another method with 405 and Allow', async () => {
    const c = await contact();
    const cases: [string, string, string[]][] = [
      ['PUT', `/api/v1/contacts/${c.id}`, ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH']],
      ['PUT', '/api/v1/contacts', ['GET', 'HEAD', 'OPTIONS', 'POST']],
      ['DELETE', '/api/v1/users', ['GET', 'HEAD', 'OPTIONS', 'POST']],
      ['GET', `/api/v1/contacts/${c.id}/restore`, ['OPTIONS', 'POST']],
    ];
    for (const [method, path, allowed] of cases) {
      const res = await call(method, path, { body: method === 'PUT' ? { firstName: 'Put' } : undefined });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')?.split(/,\s*/).sort()).toEqual(allowed);
      expect(res.body.error.code).toBe('method_not_allowed');
      expect(res.body.error.message).toContain(method);
    }
    // OPTIONS names the same methods, with no CORS grant.
    const options = await call('OPTIONS', `/api/v1/contacts/${c.id}`);
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')?.split(/,\s*/).sort()).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH']);
    expect(options.headers.get('access-control-allow-origin')).toBeNull();
    expect((await call('OPTIONS', '/api/v1/nothing-here')).status).toBe(404);
    // A path that exists under no method is still a 404.
    const missing = await call('GET', '/api/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    expect((await call('PUT', '/api/v1/contacts/a/b/c')).status).toBe(404);
  });

  it('answers an id of any length as it answers any malformed id: 401 without a key, else 400 naming it, never 405', async () => {
    // Over 100 characters, Fastify's router used to give up on the path: the 405 wildcard then
    // answered, without a key, that GET is not allowed and to use GET.
    for (const length of [65, 101, 5000]) {
      const id = 'c'.repeat(length);
      const calls: [string, string, unknown?][] = [
        ['GET', `/api/v1/contacts/${id}`],
        ['HEAD', `/api/v1/contacts/${id}`],
        ['PATCH', `/api/v1/contacts/${id}`, { firstName: 'Long' }],
        ['DELETE', `/api/v1/contacts/${id}`],
        ['POST', `/api/v1/contacts/${id}/restore`],
        ['GET', `/api/v1/users/${id}`],
        ['POST', `/api/v1/users/${id}/deactivate`],
      ];
      for (const [method, path, body] of calls) {
        const what = `${method} ${path.replace(id, `<${length}>`)}`;
        const anonymous = await restCall(t.url, method, path, { body });
        expect(anonymous.status, what).toBe(401);
        const res = await call(method, path, { body });
        expect(res.status, what).toBe(400);
        if (method === 'HEAD') continue;
        expect(res.body, what).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('params.id') } });
      }
    }
  });

  it('answers a path whose %-escapes do not decode with 400 invalid_request, as any malformed input', async () => {
    for (const withKey of [true, false]) {
      const res = await restCall(t.url, 'GET', '/api/v1/contacts/%E0%A4%A', { key: withKey ? key : null });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: { code: 'invalid_request', message: expect.stringContaining('%-escape') } });
    }
  });

  it('says a query parameter was given twice, rather than that its value is wrong', async () => {
    for (const [path, name] of [
      ['/api/v1/contacts?limit=1&limit=2', 'limit'],
      ['/api/v1/contacts?email=a@example.com&email=b@example.com', 'email'],
      ['/api/v1/users?includeInactive=true&includeInactive=true', 'includeInactive'],
    ] as const) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.message, path).toBe(`Invalid request: querystring.${name}: is given more than once; send it once`);
    }
  });

  it('takes only real country codes (ISO 3166-1 alpha-2, and XK)', async () => {
    for (const country of ['XX', 'ZZ', 'EU', 'UK', 'QO', 'AC', 'YU', 'USA', '1A']) {
      const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'Land', address: { country } } });
      expect(res.status, country).toBe(400);
      expect(res.body.error.message, country).toBe('Invalid request: body.address.country: must be an ISO 3166-1 alpha-2 country code, e.g. "US" or "GB"');
    }
    for (const [country, stored] of [['gb', 'GB'], ['XK', 'XK'], ['AX', 'AX'], ['SS', 'SS']]) {
      const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'Land', address: { country } } });
      expect(res.status, country).toBe(201);
      expect(res.body.address.country).toBe(stored);
    }
    // Of AA–ZZ, the 249 codes ISO assigns and XK: pinned, as it rests on the runtime's region data.
    const letters = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'];
    const accepted = letters.flatMap((a) => letters.map((b) => a + b)).filter((code) => contactCreateBody.safeParse({ address: { country: code } }).success);
    expect(accepted).toHaveLength(250);
  });

  it('says what a date of birth must be, once', async () => {
    const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'Born', dateOfBirth: 'soon' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe('Invalid request: body.dateOfBirth: must be a date as YYYY-MM-DD');
    const impossible = await call('POST', '/api/v1/contacts', { body: { firstName: 'Born', dateOfBirth: '2023-02-30' } });
    expect(impossible.body.error.message).toBe('Invalid request: body.dateOfBirth: must be a date as YYYY-MM-DD');
  });

  it('takes null, "" or [] as no value of a custom field, and says which values a custom field takes', async () => {
    const created = await call('POST', '/api/v1/contacts', { body: { firstName: 'Custom', customFields: { a: null, b: '', c: [], d: 'kept' } } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.customFields).toEqual({ d: 'kept' });
    const cleared = await call('PATCH', `/api/v1/contacts/${created.body.id}`, { body: { customFields: { d: '' } } });
    expect(cleared.body.customFields).toEqual({});
    for (const value of [true, { x: 1 }, ['a', 1]]) {
      const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'Custom', customFields: { cf_1: value } } });
      expect(res.status, JSON.stringify(value)).toBe(400);
      expect(res.body.error.message).toBe('Invalid request: body.customFields.cf_1: must be a string, a number, or a list of strings or of numbers (null, "" or [] for no value)');
    }
  });

  it('refuses a tag both added and removed, naming it', async () => {
    const c = await call('POST', '/api/v1/contacts', { body: { firstName: 'Tagged', tags: ['keep'] } });
    const res = await call('PATCH', `/api/v1/contacts/${c.body.id}`, { body: { addTags: ['zz', 'new'], removeTags: [' ZZ', 'keep'] } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toContain('"zz"');
    expect((await call('GET', `/api/v1/contacts/${c.body.id}`)).body.tags).toEqual(['keep']);
  });

  it('says what a valid limit is', async () => {
    for (const limit of ['abc', '0', '201', '2.5', '']) {
      const res = await call('GET', `/api/v1/contacts?limit=${limit}`);
      expect(res.status, limit).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.message, limit).toContain('querystring.limit: must be an integer between 1 and 200');
    }
    expect((await call('GET', '/api/v1/contacts?limit=200')).status).toBe(200);
  });

  it('says a required field is required, and an invalid one invalid', async () => {
    const noEmail = await call('POST', '/api/v1/users', { body: { name: 'No Mail' } });
    expect(noEmail.status).toBe(400);
    expect(noEmail.body.error.message).toContain('body.email: is required');
    const noName = await call('POST', '/api/v1/users', { body: { email: `nameless-${Date.now()}@example.com` } });
    expect(noName.body.error.message).toContain('body.name: is required');
    const badEmail = await call('POST', '/api/v1/users', { body: { name: 'Bad Mail', email: 'nope' } });
    expect(badEmail.body.error.message).toContain('body.email: must be an email address');
    const noBody = await call('POST', '/api/v1/users');
    expect(noBody.status).toBe(400);
    expect(noBody.body.error.message).toContain('body: is required');
  });
});

describe('messages in the API’s own words', () => {
  it('says what type or size a field must have, whatever field it is', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/v1/contacts', { firstName: 123 }, 'body.firstName: must be a string'],
      ['POST', '/api/v1/contacts', { firstName: 'x'.repeat(201) }, 'body.firstName: must be at most 200 characters'],
      ['POST', '/api/v1/contacts', { firstName: 'Dnd', dnd: 'yes' }, 'body.dnd: must be true or false'],
      ['POST', '/api/v1/contacts', { firstName: 'Tags', tags: 'vip' }, 'body.tags: must be a list'],
      ['POST', '/api/v1/contacts', { firstName: 'Tags', tags: [7] }, 'body.tags[0]: must be a string'],
      ['POST', '/api/v1/contacts', { firstName: 'Tags', tags: Array.from({ length: 101 }, (_, i) => `t${i}`) }, 'body.tags: must have at most 100 items'],
      ['POST', '/api/v1/contacts', { firstName: 'Where', address: 'Main St' }, 'body.address: must be a JSON object'],
      ['POST', '/api/v1/contacts', { firstName: 'Where', address: { city: 'c'.repeat(101) } }, 'body.address.city: must be at most 100 characters'],
      ['POST', '/api/v1/users', { name: 'N', email: 5 }, 'body.email: must be an email address'],
      ['GET', '/api/v1/contacts?includeArchived=1', undefined, 'querystring.includeArchived: must be true or false'],
      ['GET', '/api/v1/users?includeInactive=yes', undefined, 'querystring.includeInactive: must be true or false'],
      ['GET', '/api/v1/contacts?updatedSince=2026-12-07', undefined, 'querystring.updatedSince: must be a date-time with a time and a time zone, e.g. 2026-12-07T09:30:00Z'],
      ['GET', `/api/v1/contacts?email=${'e'.repeat(255)}`, undefined, 'querystring.email: must be at most 254 characters'],
    ];
    for (const [method, path, body, message] of cases) {
      const res = await call(method, path, { body });
      expect.soft(res.status, message).toBe(400);
      expect.soft(res.body?.error, message).toEqual({ code: 'invalid_request', message: `Invalid request: ${message}` });
    }
    // Nothing of zod's own phrasing gets through.
    const res = await call('POST', '/api/v1/contacts', { body: { firstName: 1, lastName: [], source: 'x'.repeat(300), dnd: 0 } });
    expect(res.body.error.message).not.toMatch(/Invalid input|expected|received|Too big|Invalid option/);
  });

  it('refuses an empty or blank tag, naming the item, rather than dropping it', async () => {
    for (const [body, message] of [
      [{ firstName: 'Tagged', tags: [''] }, 'body.tags[0]: must not be empty'],
      [{ firstName: 'Tagged', tags: ['vip', '   '] }, 'body.tags[1]: must not be empty'],
    ] as const) {
      const res = await call('POST', '/api/v1/contacts', { body });
      expect(res.status, message).toBe(400);
      expect(res.body.error).toEqual({ code: 'invalid_request', message: `Invalid request: ${message}` });
    }
    const c = await contact();
    for (const field of ['tags', 'addTags', 'removeTags']) {
      const res = await call('PATCH', `/api/v1/contacts/${c.id}`, { body: { [field]: ['ok', ' '] } });
      expect(res.status, field).toBe(400);
      expect(res.body.error.message, field).toBe(`Invalid request: body.${field}[1]: must not be empty`);
    }
    expect((await call('GET', `/api/v1/contacts/${c.id}`)).body).toMatchObject({ tags: [], version: 1 });
  });

  it('answers every cursor it did not hand out with invalid_cursor, however long', async () => {
    for (const cursor of ['bm9wZQ', '', 'x'.repeat(201), 'A'.repeat(5000)]) {
      const res = await call('GET', `/api/v1/contacts?cursor=${cursor}`);
      expect(res.status, `${cursor.length} characters`).toBe(400);
      expect(res.body.error, `${cursor.length} characters`).toEqual({ code: 'invalid_cursor', message: 'cursor is not one this API returned; start again without it.' });
    }
  });

  it('says a read-only property sent changed is read-only, and takes it back unchanged', async () => {
    const c = (await call('POST', '/api/v1/contacts', { body: { firstName: 'Read', lastName: 'Only' } })).body;
    for (const [name, value] of [
      ['version', 'one'],
      ['id', 'c_other'],
      ['createdAt', '2020-01-01T00:00:00.000Z'],
      ['updatedAt', 42],
      ['updatedAt', 'yesterday'],
      ['archivedAt', '2020-01-01T00:00:00.000Z'],
    ] as const) {
      const res = await call('PATCH', `/api/v1/contacts/${c.id}`, { body: { ...c, [name]: value, lastName: 'Changed' } });
      expect(res.status, name).toBe(400);
      expect(res.body.error, `${name}: ${JSON.stringify(value)}`).toEqual({
        code: 'invalid_request',
        message: `Invalid request: body.${name}: is read-only: send it as GET gave it, or leave it out`,
      });
    }
    // Nor when a property that changes by itself comes with one that does not: the id is not the contact's.
    const mixed = await call('PATCH', `/api/v1/contacts/${c.id}`, { body: { ...c, id: 'c_other', version: c.version + 1 } });
    expect(mixed.status).toBe(400);
    // As GET gave it, it goes through; a property no contact has is still unknown.
    const same = await call('PATCH', `/api/v1/contacts/${c.id}`, { body: { ...c, lastName: 'Changed' } });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    expect(same.body).toMatchObject({ id: c.id, lastName: 'Changed', version: c.version + 1 });
    const unknown = await call('PATCH', `/api/v1/contacts/${c.id}`, { body: { ...same.body, locationId: 'x' } });
    expect(unknown.body.error.message).toBe('Invalid request: unknown property "locationId" in body');
  });
});

describe('control characters', () => {
  const none = (code: string, name: string) => `must not contain control characters (U+0000–U+001F, U+007F); this one has ${code}${name ? `, ${name}` : ''}: remove it`;

  it('are refused in every text a write takes, naming the field and the character, before HighLevel ever sees them', async () => {
    const c = await contact();
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/v1/contacts', { firstName: 'a\u0000b' }, `body.firstName: ${none('U+0000', 'NUL')}`],
      ['POST', '/api/v1/contacts', { firstName: 'Ada', lastName: 'By\tron' }, `body.lastName: ${none('U+0009', 'tab')}`],
      ['POST', '/api/v1/contacts', { firstName: 'Ada', email: 'ada@example.com\n' }, `body.email: ${none('U+000A', 'line feed')}`],
      ['POST', '/api/v1/contacts', { firstName: 'Ada', phone: '+1 415\u0007555 0123' }, `body.phone: ${none('U+0007', '')}`],
      ['POST', '/api/v1/contacts', { companyName: 'Acme\u007f' }, `body.companyName: ${none('U+007F', 'DEL')}`],
      ['POST', '/api/v1/contacts', { firstName: 'Ada', address: { city: 'Lon\u001bdon' } }, `body.address.city: ${none('U+001B', '')}`],
      ['POST', '/api/v1/contacts', { firstName: 'Ada', tags: ['vip\r'] }, `body.tags[0]: ${none('U+000D', 'carriage return')}`],
      ['POST', '/api/v1/contacts', { firstName: 'Ada', source: 'web\u0000', website: 'https://a.example' }, `body.source: ${none('U+0000', 'NUL')}`],
      ['PATCH', `/api/v1/contacts/${c.id}`, { firstName: '\u0000' }, `body.firstName: ${none('U+0000', 'NUL')}`],
      ['PATCH', `/api/v1/contacts/${c.id}`, { addTags: ['a\u0001'] }, `body.addTags[0]: ${none('U+0001', '')}`],
      ['POST', '/api/v1/users', { name: 'Ann\u0000', email: 'ann@example.com' }, `body.name: ${none('U+0000', 'NUL')}`],
      ['POST', '/api/v1/users', { name: 'Ann', email: 'ann@example.com\u0000' }, `body.email: ${none('U+0000', 'NUL')}`],
    ];
    for (const [method, path, body, message] of cases) {
      const res = await call(method, path, { body });
      expect.soft(res.status, message).toBe(400);
      expect.soft(res.body?.error, message).toEqual({ code: 'invalid_request', message: `Invalid request: ${message}` });
    }
    expect((await call('GET', `/api/v1/contacts/${c.id}`)).body).toMatchObject({ firstName: 'Probe', tags: [], version: 1 });
  });

  it('a custom field’s text may hold lines and tabs, and nothing else of them', async () => {
    const lines = 'Called twice.\r\n\tLeft a message.';
    const ok = await call('POST', '/api/v1/contacts', { body: { firstName: 'Notes', customFields: { cf_notes: lines, cf_list: ['a\tb'] } } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.customFields).toEqual({ cf_notes: lines, cf_list: ['a\tb'] });
    const but = 'must not contain control characters other than tab, line feed and carriage return (U+0000–U+001F, U+007F); this one has';
    for (const [customFields, message] of [
      [{ cf_notes: 'a\u0000b' }, `body.customFields.cf_notes: ${but} U+0000, NUL: remove it`],
      [{ cf_list: ['ok', 'b\u000b'] }, `body.customFields.cf_list[1]: ${but} U+000B: remove it`],
      [{ 'cf\u0000': 1 }, `body.customFields["cf\\u0000"]: ${none('U+0000', 'NUL')}`],
    ] as const) {
      const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'Notes', customFields } });
      expect(res.status, message).toBe(400);
      expect(res.body.error.message).toBe(`Invalid request: ${message}`);
    }
  });
});

describe('what the README says of bodies and messages', () => {
  it('refuses a JSON null where no body is taken, as anything but nothing or {}', async () => {
    const c = await contact();
    for (const [method, path] of [
      ['DELETE', `/api/v1/contacts/${c.id}`],
      ['POST', `/api/v1/contacts/${c.id}/restore`],
    ] as const) {
      const res = await call(method, path, { body: 'null', contentType: 'application/json' });
      expect(res.status, method).toBe(400);
      expect(res.body.error).toEqual({ code: 'invalid_request', message: 'Invalid request: body: this request takes none (send nothing, or {}).' });
    }
    expect((await call('GET', `/api/v1/contacts/${c.id}`)).body.archivedAt).toBeNull();
  });

  it('says how large a body may be, and what to do', async () => {
    const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'x', source: 'y'.repeat(1100 * 1024) } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect(res.body.error.message).toContain('1 MiB');
    expect(res.body.error.message).toContain('Send a smaller one');
  });

  it('says a custom field has no empty name in the schema’s own words, under body. as every other field', async () => {
    const res = await call('POST', '/api/v1/contacts', { body: { firstName: 'Nameless', customFields: { '': 1 } } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe('Invalid request: body.customFields[""]: a custom field is named by its id or key, not by an empty name');
  });
});

describe('OpenAPI responses', () => {
  const expected: Record<string, string[]> = {
    'get /api/v1/contacts': ['200', '400', '401', '403', '429'],
    'post /api/v1/contacts': ['201', '400', '401', '403', '409', '413', '415', '429'],
    'get /api/v1/contacts/{id}': ['200', '400', '401', '403', '404', '429'],
    'patch /api/v1/contacts/{id}': ['200', '400', '401', '403', '404', '409', '412', '413', '415', '429'],
    'delete /api/v1/contacts/{id}': ['204', '400', '401', '403', '404', '412', '413', '415', '429'],
    'post /api/v1/contacts/{id}/restore': ['200', '400', '401', '403', '404', '409', '413', '415', '429'],
    'get /api/v1/users': ['200', '400', '401', '403', '429'],
    'post /api/v1/users': ['201', '400', '401', '403', '409', '413', '415', '429'],
    'get /api/v1/users/{id}': ['200', '400', '401', '403', '404', '429'],
    'patch /api/v1/users/{id}': ['200', '400', '401', '403', '404', '409', '413', '415', '429'],
    'post /api/v1/users/{id}/deactivate': ['200', '400', '401', '403', '404', '413', '415', '429'],
    'post /api/v1/users/{id}/reactivate': ['200', '400', '401', '403', '404', '413', '415', '429'],
    'get /api/v1/custom-fields': ['200', '400', '401', '403', '429'],
  };

  it('describes every response and documents the errors each operation can answer, with the error body', async () => {
    const doc = await (await fetch(`${t.url}/api/v1/openapi.json`)).json();
    type Response = { description: string; content?: Record<string, { schema: { $ref?: string } }> };
    const ops = Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, Response> }>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ route: `${method} ${path}`, responses: op.responses })),
    );
    expect(ops.map((o) => o.route).sort()).toEqual(Object.keys(expected).sort());
    for (const { route, responses } of ops) {
      expect.soft(Object.keys(responses).sort(), route).toEqual(expected[route]);
      for (const [status, response] of Object.entries(responses)) {
        expect.soft(response.description, `${route} ${status}`).not.toBe('Default Response');
        expect.soft(response.description.length, `${route} ${status}`).toBeGreaterThan(5);
        if (Number(status) >= 400) expect.soft(response.content?.['application/json']?.schema.$ref, `${route} ${status}`).toBe('#/components/schemas/Error');
      }
    }
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message']);
    // What the API checks beyond "a string" is said: a real time zone, a calendar date.
    const input = doc.paths['/api/v1/contacts'].post.requestBody.content['application/json'].schema;
    const props = (input.$ref ? doc.components.schemas[input.$ref.split('/').pop()] : input).properties;
    expect(JSON.stringify(props.timezone)).toContain('IANA time zone');
    expect(JSON.stringify(props.dateOfBirth)).toContain('"pattern"');
    expect(JSON.stringify(props.dateOfBirth)).toContain('YYYY-MM-DD');
    // Only schemas something refers to: no unused input twins of the responses.
    for (const name of Object.keys(doc.components.schemas)) expect(JSON.stringify(doc.paths), name).toContain(`#/components/schemas/${name}`);
    // The 204 of DELETE has no body, and the actions take none.
    expect(doc.paths['/api/v1/contacts/{id}'].delete.responses['204'].content).toBeUndefined();
    expect(doc.paths['/api/v1/contacts/{id}/restore'].post.requestBody).toBeUndefined();
    // The descriptions written in the schemas reach the document.
    expect(doc.components.schemas.Contact.properties.phone.description).toContain('E.164');
  });

  it('documents what a 429 carries, and the read-only properties a PATCH body may send back', async () => {
    const doc = await (await fetch(`${t.url}/api/v1/openapi.json`)).json();
    type Op = { responses: Record<string, { description: string; headers?: Record<string, unknown> }> };
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Op>>)) {
      for (const [method, op] of Object.entries(methods)) {
        const tooMany = op.responses['429'];
        expect.soft(Object.keys(tooMany?.headers ?? {}), `${method} ${path}`).toEqual(['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']);
        // The limit this server applies (the defaults here).
        expect.soft(tooMany?.description, `${method} ${path}`).toContain('more than 300 at once or more than 20 a second');
        expect.soft(op.responses['403']?.description, `${method} ${path}`).toContain('`not_installed`');
      }
    }
    const schemaOf = (body: { content: Record<string, { schema: { $ref?: string } }> }) => {
      const schema = body.content['application/json']!.schema;
      return schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()!] : schema;
    };
    const patch = schemaOf(doc.paths['/api/v1/contacts/{id}'].patch.requestBody);
    expect(patch.additionalProperties).toBe(false);
    for (const name of ['id', 'createdAt', 'updatedAt', 'archivedAt', 'version', 'highlevelId', 'outbound']) {
      expect(patch.properties[name], name).toMatchObject({ readOnly: true, description: expect.stringContaining('Read-only') });
      expect(patch.required ?? [], name).not.toContain(name);
    }
    expect(patch.properties.version.type).toBe('integer');
    // Nothing else is read-only, and a create takes none of them.
    expect(Object.keys(patch.properties).filter((k) => patch.properties[k].readOnly)).toEqual(['id', 'createdAt', 'updatedAt', 'archivedAt', 'version', 'highlevelId', 'outbound']);
    expect(Object.keys(schemaOf(doc.paths['/api/v1/contacts'].post.requestBody).properties)).not.toContain('version');
  });

  it('documents the statuses an operation answers a body it cannot take with', async () => {
    // Every operation but GET reads a body, those that take none too: one not sent as JSON is a 415
    // and one over the limit a 413, as on the others; the document must say so.
    const doc = await (await fetch(`${t.url}/api/v1/openapi.json`)).json();
    const c = await contact();
    const user = await call('POST', '/api/v1/users', { body: { name: 'Body Docs', email: `body-docs-${Date.now()}@example.com` } });
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(methods)) {
        if (method === 'get') continue;
        const url = path.replace('{id}', path.startsWith('/api/v1/users') ? user.body.id : c.id);
        const plain = await call(method.toUpperCase(), url, { body: 'hello', contentType: 'text/plain' });
        expect.soft(Object.keys(op.responses), `${method} ${path} answers ${plain.status}`).toContain(String(plain.status));
        const huge = await call(method.toUpperCase(), url, { body: { x: 'y'.repeat(1100 * 1024) } });
        expect.soft(Object.keys(op.responses), `${method} ${path} answers ${huge.status}`).toContain(String(huge.status));
      }
    }
  });
});
