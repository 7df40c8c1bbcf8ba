// Push contacts' decision (server/sync/operations/push-plan.ts) for custom field values under ids
// HighLevel does not define (`sendable` says no): left out of the create, the update, the records
// and the counts, named in `unsent`, and kept out of a new link's ledger; without `sendable`, sent.
import { describe, expect, it } from 'vitest';
import type { HighLevelContact } from '../../server/highlevel/contact-mapping.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { decidePush, ledgerAfter, remoteView } from '../../server/sync/operations/push-plan.ts';

const userMap = () => null;
const sendable = (id: string) => id === 'defined';
const contact = (fields: Partial<ContactFields>): ContactFields => ({ ...emptyContact(), ...fields });
const remote = (customFields: Record<string, unknown>) =>
  remoteView({ id: 'hl1', firstName: 'Ada', tags: [], customFields: Object.entries(customFields).map(([id, value]) => ({ id, value })) } as HighLevelContact, () => null);

describe('decidePush with fields HighLevel does not define', () => {
  it('creates with the defined values only', () => {
    const plan = decidePush({ contact: contact({ firstName: 'Ada', customFields: { defined: 1, gone: 'x' } }), remote: null, locationId: 'L', userMap, sendable });
    expect(plan.create?.customFields).toEqual([{ id: 'defined', field_value: 1 }]);
    expect(plan.after).toEqual({ firstName: 'Ada', 'customFields.defined': 1 });
    expect(plan.changes.map((c) => c.field)).toEqual(['firstName', 'customFields.defined']);
    expect(plan.unsent).toEqual(['gone']);
  });

  it('updates the defined values only; a contact differing by the others alone is unchanged', () => {
    const updated = decidePush({ contact: contact({ firstName: 'Ada', customFields: { defined: 2, gone: 'x' } }), remote: remote({ defined: 1 }), locationId: 'L', userMap, sendable });
    expect(updated).toMatchObject({ action: 'updated', requests: 1, before: { 'customFields.defined': 1 }, after: { 'customFields.defined': 2 }, unsent: ['gone'] });
    expect(updated.update?.body.customFields).toEqual([{ id: 'defined', field_value: 2 }]);

    const only = decidePush({ contact: contact({ firstName: 'Ada', customFields: { defined: 1, gone: 'x' } }), remote: remote({ defined: 1 }), locationId: 'L', userMap, sendable });
    expect(only).toMatchObject({ action: 'unchanged', requests: 0, changes: [], unsent: ['gone'] });
  });

  it('sends every value without `sendable` (fields never listed)', () => {
    const plan = decidePush({ contact: contact({ firstName: 'Ada', customFields: { defined: 1, gone: 'x' } }), remote: remote({ defined: 1 }), locationId: 'L', userMap });
    expect(plan).toMatchObject({ action: 'updated', after: { 'customFields.gone': 'x' }, unsent: [] });
  });
});

describe('ledgerAfter with fields HighLevel does not define', () => {
  it('a new link keeps what HighLevel holds for them, not Tandem’s value', () => {
    const mine = contact({ firstName: 'Ada', customFields: { defined: 1, gone: 'x' } });
    expect(ledgerAfter({ baseBefore: null, contact: mine, remote: null, ownerSent: true, written: {}, addedTags: [], sendable }).customFields).toEqual({ defined: 1 });
    expect(ledgerAfter({ baseBefore: null, contact: mine, remote: remote({ gone: 'theirs' }), ownerSent: true, written: {}, addedTags: [], sendable }).customFields).toEqual({ defined: 1, gone: 'theirs' });
    expect(ledgerAfter({ baseBefore: null, contact: mine, remote: null, ownerSent: true, written: {}, addedTags: [] }).customFields).toEqual({ defined: 1, gone: 'x' });
  });
});
