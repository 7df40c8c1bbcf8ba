// The Contacts tab's words: where each contact stands with HighLevel, and what saving an edit will
// do under the current settings; its filters and what an empty filtered list says; and the status
// strip's count of what waits to go out and of the contacts HighLevel refused, which leads to the
// Refused filter. Pure, so it is tested without a browser. Both follow the product rule: with a
// direction Inbound nothing goes out and nothing is lost; switching it to Bi-directional later
// sends what changed since.
import type { PanelContactsSync, PanelContactView } from '../../server/routes/panel-contacts.ts';
import type { ContactsFilter } from './contacts.svelte.ts';
import { plural } from './plural.ts';

export interface HighLevelStatus {
  tone: 'ok' | 'idle' | 'warn' | 'error';
  label: string;
  /** A few words under the label when an edit of a linked contact is outstanding. */
  note?: string;
  /** The whole story, for the tooltip and screen readers. */
  detail: string;
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
    // Refused for good: nothing retries it until someone edits the contact, so it must not look
    // like a contact that is merely on its way.
    const what = linked ? 'Tandem’s latest edit of this contact' : 'this contact';
    const retry = 'An edit of the contact makes Tandem try again.';
    return {
      tone: 'error',
      label: 'Refused',
      detail: `HighLevel did not accept ${what}. Its reason: ${sentence(outbound.reason ?? 'none given')} ${retry}`,
      reason: {
        lead: linked ? 'HighLevel refused Tandem’s latest edit:' : 'HighLevel refused this contact:',
        text: outbound.reason ? sentence(outbound.reason) : 'it gave no reason.',
        retry,
      },
      testid: 'contact-refused',
    };
  }
  if (linked) {
    const base = { tone: 'ok' as const, label: 'Linked', testid: 'contact-linked' as const };
    if (!outbound) return { ...base, detail: 'In HighLevel, linked to its HighLevel contact.' };
    if (sync.updateDirection === 'inbound') {
      return { ...base, note: 'Edit held', detail: 'Tandem’s latest edit stays in Tandem while Contact update is Inbound; switching it to Bi-directional sends it.' };
    }
    if (sync.paused) return { ...base, note: 'Edit waiting', detail: 'Sync is paused: Tandem’s latest edit goes to HighLevel when sync resumes.' };
    return { ...base, note: 'Sending edit', detail: `Tandem’s latest edit is on its way to HighLevel.${retrying(outbound.reason)}` };
  }
  const base = { tone: 'idle' as const, testid: 'contact-unlinked' as const };
  if (!outbound) return { ...base, label: 'Not linked', detail: 'Not linked to a HighLevel contact.' };
  if (sync.creationDirection === 'inbound') {
    return { ...base, label: 'Held', detail: 'Not in HighLevel: it stays in Tandem while Contact creation is Inbound; switching it to Bi-directional creates it there.' };
  }
  if (sync.paused) return { ...base, label: 'Not yet', detail: 'Sync is paused: created in HighLevel when sync resumes.' };
  return { ...base, label: 'Not yet', detail: `Being created in HighLevel, usually within seconds.${retrying(outbound.reason)}` };
}

/**
 * What happens to an edit of `contact` saved now, in one sentence: shown in the edit dialog before
 * saving and in the confirmation after (with the settings the save answered with).
 */
export function editOutcome(contact: Contact, sync: PanelContactsSync): string {
  const again = contact.outbound?.status === 'failed' ? ' again' : '';
  if (contact.highlevelId !== null) {
    if (sync.updateDirection === 'inbound') {
      return 'Kept in Tandem: Contact update is Inbound, so HighLevel keeps its data. Switching it to Bi-directional on the Sync tab sends this edit.';
    }
    if (sync.paused) return 'Sync is paused: sent to HighLevel when sync resumes.';
    return `Sent to HighLevel${again} within seconds.`;
  }
  if (sync.creationDirection === 'inbound') {
    return 'Kept in Tandem: Contact creation is Inbound, so this contact is not in HighLevel. Switching it to Bi-directional on the Sync tab creates it there.';
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
      : 'No contact was refused by HighLevel. When HighLevel does not accept a contact, it shows here with HighLevel’s reason.';
  }
  if (filter === 'waiting') return searched ? 'No contact waiting to be sent matches this search.' : 'No contact waits to go to HighLevel.';
  return searched ? 'No contact matches this search.' : 'No contacts yet. Contacts created in HighLevel or through the REST API appear here.';
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
 * An email cut where a line may break: before the @ and before each dot of the domain
 * ("ann.lee", "@mail", ".example"), so a narrow column wraps it readably instead of mid-word.
 */
export function emailParts(email: string): string[] {
  const at = email.lastIndexOf('@');
  if (at <= 0) return [email];
  const [host = '', ...rest] = email.slice(at + 1).split('.');
  return [email.slice(0, at), `@${host}`, ...rest.map((r) => `.${r}`)];
}
