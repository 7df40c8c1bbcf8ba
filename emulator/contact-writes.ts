// Contact writes shared by the public API and the emulated HighLevel UI, so that a contact saved
// in the UI is checked, stored and announced (webhooks) exactly as an API write is.
import type { Emulator } from './emulator.ts';
import type { ContactDoc } from './state.ts';
import { isoAt } from './state.ts';
import { fail } from './http.ts';
import type { ContactInput } from './contact-validate.ts';
import { applyInput, commitContact, findMatches, firstMatch, fullName, newContact } from './contact-model.ts';
import { resolveCustomFieldKeys } from './custom-fields.ts';

/** 400 with the matching contact when the location refuses duplicates and email/phone is taken. */
export function rejectDuplicate(emu: Emulator, locationId: string, email: unknown, phone: unknown, excludeId?: string): void {
  const location = emu.world.locations[locationId];
  if (!location) fail(400, 'Location not found');
  if (location.settings.allowDuplicateContact) return;
  const match = firstMatch(findMatches(emu, locationId, email, phone, excludeId));
  if (!match) return;
  fail(400, 'This location does not allow duplicated contacts.', {
    meta: { contactId: match.doc.id, contactName: fullName(match.doc), matchingField: match.field },
  });
}

/** Create: duplicate check, new document, store + ContactCreate. */
export function createContactWrite(emu: Emulator, locationId: string, input: ContactInput, createdBy: Record<string, unknown>): ContactDoc {
  rejectDuplicate(emu, locationId, input.email, input.phone);
  const doc = newContact(emu, locationId, resolveCustomFieldKeys(emu, locationId, input), createdBy);
  commitContact(emu, null, doc);
  return doc;
}

/** Update: only an email/phone that changes is checked for duplicates; no change stores nothing. */
export function updateContactWrite(emu: Emulator, before: ContactDoc, input: ContactInput): ContactDoc {
  const email = typeof input.email === 'string' && input.email.toLowerCase() !== before.emailLowerCase ? input.email : undefined;
  const phone = typeof input.phone === 'string' && input.phone !== before.phone ? input.phone : undefined;
  rejectDuplicate(emu, before.locationId, email, phone, before.id);
  const after = applyInput(before, resolveCustomFieldKeys(emu, before.locationId, input), isoAt(emu.now()));
  commitContact(emu, before, after);
  return after;
}
