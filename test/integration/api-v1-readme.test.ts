// The README's word on the REST API against what Tandem does: the quick start's sample output has
// every line the sandbox banner prints (QA: it lacked the REST API line), and the round-trip rule
// names every read-only property a PATCH takes back.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { READ_ONLY_FIELDS } from '../../server/routes/api-v1-schemas.ts';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');

/** The README section under `heading` (up to the next heading of the same level). */
function section(heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(-1);
  const level = heading.split(' ')[0]!;
  const end = readme.indexOf(`\n${level} `, start + heading.length + 2);
  return readme.slice(start, end === -1 ? undefined : end);
}

describe('README', () => {
  it('shows every line of the sandbox banner in the quick start', () => {
    const main = readFileSync(new URL('server/main.ts', root), 'utf8');
    const sandbox = main.slice(main.indexOf("t.mode === 'sandbox'"), main.indexOf('const local'));
    // `  Label:   ${…}` lines by their label, and the lines printed as written.
    const labels = [...sandbox.matchAll(/`( {2}[A-Z][A-Za-z ]+:) +\$\{/g)].map((m) => m[1]!);
    const literal = [...sandbox.matchAll(/^\s*'([^']+)',$/gm)].map((m) => m[1]!);
    expect(labels).toContain('  REST API:');
    const quickStart = section('## Quick start');
    const sample = quickStart.slice(quickStart.indexOf('It prints:'));
    const printed = sample.slice(sample.indexOf('```'), sample.indexOf('```', sample.indexOf('```') + 3)).split('\n');
    for (const label of labels) expect(printed.some((line) => line.startsWith(label)), label).toBe(true);
    for (const line of literal) expect(printed, line).toContain(line);
  });

  it('names every read-only property of a contact a PATCH takes back', () => {
    const api = section("## Tandem's REST API");
    const roundTrips = api.slice(api.indexOf('**Round trips**'), api.indexOf('\n- **', api.indexOf('**Round trips**')));
    for (const name of READ_ONLY_FIELDS) expect(roundTrips, name).toContain(`\`${name}\``);
    expect(api).toContain('`error.currentVersion`');
  });
});
