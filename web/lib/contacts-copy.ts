// The Contacts tab's words: where each contact stands with HighLevel, and what saving an edit will
// do under the current settings; HighLevel's reason in the edit dialog of a contact it refused; an
// edit conflict and what Load latest kept; its filters and what an empty filtered list says; and
// the status strip's count of what waits to go out and of the contacts HighLevel refused, which
// leads to the Refused filter. Pure, so it is tested without a browser. Both follow the product
// rule: with a direction Inbound nothing goes out and nothing is lost; switching it to
// Bi-directional later sends what changed since.
import type { PanelContactsSync, PanelContactView } from '../../server/routes/panel-contacts.ts';
import type { ContactEdit, ContactsFilter } from './contacts.svelte.ts';
import { plural, verb } from './plural.ts';

export interface HighLevelStatus {
  tone: 'ok' | 'idle' | 'warn' | 'error';
  label: string;
  /** A few words under the label when an edit of a linked contact is outstanding. */
  note?: string;
  /**
   * What the label (and note) mean and what happens next, opened from them by hover, focus or tap.
   * None where the label says it all (Linked, Not linked) or a line under the row does (Refused).
   */
  detail?: string;
  /** A refused contact's line under its row: what HighLevel refused, its reason, what makes Tandem try again. */
  reason?: { lead: string; text: string; retry: string };
  /** Test id of the cell's label (kept from before refused contacts had their own). */
  testid: 'contact-linked' | 'contact-unlinked' | 'contact-refused';
}

type Contact = Pick<PanelContactView, 'highlevelId' | 'outbound'>;

/** The HighLevel column of a contact's row. */
export function highLevelStatus(contact: Contact, sync: PanelContactsSync): HighLevelStatus {
  const linked = contact.highlevelId !== null;
  const outbound = contact.outbound;
  if (outbound?.status === 'failed') {
    // Refused for good: nothing retries it until someone edits the contact (or, refused because
    // another contact holds its email or phone, until that one lets go: db/outbox.ts
    // releaseRefusals), so it must not look like a contact that is merely on its way.
    const duplicate = isDuplicateRefusal(outbound.reason);
    return {
      tone: 'error',
      label: 'Refused',
      reason: {
        ...refusal(contact),
        retry: duplicate
          ? 'Tandem tries again once the contact is edited, or by itself once the other contact no longer has that email or phone.'
          : 'Tandem tries again once the contact is edited.',
      },
      testid: 'contact-refused',
    };
  }
  if (linked) {
    const base = { tone: 'ok' as const, label: 'Linked', testid: 'contact-linked' as const };
    if (!outbound) return base;
    if (sync.updateDirection === 'inbound') {
      return {
        ...base,
        note: 'Edit held',
        detail: 'Contact update is Inbound, so Tandem’s latest edit of this contact stays in Tandem. Switching Contact update to Bi-directional on the Sync tab sends it.',
      };
    }
    if (sync.paused) return { ...base, note: 'Edit waiting', detail: 'Sync is paused: Tandem’s latest edit goes to HighLevel when sync resumes.' };
    return { ...base, note: 'Sending edit', detail: `Tandem’s latest edit is on its way to HighLevel.${retrying(outbound.reason)}` };
  }
  const base = { tone: 'idle' as const, testid: 'contact-unlinked' as const };
  if (!outbound) return { ...base, label: 'Not linked' };
  if (sync.creationDirection === 'inbound') {
    return {
      ...base,
      label: 'Held',
      detail: 'Contact creation is Inbound, so this contact stays in Tandem and is not created in HighLevel. Switching Contact creation to Bi-directional on the Sync tab creates it there.',
    };
  }
  // Each says what the contact waits for ("Not yet" did not).
  if (sync.paused) return { ...base, label: 'Waiting', detail: 'Sync is paused: this contact is created in HighLevel when sync resumes.' };
  return { ...base, label: 'Sending', detail: `Being created in HighLevel, usually within seconds.${retrying(outbound.reason)}` };
}

/**
 * Whether a refusal is over an email or phone another contact holds where the location does not
 * allow duplicates. Tandem refuses those itself before asking when it knows the holder, so their
 * words do not say HighLevel refused.
 */
export function isDuplicateRefusal(reason: string | null | undefined): boolean {
  return /does not allow duplicat/i.test(reason ?? '');
}

