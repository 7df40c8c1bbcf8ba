// The check of a contact write's custom field values against the location's fields
// (server/routes/api-v1-custom-fields.ts checkCustomFields): names resolved to ids, values of each
// kind, and what is refused with which words.
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
    field('cfScore0000000000001', 'Lead score', 'NUMERICAL'),
    field('cfBudget000000000001', 'Budget', 'MONETORY'),
    field('cfTime00000000000001', 'Preferred time', 'SINGLE_OPTIONS', ['Morning', 'Afternoon']),
    field('cfTopics000000000001', 'Interests', 'MULTIPLE_OPTIONS', ['Implants', 'Whitening', 'Braces']),
    field('cfNotes0000000000001', 'Notes', 'LARGE_TEXT'),
    field('cfFile00000000000001', 'X-ray', 'FILE_UPLOAD'),
    field('cfOdd00000000000001x', 'Odd', null),
    field('cfSize00000000000001', 'Size', 'SINGLE_OPTIONS', ['S', 'M', 'm']),
    field('cfRank00000000000001', 'Rank', 'RADIO', ['1', '2', '10']),
  ],
  listedAt: Date.parse('2026-12-07T10:00:00Z'),
  problem: null,
  problemAt: null,
  problemRefused: false,
};

const problems = (input: Parameters<typeof checkCustomFields>[1], held?: Parameters<typeof checkCustomFields>[2]) => {
  const r = checkCustomFields(list, input, held);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.values)}`);
  return r;
};

describe('checkCustomFields', () => {
  it('keys values by field id, whether the write names a field by id or by key', () => {
    const r = checkCustomFields(list, { cfScore0000000000001: 7, 'contact.notes': 'Called twice', preferred_time: 'Morning', INTERESTS: ['Braces'] });
    expect(r).toEqual({
      ok: true,
      values: { cfScore0000000000001: 7, cfNotes0000000000001: 'Called twice', cfTime00000000000001: 'Morning', cfTopics000000000001: ['Braces'] },
    });
  });

  it('takes numbers as text for number fields, and options in any case as the field spells them', () => {
    const r = checkCustomFields(list, { cfScore0000000000001: ' 42 ', cfBudget000000000001: '-1250.50', cfTime00000000000001: 'afternoon', cfTopics000000000001: ['whitening', 'IMPLANTS', 'Whitening'] });
    expect(r).toEqual({
      ok: true,
      values: { cfScore0000000000001: 42, cfBudget000000000001: -1250.5, cfTime00000000000001: 'Afternoon', cfTopics000000000001: ['Whitening', 'Implants'] },
    });
    // One option given alone for a multi-select is a list of one.
    expect(checkCustomFields(list, { cfTopics000000000001: 'braces' })).toEqual({ ok: true, values: { cfTopics000000000001: ['Braces'] } });
  });

  it('clears with null, "" or [] whatever the field type, FILE_UPLOAD included', () => {
    expect(checkCustomFields(list, { cfScore0000000000001: null, cfTopics000000000001: [], cfNotes0000000000001: ' ', cfFile00000000000001: null })).toEqual({
      ok: true,
      values: { cfScore0000000000001: null, cfTopics000000000001: null, cfNotes0000000000001: null, cfFile00000000000001: null },
    });
  });

  it('prefers the option spelled exactly, takes a number where its text is an option, and trims text', () => {
    expect(checkCustomFields(list, { cfSize00000000000001: 'm' })).toEqual({ ok: true, values: { cfSize00000000000001: 'm' } });
    expect(checkCustomFields(list, { cfSize00000000000001: 'M' })).toEqual({ ok: true, values: { cfSize00000000000001: 'M' } });
    expect(checkCustomFields(list, { cfRank00000000000001: 2 })).toEqual({ ok: true, values: { cfRank00000000000001: '2' } });
    expect(checkCustomFields(list, { cfNotes0000000000001: '  spaced  ' })).toEqual({ ok: true, values: { cfNotes0000000000001: 'spaced' } });
  });

  it('refuses numbers, as text or not, with more significant digits than are kept exactly', () => {
    expect(checkCustomFields(list, { cfBudget000000000001: '123456789012345.0', cfScore0000000000001: '0.000123456789012345' })).toEqual({
      ok: true,
      values: { cfBudget000000000001: 123456789012345, cfScore0000000000001: 0.000123456789012345 },
    });
    // Large but short: kept exactly.
    expect(checkCustomFields(list, { cfBudget000000000001: 1e20, cfScore0000000000001: '100000000000000000000' })).toEqual({
      ok: true,
      values: { cfBudget000000000001: 1e20, cfScore0000000000001: 1e20 },
    });
    expect(problems({ cfScore0000000000001: '12345678901234567890123', cfBudget000000000001: 1234567890123456 }).problems).toEqual([
      'customFields.cfScore0000000000001: "Lead score" is a NUMERICAL field: "12345678901234567890123" has more than 15 significant digits, more than a number keeps exactly',
      'customFields.cfBudget000000000001: "Budget" is a MONETORY field: 1234567890123456 has more than 15 significant digits, more than a number keeps exactly',
    ]);
    expect(problems({ cfScore0000000000001: 0.1234567890123456 }).problems).toHaveLength(1);
  });

  it('clears a value the contact holds of a field the location no longer has; anything else of it is refused', () => {
    const held = { cfGone000000000000001: 'old' };
    expect(checkCustomFields(list, { cfGone000000000000001: null }, held)).toEqual({ ok: true, values: { cfGone000000000000001: null } });
    // By a key Tandem cannot resolve any more, or a value the contact does not hold: refused, not a silent no-op.
    expect(problems({ gone_key: '' }, held).unknown).toEqual(['gone_key']);
    expect(problems({ cfGone000000000000001: 'x' }, held).unknown).toEqual(['cfGone000000000000001']);
  });

  it('says which number is no option of an option field', () => {
    expect(problems({ cfRank00000000000001: 3 }).problems).toEqual(['customFields.cfRank00000000000001: "Rank" has no option 3; its options are "1", "2", "10"']);
  });

  it('takes a value the contact holds, sent back by id or key, without checking it', () => {
    const held = { cfTime00000000000001: 'Night', cfScore0000000000001: 'n/a' };
    expect(checkCustomFields(list, { preferred_time: 'Night', cfScore0000000000001: 'n/a' }, held)).toEqual({
      ok: true,
      values: { cfTime00000000000001: 'Night', cfScore0000000000001: 'n/a' },
    });
    // A changed value is checked as any other.
    expect(problems({ preferred_time: 'Dusk' }, held).problems).toHaveLength(1);
  });

  it('refuses fields the location does not have, naming each', () => {
    const r = problems({ cfNope00000000000001: 'x', 'contact.nope': 'y', cfNotes0000000000001: 'fine' });
    expect(r.unknown).toEqual(['cfNope00000000000001', 'contact.nope']);
    expect(r.problems).toEqual([]);
  });

  it('refuses values of the wrong kind, saying what the field takes', () => {
    const r = problems({
      cfScore0000000000001: 'twelve',
      cfTime00000000000001: 'Evening',
      cfTopics000000000001: ['Braces', 'Veneers'],
      cfNotes0000000000001: 12,
      cfFile00000000000001: 'scan.png',
    });
    expect(r.unknown).toEqual([]);
    expect(r.problems).toEqual([
      'customFields.cfScore0000000000001: "Lead score" is a NUMERICAL field: send a number',
      'customFields.cfTime00000000000001: "Preferred time" has no option "Evening"; its options are "Morning", "Afternoon"',
      'customFields.cfTopics000000000001: "Interests" has no option "Veneers"; its options are "Implants", "Whitening", "Braces"',
      'customFields.cfNotes0000000000001: "Notes" is a LARGE_TEXT field: send text',
      'customFields.cfFile00000000000001: "X-ray" is a FILE_UPLOAD field, which Tandem does not sync',
    ]);
    expect(problems({ cfTime00000000000001: ['Morning'] }).problems).toEqual([
      'customFields.cfTime00000000000001: "Preferred time" is a SINGLE_OPTIONS field: send one of its options ("Morning", "Afternoon")',
    ]);
  });

  it('refuses one field named twice (by id and by key)', () => {
    expect(problems({ cfScore0000000000001: 1, lead_score: 2 }).problems).toEqual([
      'customFields.lead_score: names the same field as customFields.cfScore0000000000001 ("Lead score"); send it once',
    ]);
  });

  it('takes any value Tandem holds for a field of a type it does not know', () => {
    expect(checkCustomFields(list, { cfOdd00000000000001x: ['a', 'b'] })).toEqual({ ok: true, values: { cfOdd00000000000001x: ['a', 'b'] } });
  });

  it('checks nothing while the fields have never been listed', () => {
    const never: CustomFieldList = { definitions: [], listedAt: null, problem: 'HighLevel did not let Tandem read them', problemAt: 1, problemRefused: true };
    expect(checkCustomFields(never, { anything: 'goes', other: 3 })).toEqual({ ok: true, values: { anything: 'goes', other: 3 } });
  });
});
