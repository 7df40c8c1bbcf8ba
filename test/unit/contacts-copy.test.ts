// The Contacts tab's words (web/lib/contacts-copy.ts): where a contact stands with HighLevel, and
// what saving an edit does under the current settings; reasons without record ids; which row notes
// carry an explanation (opened by hover, focus or tap, never a title alone); HighLevel's reason in
// the edit dialog beside the fields it names; what Load latest kept and did not keep; where an email
// may break; what an empty filtered list says; the status strip never "Up to date" while HighLevel
// has refused contacts; how many contacts the list shows of those its search and filter match.
import { describe, expect, it } from 'vitest';
import { CONTACT_FILTER_OPTIONS, EDIT_CONFLICT, contactsShown, editOutcome, emailGroups, emailParts, emptyContacts, highLevelStatus, latestLoaded, refusalFields, refusalInDialog, waitingToGoOut } from '../../web/lib/contacts-copy.ts';
import type { PanelContactsSync } from '../../server/routes/panel-contacts.ts';

const both: PanelContactsSync = { creationDirection: 'bidirectional', updateDirection: 'bidirectional', paused: false };
const defaults: PanelContactsSync = { creationDirection: 'bidirectional', updateDirection: 'inbound', paused: false };
const allInbound: PanelContactsSync = { creationDirection: 'inbound', updateDirection: 'inbound', paused: false };

const linked = { highlevelId: 'hl-1', outbound: null };
const unlinked = { highlevelId: null, outbound: { status: 'pending' as const, reason: null } };
const refused = { highlevelId: null, outbound: { status: 'failed' as const, reason: 'This location does not allow duplicated contacts' } };

describe('the HighLevel column', () => {
  it('shows a contact HighLevel refused as Refused with the reason, not as Not yet', () => {
    const status = highLevelStatus(refused, both);
    expect(status).toMatchObject({ tone: 'error', label: 'Refused', testid: 'contact-refused' });
    expect(status.reason?.text).toBe('This location does not allow duplicated contacts.');
    // A linked contact whose edit was refused is just as stuck.
    expect(highLevelStatus({ highlevelId: 'hl-1', outbound: refused.outbound }, both).label).toBe('Refused');
  });

  it('gives a refused contact a line of its own under the row: what was refused, the reason, what makes Tandem try again', () => {
    // A duplicate: Tandem refuses those itself when it knows the holder, so not "HighLevel refused".
    expect(highLevelStatus(refused, both).reason).toEqual({
      lead: 'This contact cannot be created in HighLevel:',
      text: 'This location does not allow duplicated contacts.',
      retry: 'Tandem tries again once the contact is edited, or by itself once the other contact no longer has that email or phone.',
    });
    const invalid = { highlevelId: null, outbound: { status: 'failed' as const, reason: 'phone must be a valid phone number' } };
    expect(highLevelStatus(invalid, both).reason?.retry).toBe('Tandem tries again once the contact is edited.');
    expect(highLevelStatus(invalid, both).reason?.lead).toBe('HighLevel refused this contact:');
    expect(highLevelStatus({ highlevelId: 'hl-1', outbound: refused.outbound }, both).reason?.lead).toBe('Tandem’s new email or phone for this contact cannot go to HighLevel (its other changes went):');
    const phoneTaken = { status: 'failed' as const, reason: 'this contact’s phone is already on a HighLevel contact linked to Ann Lee in Tandem, and the location does not allow duplicates' };
    expect(highLevelStatus({ highlevelId: 'hl-1', outbound: phoneTaken }, both).reason?.lead).toBe('Tandem’s new phone for this contact cannot go to HighLevel (its other changes went):');
    expect(highLevelStatus({ highlevelId: 'hl-1', outbound: invalid.outbound }, both).reason?.lead).toBe('HighLevel refused Tandem’s latest edit of this contact:');
    expect(highLevelStatus({ highlevelId: null, outbound: { status: 'failed', reason: null } }, both).reason?.text).toBe('it gave no reason.');
    // Only refused contacts have one.
    expect(highLevelStatus(unlinked, both).reason).toBeUndefined();
    expect(highLevelStatus(linked, both).reason).toBeUndefined();
  });

  it('tells a held new contact and a held edit from one on its way, in words that say what they wait for', () => {
    expect(highLevelStatus(unlinked, allInbound)).toMatchObject({
      label: 'Held',
      detail: 'Contact creation is Inbound, so this contact stays in Tandem and is not created in HighLevel. Switching Contact creation to Bi-directional on the Sync tab creates it there.',
    });
    // QA: "Not yet" said nothing of what the contact waits for.
    expect(highLevelStatus(unlinked, both)).toMatchObject({ label: 'Sending', detail: 'Being created in HighLevel, usually within seconds.' });
    expect(highLevelStatus(unlinked, { ...both, paused: true })).toMatchObject({ label: 'Waiting', detail: 'Sync is paused: this contact is created in HighLevel when sync resumes.' });
    const edited = { highlevelId: 'hl-1', outbound: { status: 'pending' as const, reason: null } };
    expect(highLevelStatus(edited, defaults)).toMatchObject({
      label: 'Linked',
      note: 'Edit held',
      detail: 'Contact update is Inbound, so Tandem’s latest edit of this contact stays in Tandem. Switching Contact update to Bi-directional on the Sync tab sends it.',
    });
    expect(highLevelStatus(edited, { ...both, paused: true })).toMatchObject({ label: 'Linked', note: 'Edit waiting', detail: 'Sync is paused: Tandem’s latest edit goes to HighLevel when sync resumes.' });
    expect(highLevelStatus(edited, both)).toMatchObject({ label: 'Linked', note: 'Sending edit', detail: 'Tandem’s latest edit is on its way to HighLevel.' });
    expect(highLevelStatus(linked, defaults).label).toBe('Linked');
    expect(highLevelStatus(linked, defaults).note).toBeUndefined();
  });

  it('has an explanation to open only where the label does not say it all: never for a plain Linked or Not linked, nor Refused (its reason is on a line of its own)', () => {
    expect(highLevelStatus(linked, both).detail).toBeUndefined();
    expect(highLevelStatus({ highlevelId: null, outbound: null }, both).label).toBe('Not linked');
    expect(highLevelStatus({ highlevelId: null, outbound: null }, both).detail).toBeUndefined();
    expect(highLevelStatus(refused, both).detail).toBeUndefined();
    for (const sync of [both, defaults, allInbound, { ...both, paused: true }]) {
      expect(highLevelStatus(unlinked, sync).detail).toMatch(/\w/);
      expect(highLevelStatus({ highlevelId: 'hl-1', outbound: { status: 'pending', reason: null } }, sync).detail).toMatch(/\w/);
    }
  });
});