/** What was refused (the contact, or Tandem's latest edit of it) and its reason as a sentence. */
function refusal(contact: Contact): { lead: string; text: string } {
  const linked = contact.highlevelId !== null;
  // An edit's other fields go out all the same (server/sync/outbound-contact.ts sendLinked): only the email or phone waits.
  const held = refusalFields(contact.outbound?.reason ?? null).join(' or ') || 'email or phone';
  const lead = isDuplicateRefusal(contact.outbound?.reason)
    ? linked
      ? `Tandem’s new ${held} for this contact cannot go to HighLevel (its other changes went):`
      : 'This contact cannot be created in HighLevel:'
    : linked
      ? 'HighLevel refused Tandem’s latest edit of this contact:'
      : 'HighLevel refused this contact:';
  return { lead, text: contact.outbound?.reason ? sentence(contact.outbound.reason) : 'it gave no reason.' };
}

/**
 * A refused contact's reason in its edit dialog, and what saving the fix does (`then`): sends it
 * again, or, when a setting switched to Inbound since holds it, what editOutcome says. Undefined
 * for a contact HighLevel did not refuse.
 */
export function refusalInDialog(contact: Contact, sync: PanelContactsSync): { lead: string; text: string; then: string } | undefined {
  if (contact.outbound?.status !== 'failed') return undefined;
  const held = contact.highlevelId !== null ? sync.updateDirection === 'inbound' : sync.creationDirection === 'inbound';
  const then = held ? editOutcome(contact, sync) : `Fix it here: saving sends it to HighLevel again ${sync.paused ? 'when sync resumes' : 'within seconds'}.`;
  return { ...refusal(contact), then };
}

/**
 * The dialog's fields a refusal names (its reason mentions them), so the reason shows beside them
 * and is read out with them. HighLevel refuses mostly over a duplicate email or phone, or one it
 * cannot accept; a reason naming neither shows above all the fields.
 */
export function refusalFields(reason: string | null): ('email' | 'phone')[] {
  if (!reason) return [];
  return (['email', 'phone'] as const).filter((field) => MENTIONS[field].test(reason));
}

const MENTIONS = { email: /\bemail\b/i, phone: /\bphone\b/i };

/** The fields of the edit dialog, by the names its labels show. */
export const FIELD_LABELS: Record<keyof ContactEdit, string> = {
  firstName: 'First name',
  lastName: 'Last name',
  email: 'Email',
  phone: 'Phone',
  companyName: 'Company',
  tags: 'Tags',
};

/** A save refused because the contact changed after the dialog read it (the server's 412). */
export const EDIT_CONFLICT = 'This contact changed after you opened it, so nothing was saved. Load the latest version: your changes to fields nobody else changed stay in the form.';

/**
 * What Load latest did with the admin's changes: those kept (nobody else changed the field), and
 * those replaced by the latest value (changed meanwhile too), with what the admin had typed, so it
 * can be typed again if it still holds.
 */
export function latestLoaded(kept: (keyof ContactEdit)[], lost: { field: keyof ContactEdit; mine: string }[]): string {
  const parts = ['Latest version loaded.'];
  if (kept.length === 1) parts.push(`Your change to ${FIELD_LABELS[kept[0]!]} is kept; check it, then save.`);
  if (kept.length > 1) parts.push(`Your changes to ${list(kept.map((f) => FIELD_LABELS[f]))} are kept; check them, then save.`);
  for (const { field, mine } of lost) {
    const typed = mine.trim() ? `you had typed “${mine.trim()}”` : 'you had emptied it';
    parts.push(`${FIELD_LABELS[field]} was changed meanwhile too, so it shows the new value; ${typed}.`);
  }
  return parts.join(' ');
}

