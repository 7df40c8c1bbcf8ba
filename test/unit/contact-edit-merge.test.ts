// Load latest after an edit conflict (web/lib/contacts.svelte.ts mergeLatest): the form takes the
// contact's latest values, keeps the admin's changes to fields nobody else changed, and reports
// the changes it had to replace (both sides changed the field to different values).
import { describe, expect, it } from 'vitest';
import { mergeLatest, type ContactEdit } from '../../web/lib/contacts.svelte.ts';

const opened: ContactEdit = { firstName: 'Ann', lastName: 'Lee', email: 'ann@example.com', phone: '+15035550100', companyName: '', tags: 'vip' };

describe('mergeLatest', () => {
  it('takes every latest value when the admin changed nothing', () => {
    const latest = { ...opened, firstName: 'Anne', phone: '+15035550199' };
    expect(mergeLatest(opened, opened, latest)).toEqual({ form: latest, kept: [], lost: [] });
  });

  it('keeps the admin’s changes to fields that did not change meanwhile, and takes the others’ new values', () => {
    const mine = { ...opened, companyName: 'Lee Dental', email: 'ann.lee@example.com' };
    const latest = { ...opened, phone: '+15035550199' };
    expect(mergeLatest(opened, mine, latest)).toEqual({
      form: { ...opened, companyName: 'Lee Dental', email: 'ann.lee@example.com', phone: '+15035550199' },
      kept: ['email', 'companyName'],
      lost: [],
    });
  });

  it('shows the latest value where both changed a field, and says what the admin had typed', () => {
    const mine = { ...opened, firstName: 'Annie', email: '', companyName: 'Lee Dental' };
    const latest = { ...opened, firstName: 'Anne', email: 'anne@example.com' };
    expect(mergeLatest(opened, mine, latest)).toEqual({
      form: { ...opened, firstName: 'Anne', email: 'anne@example.com', companyName: 'Lee Dental' },
      kept: ['companyName'],
      lost: [
        { field: 'firstName', mine: 'Annie' },
        { field: 'email', mine: '' },
      ],
    });
  });

  it('counts no conflict where both made the same change, or the change differs only in spaces or tag case', () => {
    const mine = { ...opened, firstName: ' Anne ', tags: 'VIP, gold' };
    const latest = { ...opened, firstName: 'Anne', tags: 'vip, gold' };
    expect(mergeLatest(opened, mine, latest)).toEqual({ form: latest, kept: [], lost: [] });
  });
});
