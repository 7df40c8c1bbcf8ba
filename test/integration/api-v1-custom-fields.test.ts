// The location's contact custom fields over real HTTP: the sync loop lists them from the emulated
// HighLevel, the REST API lists them and checks contact writes against them (a field named by its
// key is stored under its id, a value of the wrong kind or an unknown field is refused), a field
// made in HighLevel after the listing is listed again after a refused write, and an install whose
// token lacks the scope keeps syncing with writes unchecked and the reason told.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../db/api-keys.ts';
import { updateContact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { syncStatus } from '../../db/sync-status.ts';
import { control, ManualClock } from '../helpers/emulator.ts';
import { restCall, type RestRequest } from '../helpers/rest.ts';
import { createAgency, installLocation, startTestTandem, waitForInstallation, type TestTandem } from '../helpers/tandem.ts';

let t: TestTandem;
const clock = new ManualClock(Date.parse('2026-12-07T09:00:00.000Z'));
let A: string;
let B: string;
let keyA: string;
let keyB: string;
let adminId: string;

beforeAll(async () => {
  t = await startTestTandem({ sync: { start: false }, clock });
  const agency = await createAgency(t, { name: 'Fieldwork Agency', locations: ['Cedar Dental', 'Birch Roofing'] });
  [A, B] = agency.locations.map((l) => l.id) as [string, string];
  adminId = agency.adminId;
  for (const id of [A, B]) {
    expect((await installLocation(t, id, { userId: agency.adminId })).status).toBe(200);
    await waitForInstallation(t, id, 'active');
  }
  keyA = createApiKey(t.db, { locationId: A, name: 'A', createdBy: null, now: clock.now() }).key;
  keyB = createApiKey(t.db, { locationId: B, name: 'B', createdBy: null, now: clock.now() }).key;
});
afterAll(async () => {
  await t?.close();
});

const api = (method: string, path: string, opts: RestRequest = {}) => restCall(t.url, method, path, { key: keyA, ...opts });

interface Defined {
  id: string;
  name: string;
  fieldKey: string;
}

/** Custom fields made in the emulated HighLevel (its control API), returned as stored. */
async function define(locationId: string, fields: Array<{ name: string; dataType: string; picklistOptions?: string[]; position?: number }>): Promise<Defined[]> {
  const res = await control<{ customFields: Defined[] }>(t.highlevelUrl, 'POST', `/locations/${locationId}/custom-fields`, { customFields: fields });
  return fields.map((f) => res.customFields.find((d) => d.name === f.name)!);
}

/** How many times Tandem has listed the location's custom fields in the emulated HighLevel. */
const listingsOf = (locationId: string) => t.emulator.emu.requestLog.filter((r) => r.path.startsWith(`/locations/${locationId}/customFields`)).length;

/** HighLevel refuses the location's custom field listing as it refuses a token without the scope. */
const refuseScope = (locationId: string) =>
  control(t.highlevelUrl, 'POST', '/faults', {
    path: `/locations/${locationId}/customFields`,
    status: 401,
    body: { statusCode: 401, message: 'The token is not authorized for this scope.' },
    times: 1000,
  });

async function pass(locationId: string) {
  const r = await t.services.sync.runOnce(locationId);
  expect(r.error, r.error).toBeUndefined();
  return r;
}

describe('custom fields', () => {
  let score: Defined;
  let time: Defined;

  it('are not checked before they have been listed', async () => {
    const list = await api('GET', '/api/v1/custom-fields');
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ customFields: [], listedAt: null, problem: null });
    const res = await api('POST', '/api/v1/contacts', { body: { firstName: 'Early', customFields: { whatever: 'kept' } } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.customFields).toEqual({ whatever: 'kept' });
    // A long text (HighLevel's LARGE_TEXT holds more than 64 KiB) goes back as GET gave it (QA: 413).
    const long = await api('POST', '/api/v1/contacts', { body: { firstName: 'Long', customFields: { notes: 'n'.repeat(70_000) } } });
    expect(long.status).toBe(201);
    const { id, createdAt, updatedAt, archivedAt, ...asGiven } = (await api('GET', `/api/v1/contacts/${long.body.id}`)).body;
    const back = await api('PATCH', `/api/v1/contacts/${id}`, { body: asGiven });
    expect(back.status, JSON.stringify(back.body).slice(0, 300)).toBe(200);
  });

  it('are listed from HighLevel by the loop, in HighLevel’s order', async () => {
    const defined = await define(A, [
      { name: 'Lead score', dataType: 'NUMERICAL', position: 1 },
      { name: 'Preferred time', dataType: 'SINGLE_OPTIONS', picklistOptions: ['Morning', 'Afternoon'], position: 0 },
    ]);
    score = defined[0]!;
    time = defined[1]!;
    await pass(A);
    const list = await api('GET', '/api/v1/custom-fields');
    expect(list.body).toEqual({
      customFields: [
        { id: time.id, name: 'Preferred time', key: time.fieldKey, dataType: 'SINGLE_OPTIONS', options: ['Morning', 'Afternoon'], writable: true },
        { id: score.id, name: 'Lead score', key: score.fieldKey, dataType: 'NUMERICAL', options: [], writable: true },
      ],
      listedAt: new Date(clock.now()).toISOString(),
      problem: null,
    });
    // Each location lists its own.
    expect((await api('GET', '/api/v1/custom-fields', { key: keyB })).body.customFields).toEqual([]);
  });

  it('takes a field by its key, stores it under its id, and sends it to HighLevel', async () => {
    const res = await api('POST', '/api/v1/contacts', {
      body: { firstName: 'Keyed', email: 'keyed@example.com', customFields: { [score.fieldKey]: '42', [time.fieldKey.replace(/^contact\./, '')]: 'morning' } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.customFields).toEqual({ [score.id]: 42, [time.id]: 'Morning' });
    await pass(A);
    const link = getLinkByContact(t.db, A, res.body.id);
    expect(link).toBeDefined();
    const doc = t.emulator.emu.contact(link!.highlevelId)!;
    expect(doc.customFields).toEqual(expect.arrayContaining([{ id: score.id, value: 42 }, { id: time.id, value: 'Morning' }]));

    const patched = await api('PATCH', `/api/v1/contacts/${res.body.id}`, { body: { customFields: { [score.id]: null, [time.id]: 'Afternoon' } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.customFields).toEqual({ [time.id]: 'Afternoon' });
  });

  it('refuses a value of the wrong kind, saying what the field takes', async () => {
    const res = await api('POST', '/api/v1/contacts', { body: { firstName: 'Wrong', customFields: { [score.id]: 'lots', [time.id]: 'Evening' } } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toBe(
      `Invalid request: body.customFields.${score.id}: "Lead score" is a NUMERICAL field: send a number; body.customFields.${time.id}: "Preferred time" has no option "Evening"; its options are "Morning", "Afternoon".`,
    );
  });

  it('refuses a field HighLevel has not got; one made since is listed again a minute after the last listing, and then taken', async () => {
    const listedAt = Date.parse((await api('GET', '/api/v1/custom-fields')).body.listedAt);
    const [referral] = await define(A, [{ name: 'Referral', dataType: 'TEXT' }]);
    const body = { firstName: 'Referred', customFields: { [referral!.fieldKey]: 'Dr. Osei' } };
    const relistAt = new Date(listedAt + 60_000).toISOString();
    let res = await api('POST', '/api/v1/contacts', { body });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('unknown_custom_field');
    expect(res.body.error.message).toBe(
      `Invalid request: body.customFields.${referral!.fieldKey}: not a custom field of this location as HighLevel listed them at ${new Date(listedAt).toISOString()} (GET /api/v1/custom-fields lists them; a field is named by its id or its key); Tandem lists them again at ${relistAt} (a minute after the last listing at the soonest): a field made in HighLevel since can be written then.`,
    );
    // Asked again before then: the same listing, no second one.
    clock.advance(20_000);
    res = await api('POST', '/api/v1/contacts', { body });
    expect(res.body.error.message).toContain(`Tandem lists them again at ${relistAt}`);
    // A pass before it is due does not list; the one at that time does, without another refused write.
    const before = listingsOf(A);
    await pass(A);
    expect(listingsOf(A)).toBe(before);
    clock.set(Date.parse(relistAt));
    await pass(A);
    expect(listingsOf(A)).toBe(before + 1);
    res = await api('POST', '/api/v1/contacts', { body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.customFields).toEqual({ [referral!.id]: 'Dr. Osei' });
  });

  it('tells a paused location’s writer that the fields are listed again when sync resumes', async () => {
    clock.advance(61_000);
    updateSyncSettings(t.db, { locationId: A, patch: { paused: true }, user: { id: 'test', name: 'Test' }, now: clock.now() });
    try {
      const res = await api('POST', '/api/v1/contacts', { body: { firstName: 'Paused', customFields: { notYetListed: 'x' } } });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/; sync is paused for this location, so Tandem lists them again when it is resumed\.$/);
    } finally {
      updateSyncSettings(t.db, { locationId: A, patch: { paused: false }, user: { id: 'test', name: 'Test' }, now: clock.now() });
    }
  });

  it('clears a value held for a field HighLevel no longer has, and takes a held value sent back by key', async () => {
    const res = await api('POST', '/api/v1/contacts', { body: { firstName: 'Held' } });
    // Values HighLevel gave: one of a field it has since deleted, one no option of its field.
    const contact = updateContact(t.db, { locationId: A, id: res.body.id, patch: { customFields: { cfGone000000000000001: 'old', [time.id]: 'Night' } }, now: clock.now(), origin: 'remote' });
    const patched = await api('PATCH', `/api/v1/contacts/${contact.id}`, { body: { customFields: { cfGone000000000000001: null, [time.fieldKey]: 'Night' } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.customFields).toEqual({ [time.id]: 'Night' });
  });

  it('without the scope: the reason is told, writes go unchecked, contacts still sync', async () => {
    await refuseScope(B);
    try {
      const created = await api('POST', '/api/v1/contacts', { key: keyB, body: { firstName: 'Unchecked', email: 'unchecked@example.com', customFields: { anyField: 'as sent' } } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      await pass(B);
      const list = await api('GET', '/api/v1/custom-fields', { key: keyB });
      expect(list.body.listedAt).toBeNull();
      expect(list.body.problem).toBe(
        "HighLevel did not let Tandem read this sub-account's custom fields (it answered 401: The token is not authorized for this scope). Installing Tandem on the sub-account again grants the access it needs (the scope locations/customFields.readonly).",
      );
      expect(getLinkByContact(t.db, B, created.body.id)).toBeDefined();
      // The panel's status strip tells the admin, who alone can install again.
      expect(syncStatus(t.db, B).customFieldsProblem?.message).toBe(list.body.problem);
    } finally {
      await control(t.highlevelUrl, 'DELETE', '/faults');
    }
  });

  it('a listing that failed (not refused) is tried again after five minutes, not an hour', async () => {
    await control(t.highlevelUrl, 'POST', '/faults', { path: `/locations/${B}/customFields`, status: 500, body: { message: 'Internal server error' }, times: 1 });
    // Refused a moment ago (the test above): asked to list again, as a refused write does.
    t.services.sync.customFieldsChanged(B);
    await pass(B);
    let list = await api('GET', '/api/v1/custom-fields', { key: keyB });
    expect(list.body.listedAt).toBeNull();
    expect(list.body.problem).toContain("Listing this sub-account's custom fields in HighLevel failed");
    const tried = listingsOf(B);
    clock.advance(4 * 60_000);
    await pass(B);
    expect(listingsOf(B)).toBe(tried);
    clock.advance(61_000);
    await pass(B);
    expect(listingsOf(B)).toBe(tried + 1);
    list = await api('GET', '/api/v1/custom-fields', { key: keyB });
    expect(list.body).toEqual({ customFields: [], listedAt: new Date(clock.now()).toISOString(), problem: null });
  });

  it('after a failed listing, a refused write asks for the next a minute after that failure, and says so', async () => {
    clock.advance(2 * 60_000);
    await control(t.highlevelUrl, 'POST', '/faults', { path: `/locations/${A}/customFields`, status: 500, body: { message: 'Internal server error' }, times: 1 });
    const body = { firstName: 'Blip', customFields: { 'contact.after_blip': 'x' } };
    // The listing is old: asked for now, and the pass's listing fails.
    expect((await api('POST', '/api/v1/contacts', { body })).body.error.message).toContain('Tandem lists them again now');
    await pass(A);
    const failedAt = clock.now();
    await define(A, [{ name: 'After blip', dataType: 'TEXT' }]);
    const res = await api('POST', '/api/v1/contacts', { body });
    expect(res.body.error.message).toContain(`Tandem lists them again at ${new Date(failedAt + 60_000).toISOString()}`);
    expect(res.body.error.message).toContain("The latest listing failed: Listing this sub-account's custom fields in HighLevel failed");
    clock.set(failedAt + 60_000);
    await pass(A);
    expect((await api('POST', '/api/v1/contacts', { body })).status).toBe(201);
  });

  it('takes a list of numbers, or of strings, for a multi-option field whose options are numbers, and names an option it has not', async () => {
    const [visits, days, grade] = await define(A, [
      { name: 'Visits', dataType: 'MULTIPLE_OPTIONS', picklistOptions: ['1', '2', '3'] },
      { name: 'Days', dataType: 'CHECKBOX', picklistOptions: ['1', '2', '3'] },
      { name: 'Grade', dataType: 'SINGLE_OPTIONS', picklistOptions: ['1', '2', '3'] },
    ]);
    clock.advance(61_000);
    t.services.sync.customFieldsChanged(A);
    await pass(A);
    const res = await api('POST', '/api/v1/contacts', { body: { firstName: 'Counted', customFields: { [visits!.id]: [1, 2], [days!.fieldKey]: ['3', '1'], [grade!.id]: 2 } } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.customFields).toEqual({ [visits!.id]: ['1', '2'], [days!.id]: ['3', '1'], [grade!.id]: '2' });
    const patched = await api('PATCH', `/api/v1/contacts/${res.body.id}`, { body: { customFields: { [days!.id]: [2] } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.customFields[days!.id]).toEqual(['2']);

    const strange = await api('POST', '/api/v1/contacts', { body: { firstName: 'Counted', customFields: { [visits!.id]: [1, 4], [days!.id]: ['2', '5'] } } });
    expect(strange.status).toBe(400);
    expect(strange.body.error.code).toBe('invalid_request');
    expect(strange.body.error.message).toBe(
      `Invalid request: body.customFields.${visits!.id}: "Visits" has no option 4; its options are "1", "2", "3"; body.customFields.${days!.id}: "Days" has no option "5"; its options are "1", "2", "3".`,
    );
    // A list is no value of a single-option field, of numbers or not.
    const listed = await api('POST', '/api/v1/contacts', { body: { firstName: 'Counted', customFields: { [grade!.id]: [1] } } });
    expect(listed.status).toBe(400);
    expect(listed.body.error.message).toBe(`Invalid request: body.customFields.${grade!.id}: "Grade" is a SINGLE_OPTIONS field: send one of its options ("1", "2", "3").`);
    // [] still clears.
    const cleared = await api('PATCH', `/api/v1/contacts/${res.body.id}`, { body: { customFields: { [visits!.id]: [] } } });
    expect(cleared.body.customFields[visits!.id]).toBeUndefined();
  });

  it('a listing refused for the scope is not promised again, and is made once the sub-account is installed again', async () => {
    await refuseScope(B);
    t.services.sync.customFieldsChanged(B);
    await pass(B);
    // B was listed before (an empty list): writes are checked, and the refusal says why no listing comes.
    const res = await api('POST', '/api/v1/contacts', { key: keyB, body: { firstName: 'Scoped', customFields: { anything: 'x' } } });
    expect(res.body.error.message).toContain('; Tandem cannot list them again until the sub-account is installed again: HighLevel did not let Tandem read');
    await control(t.highlevelUrl, 'DELETE', '/faults');
    // A pass with the same token does not list; a new token (installed again) does.
    const before = listingsOf(B);
    clock.advance(1_000);
    await pass(B);
    expect(listingsOf(B)).toBe(before);
    expect((await installLocation(t, B, { userId: adminId })).status).toBe(200);
    await pass(B);
    expect(listingsOf(B)).toBe(before + 1);
    expect((await api('GET', '/api/v1/custom-fields', { key: keyB })).body.problem).toBeNull();
  });
});
