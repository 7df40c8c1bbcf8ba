// The emulator's custom field definitions over real HTTP (apps/locations.json "Custom Field"):
// the control route that makes them, list with the model filter, get one, create with its
// validation, scopes, contact writes naming a field by key, and worlds saved before definitions.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call, control, ManualClock, testEmulator } from '../helpers/emulator.ts';
import { specErrors } from '../helpers/openapi.ts';
import { ALL_SCOPES, connect, seedAgency, seedApp, type Agency } from '../helpers/oauth.ts';
import { customFieldIdForKey } from '../../emulator/contact-validate.ts';
import type { RunningEmulator } from '../../emulator/server.ts';
import type { MarketplaceApp } from '../../emulator/state.ts';

const SPEC = 'apps/locations.json';
const LIST = '/locations/{locationId}/customFields';
const ONE = '/locations/{locationId}/customFields/{id}';
const ID = /^[A-Za-z0-9]{20}$/;
const CF_SCOPES = ['locations/customFields.readonly', 'locations/customFields.write'];

let clock: ManualClock;
let em: RunningEmulator;
let base: string;
let agency: Agency;
let app: MarketplaceApp;
let token: string;
let locationId: string;

beforeEach(async () => {
  clock = new ManualClock();
  em = await testEmulator({ clock });
  base = em.url;
  agency = seedAgency(em.emu);
  app = seedApp(em.emu, { scopes: [...ALL_SCOPES, ...CF_SCOPES] });
  locationId = agency.locations[0]!.id;
  token = (await connect(base, app, locationId)).access_token;
});

afterEach(async () => {
  await em.close();
});

/** A control call that may fail: status and body instead of a throw. */
const rawControl = (method: string, path: string, body?: unknown) => call(base, method, `/__emulator${path}`, { body, version: null });

const define = (target: string, body: unknown) => control(base, 'POST', `/locations/${target}/custom-fields`, body);

const list = (query = '', t = token, loc = locationId) => call(base, 'GET', `/locations/${loc}/customFields${query}`, { token: t });

const create = (body: unknown, t = token, loc = locationId) => call(base, 'POST', `/locations/${loc}/customFields`, { token: t, body });

/** The sandbox-like set: three contact fields and one opportunity field. */
async function defineDemoFields() {
  const { customFields } = await define(locationId, [
    { name: 'Lead score', dataType: 'NUMERICAL', position: 2 },
    { name: 'Preferred contact time', dataType: 'SINGLE_OPTIONS', picklistOptions: ['Morning', 'Afternoon', 'Evening'], placeholder: 'Pick one', position: 1 },
    { name: 'Deal source', dataType: 'TEXT', model: 'opportunity' },
    { name: 'Notes', dataType: 'LARGE_TEXT', position: 1 },
  ]);
  const [score, time, deal, notes] = customFields as Record<string, any>[];
  return { score: score!, time: time!, deal: deal!, notes: notes! };
}

describe('control route', () => {
  it('stores one definition or a list and answers them as the public API shows them', async () => {
    const one = await define(locationId, { name: 'Pincode', dataType: 'TEXT', placeholder: 'Pin code' });
    expect(one).toEqual({
      customFields: [
        { id: expect.stringMatching(ID), name: 'Pincode', fieldKey: 'contact.pincode', placeholder: 'Pin code', dataType: 'TEXT', position: 0, locationId, model: 'contact' },
      ],
    });
    const { score, time, deal } = await defineDemoFields();
    expect(score).toMatchObject({ name: 'Lead score', fieldKey: 'contact.lead_score', dataType: 'NUMERICAL', position: 2 });
    expect(score).not.toHaveProperty('picklistOptions');
    expect(time).toMatchObject({ fieldKey: 'contact.preferred_contact_time', picklistOptions: ['Morning', 'Afternoon', 'Evening'] });
    expect(deal).toMatchObject({ fieldKey: 'opportunity.deal_source', model: 'opportunity' });
    // The list may also come wrapped as the answer has it.
    const wrapped = await define(locationId, { customFields: [{ name: 'Interests', dataType: 'MULTIPLE_OPTIONS', picklistOptions: ['Whitening'] }] });
    expect(wrapped.customFields[0]).toMatchObject({ fieldKey: 'contact.interests', picklistOptions: ['Whitening'] });
    // A key of one's own (HighLevel keeps a field's key when it is renamed).
    const renamed = await define(locationId, { name: 'Postcode (new)', dataType: 'TEXT', fieldKey: 'contact.zip' });
    expect(renamed.customFields[0]).toMatchObject({ name: 'Postcode (new)', fieldKey: 'contact.zip' });
  });

  it('refuses bad definitions, unknown locations and taken keys, storing nothing of a refused list', async () => {
    const typo = await rawControl('POST', `/locations/${locationId}/custom-fields`, { name: 'X', dataType: 'TEXT', colour: 'red' });
    expect(typo.status).toBe(400);
    expect(typo.body.error).toMatch(/colour/);
    const badType = await rawControl('POST', `/locations/${locationId}/custom-fields`, [{ name: 'X', dataType: 'TEXT' }, { name: 'Y', dataType: 'DROPDOWN' }]);
    expect(badType.status).toBe(400);
    expect(badType.body.error).toMatch(/^1\.dataType/);
    const optionsOnText = await rawControl('POST', `/locations/${locationId}/custom-fields`, { name: 'X', dataType: 'TEXT', picklistOptions: ['a'] });
    expect(optionsOnText.status).toBe(400);
    expect(optionsOnText.body.error).toMatch(/picklistOptions can only be given/);
    expect((await rawControl('POST', '/locations/NoSuchLocation000000/custom-fields', { name: 'X', dataType: 'TEXT' })).status).toBe(404);

    await define(locationId, { name: 'Lead score', dataType: 'NUMERICAL' });
    const taken = await rawControl('POST', `/locations/${locationId}/custom-fields`, [
      { name: 'Fresh', dataType: 'TEXT' },
      { name: 'Lead  Score!', dataType: 'TEXT' },
    ]);
    expect(taken.status).toBe(400);
    expect(taken.body.error).toMatch(/contact\.lead_score already exists/);
    expect((await list()).body.customFields.map((f: any) => f.name)).toEqual(['Lead score']);
    // The same key in another location is another field.
    expect((await define(agency.locations[1]!.id, { name: 'Lead score', dataType: 'NUMERICAL' })).customFields).toHaveLength(1);
  });
});