/** "A", "A and B", "A, B and C". */
function list(items: string[]): string {
  return items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/**
 * What happens to an edit of `contact` saved now, in one sentence: shown in the edit dialog before
 * saving and in the confirmation after (with the settings the save answered with).
 */
export function editOutcome(contact: Contact, sync: PanelContactsSync): string {
  const again = contact.outbound?.status === 'failed' ? ' again' : '';
  if (contact.highlevelId !== null) {
    if (sync.updateDirection === 'inbound') {
      return `Kept in Tandem: Contact update is Inbound, so HighLevel keeps its data. Switching Contact update to Bi-directional on the Sync tab sends this edit${again}.`;
    }
    if (sync.paused) return 'Sync is paused: sent to HighLevel when sync resumes.';
    return `Sent to HighLevel${again} within seconds.`;
  }
  if (sync.creationDirection === 'inbound') {
    // A refused one is tried again, not surely created (QA: the duplicate it was refused for may still hold).
    const creates = again ? 'tries again to create it there' : 'creates it there';
    return `Kept in Tandem: Contact creation is Inbound, so this contact is not in HighLevel. Switching Contact creation to Bi-directional on the Sync tab ${creates}.`;
  }
  if (sync.paused) return 'Sync is paused: created in HighLevel when sync resumes.';
  return again ? 'Sent to HighLevel again within seconds.' : 'Created in HighLevel within seconds.';
}

/**
 * The retry after a passing failure, with its reason as a sentence of its own at the end: a reason
 * often carries brackets of its own ("HighLevel is not answering right now (it may be down or
 * busy)"), so it is never put inside brackets.
 */
function retrying(reason: string | null): string {
  return reason ? ` The last try failed, and Tandem retries by itself. The reason: ${sentence(reason)}` : '';
}

function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** The Contacts tab's filters, in the order they show. */
export const CONTACT_FILTER_OPTIONS: readonly { value: ContactsFilter; label: string }[] = [
  { value: 'all', label: 'All' },
  { value: 'refused', label: 'Refused' },
  { value: 'waiting', label: 'Waiting to send' },
];

/** What the list says when it has no contact to show, for the filter and search it was read with. */
export function emptyContacts(filter: ContactsFilter, query: string): string {
  const searched = query.trim() !== '';
  if (filter === 'refused') {
    return searched
      ? 'No refused contact matches this search.'
      : 'No contact was refused by HighLevel. If HighLevel refuses one, it shows here with the reason.';
  }
  if (filter === 'waiting') return searched ? 'No contact waiting to be sent matches this search.' : 'Nothing is waiting to be sent to HighLevel.';
  return searched ? 'No contact matches this search.' : 'No contacts yet. Contacts added in HighLevel or through Tandem’s API show up here.';
}

/**
 * How many contacts the list shows of those its search and filter match: "Showing 50 of 1,512
 * contacts" while Show more has more to bring, "12 contacts" once every one is shown; named after
 * the filter ("refused contacts", "contacts waiting to be sent") and the search. Empty when none
 * matches (the list's empty text says so).
 */
export function contactsShown(shown: number, total: number, filter: ContactsFilter, query: string): string {
  if (total <= 0) return '';
  const noun = filter === 'refused' ? 'refused contact' : 'contact';
  const waiting = filter === 'waiting' ? ' waiting to be sent' : '';
  const searched = query.trim() ? ` that ${verb(total, 'matches', 'match')} this search` : '';
  const counted = `${plural(total, noun)}${waiting}${searched}`;
  // More shown than counted: rows the list has not read again yet (the next refresh counts them).
  return shown >= total ? counted : `Showing ${shown.toLocaleString('en-US')} of ${counted}`;
}

/**
 * The status strip's "Waiting to go out": how many contacts wait to be sent and how many HighLevel
 * refused for good (`refused`, shown apart and leading to the Refused filter). Never "Up to date"
 * while refused contacts remain: they have not reached HighLevel, and only an edit sends them again.
 */
export function waitingToGoOut(pending: number, failed: number): { waiting: string; refused: string | null } {
  return {
    waiting: pending > 0 ? plural(pending, 'contact to send', 'contacts to send') : failed > 0 ? 'Nothing else waiting' : 'Up to date',
    refused: failed > 0 ? `${plural(failed, 'contact', 'contacts')} refused by HighLevel` : null,
  };
}

/**
 * An email as the Contacts table breaks it when it is too long for its column: first apart into
 * its name and its domain (before the @), then, where one of them is still too long, before each of
 * its dots ("ann", ".lee" and "@mail", ".example"): readable pieces, never a cut mid-word unless a
 * piece alone is wider than the column.
 */
export function emailGroups(email: string): string[][] {
  const [name = email, ...domain] = emailParts(email);
  const pieces = name.split(/(?=\.)/);
  return domain.length ? [pieces, domain] : [pieces];
}

/**
 * An email cut where a line may break: before the @ and before each dot of the domain
 * ("ann.lee", "@mail", ".example"), so a narrow column wraps it readably instead of mid-word.
 */
export function emailParts(email: string): string[] {
  const at = email.lastIndexOf('@');
  if (at <= 0) return [email];
  const [host = '', ...rest] = email.slice(at + 1).split('.');
  return [email.slice(0, at), `@${host}`, ...rest.map((r) => `.${r}`)];
}
