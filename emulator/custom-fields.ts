// A location's custom field definitions (apps/locations.json, "Custom Field" operations): the
// create body's validation, the stored definition, the shape HighLevel answers it in, and how a
// contact write's `customFields[].key` finds the field's id. Shared by the public API and the
// control API, so a definition made either way is the same.
import type { Emulator } from './emulator.ts';
import { fail, sparse } from './http.ts';
import { recordId } from './ids.ts';
import { isoAt, type CustomField, type CustomFieldModel } from './state.ts';
import type { ContactInput } from './contact-validate.ts';

/**
 * The data types HighLevel names (apps/custom-fields.json's enum, plus SIGNATURE, which its UI
 * offers). The locations spec types `dataType` as a bare string; anything else is refused (guess).
 */
export const CUSTOM_FIELD_DATA_TYPES = [
  'TEXT',
  'LARGE_TEXT',
  'NUMERICAL',
  'PHONE',
  'MONETORY',
  'CHECKBOX',
  'SINGLE_OPTIONS',
  'MULTIPLE_OPTIONS',
  'RADIO',
  'DATE',
  'TEXTBOX_LIST',
  'FILE_UPLOAD',
  'SIGNATURE',
  'EMAIL',
] as const;

export const CUSTOM_FIELD_MODELS = ['contact', 'opportunity'] as const;

/** Types with a list of choices (strings). TEXTBOX_LIST's boxes are kept the same way (picklistOptions). */
const PICKLIST_TYPES = new Set(['SINGLE_OPTIONS', 'MULTIPLE_OPTIONS', 'RADIO', 'CHECKBOX', 'TEXTBOX_LIST']);

/** A definition to store: validated, not yet given an id, key or location. */
export interface CustomFieldInput {
  name: string;
  dataType: string;
  model?: CustomFieldModel;
  placeholder?: string;
  position?: number;
  picklistOptions?: string[];
  isMultiFileAllowed?: boolean;
  maxFileLimit?: number;
  /** Control API only: a key other than the name's (HighLevel keeps a field's key when it is renamed). */
  fieldKey?: string;
}

/** `Preferred contact time` -> `preferred_contact_time`: lower case, accents dropped, runs of anything else one `_`. */
export function snakeCase(name: string): string {
  return name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/**
 * Problems with a definition that both APIs refuse (their own checks cover types and unknown
 * keys); `optionsName` is what the caller's body calls the choices.
 */
export function definitionProblems(input: CustomFieldInput, optionsName = 'picklistOptions'): string[] {
  const problems: string[] = [];
  const model = input.model ?? 'contact';
  if (!snakeCase(input.name)) problems.push('name must contain at least one letter or digit');
  if (input.picklistOptions !== undefined && !PICKLIST_TYPES.has(input.dataType)) {
    problems.push(`${optionsName} can only be given for ${[...PICKLIST_TYPES].join(', ')}`);
  }
  if (input.fieldKey !== undefined && !new RegExp(`^${model}\\.[a-z0-9_]+$`).test(input.fieldKey)) {
    problems.push(`fieldKey must look like ${model}.<lower_case_key>`);
  }
  return problems;
}

/** The location's definitions (all models), in creation order. */
export function customFieldsOf(emu: Emulator, locationId: string): CustomField[] {
  return emu.world.customFields[locationId] ?? [];
}

/**
 * Stores definitions for a location, all or none: 400 when a field key is already taken in the
 * location or twice in the list (guess: HighLevel's answer to a duplicate name is undocumented).
 */
export function addCustomFields(emu: Emulator, locationId: string, inputs: CustomFieldInput[]): CustomField[] {
  const existing = customFieldsOf(emu, locationId);
  const taken = new Set(existing.map((f) => f.fieldKey));
  const now = isoAt(emu.now());
  const created: CustomField[] = [];
  for (const input of inputs) {
    const model = input.model ?? 'contact';
    const fieldKey = input.fieldKey ?? `${model}.${snakeCase(input.name)}`;
    if (taken.has(fieldKey)) fail(400, `A custom field with the key ${fieldKey} already exists in this location.`);
    taken.add(fieldKey);
    const withOptions = PICKLIST_TYPES.has(input.dataType);
    const fileUpload = input.dataType === 'FILE_UPLOAD';
    created.push({
      id: recordId(),
      name: input.name,
      fieldKey,
      ...(input.placeholder !== undefined ? { placeholder: input.placeholder } : {}),
      dataType: input.dataType,
      // The create DTO's documented default.
      position: input.position ?? 0,
      ...(withOptions ? { picklistOptions: [...(input.picklistOptions ?? [])] } : {}),
      ...(fileUpload ? { isMultiFileAllowed: input.isMultiFileAllowed ?? false } : {}),
      ...(fileUpload && input.maxFileLimit !== undefined ? { maxFileLimit: input.maxFileLimit } : {}),
      locationId,
      model,
      dateAdded: now,
    });
  }
  emu.world.customFields[locationId] = [...existing, ...created];
  emu.changed();
  return created;
}

/** The definition with this id or field key in the location, if any. */
export function findCustomField(emu: Emulator, locationId: string, idOrKey: string): CustomField | undefined {
  const key = idOrKey.toLowerCase();
  return customFieldsOf(emu, locationId).find((f) => f.id === idOrKey || f.fieldKey === key);
}

/**
 * Definitions of one model ('all': both), ordered by position, then creation (guess: HighLevel
 * documents no order).
 */
export function listCustomFields(emu: Emulator, locationId: string, model: CustomFieldModel | 'all'): CustomField[] {
  const fields = customFieldsOf(emu, locationId).filter((f) => model === 'all' || f.model === model);
  return fields
    .map((f, i) => ({ f, i }))
    .sort((a, b) => a.f.position - b.f.position || a.i - b.i)
    .map(({ f }) => f);
}

/** CustomFieldSchema: the stored definition without what HighLevel does not answer. */
export function customFieldView(f: CustomField): Record<string, unknown> {
  return sparse({
    id: f.id,
    name: f.name,
    fieldKey: f.fieldKey,
    placeholder: f.placeholder,
    dataType: f.dataType,
    position: f.position,
    picklistOptions: f.picklistOptions,
    isMultiFileAllowed: f.isMultiFileAllowed,
    maxFileLimit: f.maxFileLimit,
    locationId: f.locationId,
    model: f.model,
  });
}

/**
 * A contact write names fields by id or by key (`contact.pincode` or `pincode`). A key that is a
 * contact definition's field key takes that definition's id; any other keeps the id the parser
 * derived from it, so writes by key still work in a location with no definitions.
 */
export function resolveCustomFieldKeys<T extends ContactInput>(emu: Emulator, locationId: string, input: T): T {
  const items = input.customFields;
  if (!items || !items.some((item) => item.key !== undefined)) return input;
  const byKey = new Map(customFieldsOf(emu, locationId).filter((f) => f.model === 'contact').map((f) => [f.fieldKey, f.id]));
  const resolved = items.map(({ id, key, value }) => {
    if (key === undefined) return { id, value };
    const bare = key.toLowerCase();
    const fieldKey = bare.includes('.') ? bare : `contact.${bare}`;
    return { id: byKey.get(fieldKey) ?? id, value };
  });
  return { ...input, customFields: resolved };
}
