// Custom field definitions, Version 2021-07-28 (apps/locations.json "Custom Field"): list with the
// `model` filter, get one by id or field key, create. Contact writes name these fields in
// `customFields[]` by id or key (custom-fields.ts resolveCustomFieldKeys).
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../server.ts';
import { fail, ok, requireLocation, unprocessable } from '../http.ts';
import {
  CUSTOM_FIELD_DATA_TYPES,
  CUSTOM_FIELD_MODELS,
  addCustomFields,
  customFieldView,
  definitionProblems,
  findCustomField,
  listCustomFields,
  type CustomFieldInput,
} from '../custom-fields.ts';
import type { CustomFieldModel } from '../state.ts';

// Custom fields are a sub-account resource ("bearer" security), like contacts. A write scope does
// not stand in for the read scope: the emulator treats every scope on its own.
const READ = { scopes: ['locations/customFields.readonly'], access: 'location' as const };
const WRITE = { scopes: ['locations/customFields.write'], access: 'location' as const };

const LIST_MODELS = [...CUSTOM_FIELD_MODELS, 'all'] as const;

export function registerCustomFieldsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;

  app.get('/locations/:locationId/customFields', async (req, reply) => {
    const auth = ctx.auth(req, reply, READ);
    const { locationId } = req.params as { locationId: string };
    requireLocation(emu, auth, locationId);
    const { model } = (req.query ?? {}) as { model?: unknown };
    if (model !== undefined && !LIST_MODELS.includes(model as (typeof LIST_MODELS)[number])) {
      unprocessable([`model must be one of the following values: ${LIST_MODELS.join(', ')}`]);
    }
    // Guess: without `model` the contact fields are listed (the spec gives no default).
    const fields = listCustomFields(emu, locationId, (model as CustomFieldModel | 'all' | undefined) ?? 'contact');
    return ok(reply, 200, { customFields: fields.map(customFieldView) });
  });

  app.get('/locations/:locationId/customFields/:id', async (req, reply) => {
    // The spec names no scope for this operation; the list's read scope is asked (guess).
    const auth = ctx.auth(req, reply, READ);
    const { locationId, id } = req.params as { locationId: string; id: string };
    requireLocation(emu, auth, locationId);
    const field = findCustomField(emu, locationId, id);
    // Like an unknown contact: 400, as the spec declares no 404 (the text is a guess).
    if (!field) fail(400, `Custom field with id ${id} not found`);
    return ok(reply, 200, { customField: customFieldView(field) });
  });

  app.post('/locations/:locationId/customFields', async (req, reply) => {
    const auth = ctx.auth(req, reply, WRITE);
    const { locationId } = req.params as { locationId: string };
    requireLocation(emu, auth, locationId);
    const [created] = addCustomFields(emu, locationId, [parseCreateBody(req.body)]);
    return ok(reply, 201, { customField: customFieldView(created!) });
  });
}

/** The body's keys: CreateCustomFieldsDTO, plus `options` (see parseCreateBody). */
const CREATE_KEYS = new Set([
  'name',
  'dataType',
  'placeholder',
  'acceptedFormat',
  'isMultipleFile',
  'maxNumberOfFiles',
  'textBoxListOptions',
  'position',
  'model',
  'options',
]);

/**
 * Validates a create body the way HighLevel's class-validator pipe does (unknown keys and wrong
 * types: 422 with every message). The create DTO has no property for an option field's choices,
 * yet definitions answer them (`picklistOptions`); `options: string[]`, the name integrations send,
 * is accepted for them (guess). TEXTBOX_LIST's `textBoxListOptions` labels become its options.
 */
function parseCreateBody(raw: unknown): CustomFieldInput {
  const body = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const messages: string[] = [];
  for (const key of Object.keys(body)) if (!CREATE_KEYS.has(key)) messages.push(`property ${key} should not exist`);

  const { name, dataType, placeholder, position, model, options, isMultipleFile, maxNumberOfFiles, acceptedFormat, textBoxListOptions } = body;
  if (typeof name !== 'string') messages.push('name must be a string');
  else if (!name.trim()) messages.push('name should not be empty');
  if (typeof dataType !== 'string') messages.push('dataType must be a string');
  else if (!(CUSTOM_FIELD_DATA_TYPES as readonly string[]).includes(dataType)) {
    messages.push(`dataType must be one of the following values: ${CUSTOM_FIELD_DATA_TYPES.join(', ')}`);
  }
  if (placeholder !== undefined && typeof placeholder !== 'string') messages.push('placeholder must be a string');
  if (position !== undefined && (typeof position !== 'number' || !Number.isFinite(position))) {
    messages.push('position must be a number conforming to the specified constraints');
  }
  if (model !== undefined && !(CUSTOM_FIELD_MODELS as readonly unknown[]).includes(model)) {
    messages.push(`model must be one of the following values: ${CUSTOM_FIELD_MODELS.join(', ')}`);
  }
  checkStringArray('options', options, messages);
  checkStringArray('acceptedFormat', acceptedFormat, messages);
  if (isMultipleFile !== undefined && typeof isMultipleFile !== 'boolean') messages.push('isMultipleFile must be a boolean value');
  if (maxNumberOfFiles !== undefined && (typeof maxNumberOfFiles !== 'number' || !Number.isFinite(maxNumberOfFiles))) {
    messages.push('maxNumberOfFiles must be a number conforming to the specified constraints');
  }
  const labels = textBoxLabels(textBoxListOptions, messages);
  if (labels !== undefined && dataType !== 'TEXTBOX_LIST') messages.push('textBoxListOptions can only be given for TEXTBOX_LIST');
  if (messages.length) unprocessable(messages);

  const input: CustomFieldInput = {
    name: (name as string).trim(),
    dataType: dataType as string,
    ...(model !== undefined ? { model: model as CustomFieldModel } : {}),
    ...(placeholder !== undefined ? { placeholder: placeholder as string } : {}),
    ...(position !== undefined ? { position: position as number } : {}),
    ...(options !== undefined || labels !== undefined ? { picklistOptions: [...((options as string[]) ?? []), ...(labels ?? [])] } : {}),
    ...(isMultipleFile !== undefined ? { isMultiFileAllowed: isMultipleFile as boolean } : {}),
    ...(maxNumberOfFiles !== undefined ? { maxFileLimit: maxNumberOfFiles as number } : {}),
  };
  const problems = definitionProblems(input, 'options');
  if (problems.length) unprocessable(problems);
  return input;
}

function checkStringArray(key: string, value: unknown, messages: string[]): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) messages.push(`${key} must be an array`);
  else if (value.some((v) => typeof v !== 'string')) messages.push(`each value in ${key} must be a string`);
}

/** textBoxListOptions: `{ label, prefillValue? }` items (textBoxListOptionsSchema); returns the labels. */
function textBoxLabels(value: unknown, messages: string[]): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    messages.push('textBoxListOptions must be an array');
    return undefined;
  }
  const labels: string[] = [];
  value.forEach((item, i) => {
    const path = `textBoxListOptions.${i}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      messages.push(`nested property textBoxListOptions must be either object or array`);
      return;
    }
    const entry = item as Record<string, unknown>;
    for (const k of Object.keys(entry)) if (k !== 'label' && k !== 'prefillValue') messages.push(`property ${path}.${k} should not exist`);
    if (typeof entry.label !== 'string') messages.push(`${path}.label must be a string`);
    else labels.push(entry.label);
    if (entry.prefillValue !== undefined && typeof entry.prefillValue !== 'string') messages.push(`${path}.prefillValue must be a string`);
  });
  return labels;
}