describe('GET /locations/:locationId/customFields', () => {
  it('lists contact fields by default, filters by model and matches the official schema', async () => {
    const { score, time, deal, notes } = await defineDemoFields();
    const res = await list();
    expect(res.status).toBe(200);
    expect(specErrors(SPEC, 'GET', LIST, 200, res.body)).toEqual([]);
    // By position, then as made.
    expect(res.body.customFields).toEqual([time, notes, score]);
    expect((await list('?model=contact')).body.customFields).toEqual([time, notes, score]);
    expect((await list('?model=opportunity')).body.customFields).toEqual([deal]);
    expect((await list('?model=all')).body.customFields).toEqual([deal, time, notes, score]);
    // Another location's fields are not this one's.
    await define(agency.locations[1]!.id, { name: 'Elsewhere', dataType: 'TEXT' });
    expect((await list('?model=all')).body.customFields).toHaveLength(4);
  });

  it('answers an empty list for a location without fields', async () => {
    const res = await list();
    expect(res.status).toBe(200);
    expect(res.body.customFields).toEqual([]);
  });

  it('refuses an unknown model with 422 and another location with 403', async () => {
    const bad = await list('?model=contacts');
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({
      statusCode: 422,
      error: 'Unprocessable Entity',
      message: ['model must be one of the following values: contact, opportunity, all'],
    });
    expect(specErrors(SPEC, 'GET', LIST, 422, bad.body)).toEqual([]);
    const other = await list('', token, agency.locations[1]!.id);
    expect(other.status).toBe(403);
    expect(other.body.message).toBe('The token does not have access to this location.');
  });
});

describe('GET /locations/:locationId/customFields/:id', () => {
  it('answers one field by id or by field key', async () => {
    const { time } = await defineDemoFields();
    const byId = await call(base, 'GET', `/locations/${locationId}/customFields/${time.id}`, { token });
    expect(byId.status).toBe(200);
    expect(specErrors(SPEC, 'GET', ONE, 200, byId.body)).toEqual([]);
    expect(byId.body.customField).toEqual(time);
    const byKey = await call(base, 'GET', `/locations/${locationId}/customFields/contact.preferred_contact_time`, { token });
    expect(byKey.body.customField).toEqual(time);
  });

  it('answers 400 for an unknown id and for another location\'s field', async () => {
    const elsewhere = (await define(agency.locations[1]!.id, { name: 'Elsewhere', dataType: 'TEXT' })).customFields[0];
    for (const id of ['AbCdEfGhIjKlMnOpQrSt', elsewhere.id]) {
      const res = await call(base, 'GET', `/locations/${locationId}/customFields/${id}`, { token });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, message: `Custom field with id ${id} not found` });
      expect(specErrors(SPEC, 'GET', ONE, 400, res.body)).toEqual([]);
    }
  });
});