describe('a contact whose last try failed and is retried', () => {
  it('gives the reason as a sentence of its own, never inside brackets (it may carry its own)', () => {
    // QA: "The last try failed (HighLevel is not answering right now (it may be down or busy)); …"
    const reason = 'HighLevel is not answering right now (it may be down or busy)';
    const unlinkedRetry = { highlevelId: null, outbound: { status: 'pending' as const, reason } };
    const linkedRetry = { highlevelId: 'hl-1', outbound: { status: 'pending' as const, reason } };
    for (const status of [highLevelStatus(unlinkedRetry, both), highLevelStatus(linkedRetry, both)]) {
      expect(status.detail).toContain('The last try failed, and Tandem retries by itself. The reason: HighLevel is not answering right now (it may be down or busy).');
      expect(status.detail).not.toMatch(/\([^()]*\(/);
    }
    expect(highLevelStatus(unlinkedRetry, both).detail).toBe(
      'Being created in HighLevel, usually within seconds. The last try failed, and Tandem retries by itself. The reason: HighLevel is not answering right now (it may be down or busy).',
    );
    // A reason that ends its own sentence keeps one full stop.
    expect(highLevelStatus({ highlevelId: null, outbound: { status: 'pending', reason: 'HighLevel was busy.' } }, both).detail).toMatch(/The reason: HighLevel was busy\.$/);
  });
});

describe('what saving an edit does', () => {
  it('says an edit of a linked contact is sent within seconds only when Contact update is Bi-directional', () => {
    expect(editOutcome(linked, both)).toBe('Sent to HighLevel within seconds.');
    // QA: "Switching it to Bi-directional" left the reader to work out what "it" was.
    expect(editOutcome(linked, defaults)).toBe('Kept in Tandem: Contact update is Inbound, so HighLevel keeps its data. Switching Contact update to Bi-directional on the Sync tab sends this edit.');
    expect(editOutcome(linked, { ...both, paused: true })).toBe('Sync is paused: sent to HighLevel when sync resumes.');
  });

  it('follows Contact creation for a contact not in HighLevel yet', () => {
    // Contact update does not matter here: the contact is created, not updated.
    expect(editOutcome(unlinked, defaults)).toBe('Created in HighLevel within seconds.');
    expect(editOutcome(unlinked, allInbound)).toBe('Kept in Tandem: Contact creation is Inbound, so this contact is not in HighLevel. Switching Contact creation to Bi-directional on the Sync tab creates it there.');
    expect(editOutcome(refused, both)).toBe('Sent to HighLevel again within seconds.');
    // QA: a refused contact is tried again, not surely created (its duplicate may still hold).
    expect(editOutcome(refused, allInbound)).toBe('Kept in Tandem: Contact creation is Inbound, so this contact is not in HighLevel. Switching Contact creation to Bi-directional on the Sync tab tries again to create it there.');
    expect(editOutcome({ highlevelId: 'hl-1', outbound: refused.outbound }, defaults)).toMatch(/sends this edit again\.$/);
  });
});

describe('HighLevel’s reason in the edit dialog', () => {
  it('names the fields a refusal is about, so the reason shows beside them', () => {
    expect(refusalFields('this contact’s email is already on another HighLevel contact, and the location does not allow duplicates; change the email, or archive one of the two')).toEqual(['email']);
    expect(refusalFields('this contact’s email or phone is already on a HighLevel contact linked to Ann Lee in Tandem')).toEqual(['email', 'phone']);
    expect(refusalFields('HighLevel refused Tandem’s request: Phone number is invalid.')).toEqual(['phone']);
    expect(refusalFields('HighLevel refused Tandem’s request: Invalid custom field.')).toEqual([]);
    expect(refusalFields(null)).toEqual([]);
  });

  it('says what was refused, the reason, and that saving sends the contact again (or what holds it)', () => {
    expect(refusalInDialog(refused, both)).toEqual({
      lead: 'This contact cannot be created in HighLevel:',
      text: 'This location does not allow duplicated contacts.',
      then: 'Fix it here: saving sends it to HighLevel again within seconds.',
    });
    const linkedRefused = { highlevelId: 'hl-1', outbound: refused.outbound };
    expect(refusalInDialog(linkedRefused, both)?.lead).toBe('Tandem’s new email or phone for this contact cannot go to HighLevel (its other changes went):');
    const linkedInvalid = { highlevelId: 'hl-1', outbound: { status: 'failed' as const, reason: 'phone must be a valid phone number' } };
    expect(refusalInDialog(linkedInvalid, both)?.lead).toBe('HighLevel refused Tandem’s latest edit of this contact:');
    expect(refusalInDialog(refused, { ...both, paused: true })?.then).toBe('Fix it here: saving sends it to HighLevel again when sync resumes.');
    // A setting switched to Inbound since holds it: saving does not send it, and the dialog says so.
    expect(refusalInDialog(linkedRefused, defaults)?.then).toBe(editOutcome(linkedRefused, defaults));
    expect(refusalInDialog(refused, allInbound)?.then).toBe(editOutcome(refused, allInbound));
    expect(refusalInDialog({ highlevelId: null, outbound: { status: 'failed', reason: null } }, both)?.text).toBe('it gave no reason.');
    // Only a refused contact has one.
    expect(refusalInDialog(unlinked, both)).toBeUndefined();
  });
});

describe('an edit conflict', () => {
  it('says nothing was saved and what Load latest does', () => {
    expect(EDIT_CONFLICT).toBe('This contact changed after you opened it, so nothing was saved. Load the latest version: your changes to fields nobody else changed stay in the form.');
  });

  it('says which of the admin’s changes Load latest kept, and which it replaced, with what was typed', () => {
    expect(latestLoaded([], [])).toBe('Latest version loaded.');
    expect(latestLoaded(['companyName'], [])).toBe('Latest version loaded. Your change to Company is kept; check it, then save.');
    expect(latestLoaded(['email', 'phone', 'tags'], [])).toBe('Latest version loaded. Your changes to Email, Phone and Tags are kept; check them, then save.');
    expect(latestLoaded(['companyName'], [{ field: 'firstName', mine: 'Annie' }])).toBe(
      'Latest version loaded. Your change to Company is kept; check it, then save. First name was changed meanwhile too, so it shows the new value; you had typed “Annie”.',
    );
    expect(latestLoaded([], [{ field: 'email', mine: '' }, { field: 'lastName', mine: 'Lee' }])).toBe(
      'Latest version loaded. Email was changed meanwhile too, so it shows the new value; you had emptied it. Last name was changed meanwhile too, so it shows the new value; you had typed “Lee”.',
    );
  });
});

describe('an email in a narrow column', () => {
  it('breaks before the @ and before each dot of the domain, and loses nothing', () => {
    expect(emailParts('dropped.create.2@hawthornebakery.example')).toEqual(['dropped.create.2', '@hawthornebakery', '.example']);
    expect(emailParts('ann@mail.co.uk').join('')).toBe('ann@mail.co.uk');
    expect(emailParts('not-an-email')).toEqual(['not-an-email']);
  });

  it('in the Contacts table, breaks first before the @, then before the dots of either side, and loses nothing', () => {
    expect(emailGroups('maximilian.alexander@hawthorne-whitfield.example')).toEqual([['maximilian', '.alexander'], ['@hawthorne-whitfield', '.example']]);
    expect(emailGroups('ann@mail.co.uk')).toEqual([['ann'], ['@mail', '.co', '.uk']]);
    expect(emailGroups('not-an-email')).toEqual([['not-an-email']]);
    expect(emailGroups('a.b.c@d.e').flat().join('')).toBe('a.b.c@d.e');
  });
});

describe('the filters', () => {
  it('offers All, Refused and Waiting to send, and says something useful when a filtered list is empty', () => {
    expect(CONTACT_FILTER_OPTIONS.map((o) => o.label)).toEqual(['All', 'Refused', 'Waiting to send']);
    expect(emptyContacts('refused', '')).toBe('No contact was refused by HighLevel. If HighLevel refuses one, it shows here with the reason.');
    expect(emptyContacts('refused', ' ann ')).toBe('No refused contact matches this search.');
    expect(emptyContacts('waiting', '')).toBe('Nothing is waiting to be sent to HighLevel.');
    expect(emptyContacts('waiting', 'ann')).toBe('No contact waiting to be sent matches this search.');
    // QA: "the REST API" is a developer's word; the panel's API keys tab calls it Tandem's API.
    expect(emptyContacts('all', '')).toBe('No contacts yet. Contacts added in HighLevel or through Tandem’s API show up here.');
    expect(emptyContacts('all', 'ann')).toBe('No contact matches this search.');
    expect(emptyContacts('all', '   ')).toMatch(/^No contacts yet\./);
  });
});

describe('the status strip’s Waiting to go out', () => {
  it('is Up to date only when nothing waits and HighLevel refused nothing', () => {
    expect(waitingToGoOut(0, 0)).toEqual({ waiting: 'Up to date', refused: null });
    expect(waitingToGoOut(3, 0)).toEqual({ waiting: '3 contacts to send', refused: null });
  });

  it('says nothing else waits, and how many contacts HighLevel refused, never Up to date beside them', () => {
    expect(waitingToGoOut(0, 1)).toEqual({ waiting: 'Nothing else waiting', refused: '1 contact refused by HighLevel' });
    expect(waitingToGoOut(0, 1200)).toEqual({ waiting: 'Nothing else waiting', refused: '1,200 contacts refused by HighLevel' });
    expect(waitingToGoOut(1, 2)).toEqual({ waiting: '1 contact to send', refused: '2 contacts refused by HighLevel' });
  });
});

describe('how many contacts the list shows', () => {
  it('says "Showing 50 of 1,512" while more can be shown, and the count alone once every one is', () => {
    expect(contactsShown(50, 1512, 'all', '')).toBe('Showing 50 of 1,512 contacts');
    expect(contactsShown(100, 1512, 'all', '')).toBe('Showing 100 of 1,512 contacts');
    expect(contactsShown(12, 12, 'all', '')).toBe('12 contacts');
    expect(contactsShown(1, 1, 'all', '')).toBe('1 contact');
    // A row the list has not read again yet (a save moved it) is no reason to say more than counted.
    expect(contactsShown(13, 12, 'all', '')).toBe('12 contacts');
  });

  it('names the filter and the search', () => {
    expect(contactsShown(50, 230, 'refused', '')).toBe('Showing 50 of 230 refused contacts');
    expect(contactsShown(1, 1, 'refused', '')).toBe('1 refused contact');
    expect(contactsShown(3, 3, 'waiting', '')).toBe('3 contacts waiting to be sent');
    expect(contactsShown(50, 75, 'all', 'ann')).toBe('Showing 50 of 75 contacts that match this search');
    expect(contactsShown(1, 1, 'all', 'ann')).toBe('1 contact that matches this search');
    expect(contactsShown(2, 2, 'waiting', 'ann')).toBe('2 contacts waiting to be sent that match this search');
    expect(contactsShown(2, 2, 'all', '   ')).toBe('2 contacts');
  });

  it('says nothing when none matches: the empty list says so', () => {
    expect(contactsShown(0, 0, 'all', 'nobody')).toBe('');
  });
});
