// Validates emulator responses against HighLevel's official OpenAPI response schemas
// (../shared/highlevel/openapi), so the emulator cannot drift from the published contract.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';

const here = dirname(fileURLToPath(import.meta.url));
/** HighLevel's official OpenAPI files: ../shared/highlevel/openapi beside the repository (as in CI). */
export const SPEC_DIR = process.env.HIGHLEVEL_OPENAPI_DIR ?? resolve(here, '../../../shared/highlevel/openapi');

type Json = Record<string, unknown>;
const files = new Map<string, Json>();

function loadSpec(rel: string): Json {
  let spec = files.get(rel);
  if (!spec) {
    if (!existsSync(SPEC_DIR)) {
      throw new Error(`HighLevel's OpenAPI files are not at ${SPEC_DIR}; set HIGHLEVEL_OPENAPI_DIR to the folder holding apps/ and common/`);
    }
    spec = JSON.parse(readFileSync(resolve(SPEC_DIR, rel), 'utf8')) as Json;
    files.set(rel, spec);
  }
  return spec;
}

function pointer(doc: Json, ptr: string): unknown {
  let cur: unknown = doc;
  for (const part of ptr.replace(/^#\//, '').split('/')) {
    if (!part) continue;
    cur = (cur as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

/** Inlines $refs (local and into ../common) and turns OpenAPI 3.0 `nullable` into JSON Schema. */
function normalise(node: unknown, file: string, seen: Set<string>): unknown {
  if (Array.isArray(node)) return node.map((n) => normalise(n, file, seen));
  if (!node || typeof node !== 'object') return node;
  const obj = node as Json;
  if (typeof obj.$ref === 'string') {
    const [target, ptr] = obj.$ref.split('#') as [string, string];
    const targetFile = target ? resolve(dirname(resolve(SPEC_DIR, file)), target).slice(SPEC_DIR.length + 1) : file;
    const key = `${targetFile}#${ptr}`;
    if (seen.has(key)) return {};
    const next = new Set(seen).add(key);
    return normalise(pointer(loadSpec(targetFile), `#${ptr}`), targetFile, next);
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'example' || k === 'examples' || k === 'nullable' || k === 'discriminator' || k === 'xml') continue;
    out[k] = normalise(v, file, seen);
  }
  if (obj.nullable === true) return { anyOf: [out, { type: 'null' }] };
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();

/** The response schema of an operation, or undefined where the spec has none. */
export function responseSchema(specFile: string, method: string, path: string, status: number): unknown {
  const spec = loadSpec(specFile);
  const op = (spec.paths as Json)[path] as Json | undefined;
  const operation = op?.[method.toLowerCase()] as Json | undefined;
  if (!operation) throw new Error(`no operation ${method} ${path} in ${specFile}`);
  const response = (operation.responses as Json)[String(status)] as Json | undefined;
  const schema = ((response?.content as Json | undefined)?.['application/json'] as Json | undefined)?.schema;
  return schema ? normalise(schema, specFile, new Set()) : undefined;
}

/**
 * Asserts `body` matches the spec's schema for (method, path, status). Returns the list of errors
 * (empty when valid) so tests can `expect(validate(...)).toEqual([])` and see what broke.
 */
export function specErrors(specFile: string, method: string, path: string, status: number, body: unknown): string[] {
  const key = `${specFile} ${method} ${path} ${status}`;
  let validate = compiled.get(key);
  if (!validate) {
    const schema = responseSchema(specFile, method, path, status);
    if (schema === undefined) throw new Error(`spec has no JSON schema for ${key}`);
    validate = ajv.compile(schema as object);
    compiled.set(key, validate);
  }
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}
