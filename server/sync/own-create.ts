// Finding the copy of a create whose answer was lost, for a contact with no email and no usable
// phone: HighLevel may have created it (CONTRACT: "422 yet created", a dropped answer), and without
// those keys the duplicate lookup cannot see it. Shared by the continuous push and Push contacts.
import type { HighLevelContact } from '../highlevel/contact-mapping.ts';
import type { LocationApi, SearchFilter } from '../highlevel/contacts.ts';
import { isE164, sameNames, type ContactFields } from './contact-model.ts';

/** Margin for HighLevel's clock against ours when asking for contacts added since a time. */
const CLOCK_MARGIN_MS = 5 * 60_000;

/**
 * HighLevel's contacts added since `since` (when the create was first tried, or queued) whose
 * names and company are exactly the contact's, without an email or phone of their own. Only an
 * unambiguous answer counts: with two, neither is taken (a retry then creates, as it would have).
 * `read` maps HighLevel's record to Tandem's fields as the caller does.
 */
export async function findOwnCreate(
  api: Pick<LocationApi, 'searchContacts'>,
  fields: ContactFields,
  since: number,
  read: (doc: HighLevelContact) => Partial<ContactFields>,
): Promise<HighLevelContact | null> {
  const { firstName, lastName, companyName } = fields;
  if (!firstName && !lastName && !companyName) return null;
  const filters: SearchFilter[] = [{ field: 'dateAdded', operator: 'range', value: { gte: new Date(since - CLOCK_MARGIN_MS).toISOString() } }];
  const named: [string, string | null][] = [['firstNameLowerCase', firstName], ['lastNameLowerCase', lastName], ['companyName', companyName]];
  for (const [field, value] of named) {
    // Values HighLevel cannot filter by (over 75 characters) are left to the comparison below.
    if (value && value.length <= 75) filters.push({ field, operator: 'eq', value: value.toLowerCase() });
  }
  const { contacts } = await api.searchContacts({ filters, pageLimit: 10 });
  const same = contacts.filter((doc) => {
    const f = read(doc);
    return !f.email && !isE164(f.phone ?? null) && sameNames(f, fields);
  });
  return same.length === 1 ? same[0]! : null;
}