describe('POST /locations/:locationId/customFields', () => {
  it('creates a field (201) with its key made from the name, and lists it', async () => {
    const res = await create({ name: 'Preferred Contact Time', dataType: 'SINGLE_OPTIONS', options: ['Morning', 'Evening'], placeholder: 'When?', position: 50 });
    expect(res.status).toBe(201);
    expect(specErrors(SPEC, 'POST', LIST, 201, res.body)).toEqual([]);
    expect(res.body.customField).toEqual({
      id: expect.stringMatching(ID),
      name: 'Preferred Contact Time',
      fieldKey: 'contact.preferred_contact_time',
      placeholder: 'When?',
      dataType: 'SINGLE_OPTIONS',
      position: 50,
      picklistOptions: ['Morning', 'Evening'],
      locationId,
      model: 'contact',
    });
    const opportunity = await create({ name: 'Budget', dataType: 'MONETORY', model: 'opportunity' });
    expect(opportunity.body.customField).toMatchObject({ fieldKey: 'opportunity.budget', model: 'opportunity', position: 0 });
    const files = await create({ name: 'Documents', dataType: 'FILE_UPLOAD', isMultipleFile: true, maxNumberOfFiles: 3, acceptedFormat: ['.pdf'] });
    expect(files.body.customField).toMatchObject({ isMultiFileAllowed: true, maxFileLimit: 3 });
    const boxes = await create({ name: 'Kids', dataType: 'TEXTBOX_LIST', textBoxListOptions: [{ label: 'First', prefillValue: '' }, { label: 'Second' }] });
    expect(boxes.body.customField).toMatchObject({ picklistOptions: ['First', 'Second'] });
    expect((await list('?model=all')).body.customFields.map((f: any) => f.name)).toEqual(['Budget', 'Documents', 'Kids', 'Preferred Contact Time']);
  });

  it('refuses invalid bodies with 422 and every message, and a taken key with 400', async () => {
    const empty = await create({});
    expect(empty.status).toBe(422);
    expect(specErrors(SPEC, 'POST', LIST, 422, empty.body)).toEqual([]);
    expect(empty.body.message).toEqual(expect.arrayContaining(['name must be a string', 'dataType must be a string']));

    const wrong = await create({ name: 'X', dataType: 'DROPDOWN', model: 'company', position: '1', parentId: 'abc', options: [1] });
    expect(wrong.status).toBe(422);
    expect(wrong.body.message).toEqual(
      expect.arrayContaining([
        'property parentId should not exist',
        expect.stringMatching(/^dataType must be one of the following values: TEXT, /),
        'model must be one of the following values: contact, opportunity',
        'position must be a number conforming to the specified constraints',
        'each value in options must be a string',
      ]),
    );
    const optionsOnText = await create({ name: 'X', dataType: 'TEXT', options: ['a'] });
    expect(optionsOnText.status).toBe(422);
    const blank = await create({ name: '  ', dataType: 'TEXT' });
    expect(blank.body.message).toEqual(['name should not be empty']);
    expect((await list('?model=all')).body.customFields).toEqual([]);

    expect((await create({ name: 'Lead score', dataType: 'NUMERICAL' })).status).toBe(201);
    const again = await create({ name: 'lead_score', dataType: 'TEXT' });
    expect(again.status).toBe(400);
    expect(again.body.message).toBe('A custom field with the key contact.lead_score already exists in this location.');
    // Another model has its own keys.
    expect((await create({ name: 'Lead score', dataType: 'NUMERICAL', model: 'opportunity' })).status).toBe(201);
  });
});

describe('scopes and token types', () => {
  it('refuses a token without the custom field scopes as it refuses other missing scopes', async () => {
    const narrow = (await connect(base, app, locationId, { scope: 'contacts.readonly contacts.write locations.readonly' })).access_token;
    const { time } = await defineDemoFields();
    for (const res of [
      await list('', narrow),
      await call(base, 'GET', `/locations/${locationId}/customFields/${time.id}`, { token: narrow }),
      await create({ name: 'X', dataType: 'TEXT' }, narrow),
    ]) {
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ statusCode: 401, message: 'The token is not authorized for this scope.', error: 'Unauthorized' });
    }
  });

  it('takes each scope on its own: the write scope creates, the read scope reads', async () => {
    const writeOnly = (await connect(base, app, locationId, { scope: 'locations/customFields.write' })).access_token;
    const readOnly = (await connect(base, app, locationId, { scope: 'locations/customFields.readonly' })).access_token;
    expect((await create({ name: 'X', dataType: 'TEXT' }, writeOnly)).status).toBe(201);
    expect((await list('', writeOnly)).status).toBe(401);
    expect((await create({ name: 'Y', dataType: 'TEXT' }, readOnly)).status).toBe(401);
    expect((await list('', readOnly)).body.customFields).toHaveLength(1);
  });

  it('serves the location\'s private integration token and refuses a Company token', async () => {
    // A location made through the control API, which registers its private token.
    const made = await control(base, 'POST', '/locations', { name: 'Private', companyId: agency.company.id });
    expect((await create({ name: 'By hand', dataType: 'TEXT' }, made.privateToken, made.id)).status).toBe(201);
    expect((await list('', made.privateToken, made.id)).body.customFields).toHaveLength(1);
    const company = (await connect(base, app, 'agency')).access_token;
    const res = await list('', company);
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/authClass type is not allowed/);
  });
});

