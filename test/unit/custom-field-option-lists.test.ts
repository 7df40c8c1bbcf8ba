// Lists of numbers as custom field values (server/routes/api-v1-custom-fields.ts checkCustomFields):
// an option field takes each number as its text where that is an option, as it takes a number alone.
import { describe, expect, it } from 'vitest';
import type { CustomFieldDefinition, CustomFieldList } from '../../db/custom-fields.ts';
import { checkCustomFields } from '../../server/routes/api-v1-custom-fields.ts';

const field = (id: string, name: string, dataType: string | null, options: string[] = []): CustomFieldDefinition => ({
  id,
  name,
  fieldKey: `contact.${name.toLowerCase().replace(/ /g, '_')}`,
  dataType,
  options,
  position: null,
});

const list: CustomFieldList = {
  definitions: [
    field('cfVisits000000000001', 'Visits', 'MULTIPLE_OPTIONS', ['1', '2', '10']),
    field('cfDays00000000000001', 'Days', 'CHECKBOX', ['1', '2', '3']),
    field('cfOpen00000000000001', 'Open', 'CHECKBOX'),
    field('cfRank00000000000001', 'Rank', 'RADIO', ['1', '2']),
    field('cfNotes0000000000001', 'Notes', 'TEXT'),
    field('cfOdd00000000000001x', 'Odd', null),
  ],
  listedAt: Date.parse('2026-12-07T10:00:00Z'),
  problem: null,
  problemAt: null,
  problemRefused: false,
};

const problems = (input: Parameters<typeof checkCustomFields>[1]) => {
  const r = checkCustomFields(list, input);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.values)}`);
  return r.problems;
};

describe('checkCustomFields with a list of numbers', () => {
  it('takes each number as its text where that is an option, once each', () => {
    expect(checkCustomFields(list, { cfVisits000000000001: [10, 1, 10], cfDays00000000000001: [3] })).toEqual({
      ok: true,
      values: { cfVisits000000000001: ['10', '1'], cfDays00000000000001: ['3'] },
    });
  });

  it('names the numbers that are no option, unquoted, beside strings that are none', () => {
    expect(problems({ cfVisits000000000001: [1, 3, 20] })).toEqual(['customFields.cfVisits000000000001: "Visits" has no option 3, 20; its options are "1", "2", "10"']);
    expect(problems({ cfDays00000000000001: ['1', 'x'] })).toEqual(['customFields.cfDays00000000000001: "Days" has no option "x"; its options are "1", "2", "3"']);
  });

  it('refuses it where a number alone is refused: a field with no options, one option, text', () => {
    expect(problems({ cfOpen00000000000001: [1], cfRank00000000000001: [1], cfNotes0000000000001: [1] })).toEqual([
      'customFields.cfOpen00000000000001: "Open" is a CHECKBOX field: send a list of its options',
      'customFields.cfRank00000000000001: "Rank" is a RADIO field: send one of its options ("1", "2")',
      'customFields.cfNotes0000000000001: "Notes" is a TEXT field: send text',
    ]);
    // A number alone, as before.
    expect(problems({ cfOpen00000000000001: 1 })).toEqual(['customFields.cfOpen00000000000001: "Open" is a CHECKBOX field: send a list of its options']);
  });

  it('holds it as text where it is not checked: a field of a type Tandem does not know, or fields never listed', () => {
    expect(checkCustomFields(list, { cfOdd00000000000001x: [1, 2] })).toEqual({ ok: true, values: { cfOdd00000000000001x: ['1', '2'] } });
    const never: CustomFieldList = { definitions: [], listedAt: null, problem: null, problemAt: null, problemRefused: false };
    expect(checkCustomFields(never, { anything: [4, 5], other: 3 })).toEqual({ ok: true, values: { anything: ['4', '5'], other: 3 } });
  });
});