describe('contact writes name fields by key', () => {
  const contactBody = (extra: Record<string, unknown>) => ({ locationId, firstName: 'Ann', email: `ann${Math.random()}@example.com`, ...extra });

  it('gives a key the id of the location\'s definition on create, update and upsert', async () => {
    const { score, time } = await defineDemoFields();
    const created = await call(base, 'POST', '/contacts/', {
      token,
      body: contactBody({ customFields: [{ key: 'contact.lead_score', field_value: 72 }, { key: 'preferred_contact_time', field_value: 'Evening' }] }),
    });
    expect(created.status).toBe(201);
    expect(created.body.contact.customFields).toEqual([
      { id: score.id, value: 72 },
      { id: time.id, value: 'Evening' },
    ]);
    const id = created.body.contact.id;
    // By key again: the same entry changes, no second one appears.
    const updated = await call(base, 'PUT', `/contacts/${id}`, { token, body: { customFields: [{ key: 'Lead_Score', field_value: 80 }] } });
    expect(updated.status).toBe(200);
    expect(updated.body.contact.customFields).toEqual([
      { id: score.id, value: 80 },
      { id: time.id, value: 'Evening' },
    ]);
    const email = updated.body.contact.email;
    const upserted = await call(base, 'POST', '/contacts/upsert', {
      token,
      body: { locationId, email, customFields: [{ key: 'contact.preferred_contact_time', field_value: 'Morning' }] },
    });
    expect(upserted.body).toMatchObject({ new: false });
    expect(upserted.body.contact.customFields).toEqual([
      { id: score.id, value: 80 },
      { id: time.id, value: 'Morning' },
    ]);
  });

  it('keeps the derived id for a key without a definition, and accepts ids without one', async () => {
    const { deal } = await defineDemoFields();
    // An opportunity field's key is not a contact field; another location's definitions do not count.
    await define(agency.locations[1]!.id, { name: 'Shoe size', dataType: 'NUMERICAL' });
    const res = await call(base, 'POST', '/contacts/', {
      token,
      body: contactBody({
        customFields: [
          { key: 'contact.shoe_size', field_value: '42' },
          { key: 'opportunity.deal_source', field_value: 'Fair' },
          { id: 'AbCdEfGhIjKlMnOpQrSt', field_value: 'blue' },
        ],
      }),
    });
    expect(res.status).toBe(201);
    expect(res.body.contact.customFields).toEqual([
      { id: customFieldIdForKey('contact.shoe_size'), value: '42' },
      { id: customFieldIdForKey('opportunity.deal_source'), value: 'Fair' },
      { id: 'AbCdEfGhIjKlMnOpQrSt', value: 'blue' },
    ]);
    expect(res.body.contact.customFields.map((f: { id: string }) => f.id)).not.toContain(deal.id);
  });
});

describe('saved worlds', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'emulator-cf-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads a world saved before custom field definitions existed, then keeps the ones made since', async () => {
    const path = join(dir, 'world.json');
    const first = await testEmulator({ persistPath: path });
    const made = await control(first.url, 'POST', '/locations', { name: 'Old Street' });
    await first.close();
    // The file as an emulator without definitions wrote it: no `customFields` key at all.
    const saved = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    delete saved.customFields;
    writeFileSync(path, JSON.stringify(saved));

    const second = await testEmulator({ persistPath: path });
    try {
      const pit = made.privateToken as string;
      const empty = await call(second.url, 'GET', `/locations/${made.id}/customFields?model=all`, { token: pit });
      expect(empty.status).toBe(200);
      expect(empty.body.customFields).toEqual([]);
      const created = await call(second.url, 'POST', `/locations/${made.id}/customFields`, { token: pit, body: { name: 'Pincode', dataType: 'TEXT' } });
      expect(created.status).toBe(201);
    } finally {
      await second.close();
    }

    const third = await testEmulator({ persistPath: path });
    try {
      const res = await call(third.url, 'GET', `/locations/${made.id}/customFields`, { token: made.privateToken });
      expect(res.body.customFields).toEqual([expect.objectContaining({ name: 'Pincode', fieldKey: 'contact.pincode', locationId: made.id })]);
    } finally {
      await third.close();
    }
  });
});
