// The Contacts tab's words (web/lib/contacts-copy.ts): where a contact stands with HighLevel, and
// what saving an edit does under the current settings; reasons without record ids; where an email
// may break; what an empty filtered list says; the status strip never "Up to date" while
// HighLevel has refused contacts.
import { describe, expect, it } from 'vitest';
import { CONTACT_FILTER_OPTIONS, editOutcome, emailParts, emptyContacts, highLevelStatus, waitingToGoOut } from '../../web/lib/contacts-copy.ts';
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
    expect(status.detail).toContain('HighLevel did not accept this contact. Its reason: This location does not allow duplicated contacts.');
    // A linked contact whose edit was refused is just as stuck.
    expect(highLevelStatus({ highlevelId: 'hl-1', outbound: refused.outbound }, both).label).toBe('Refused');
  });

  it('gives a refused contact a line of its own under the row: what was refused, HighLevel’s reason, what makes Tandem try again', () => {
    expect(highLevelStatus(refused, both).reason).toEqual({
      lead: 'HighLevel refused this contact:',
      text: 'This location does not allow duplicated contacts.',
      retry: 'An edit of the contact makes Tandem try again.',
    });
    expect(highLevelStatus({ highlevelId: 'hl-1', outbound: refused.outbound }, both).reason?.lead).toBe('HighLevel refused Tandem’s latest edit:');
    expect(highLevelStatus({ highlevelId: null, outbound: { status: 'failed', reason: null } }, both).reason?.text).toBe('it gave no reason.');
    // Only refused contacts have one.
    expect(highLevelStatus(unlinked, both).reason).toBeUndefined();
    expect(highLevelStatus(linked, both).reason).toBeUndefined();
  });

  it('tells a held new contact and a held edit from one on its way', () => {
    expect(highLevelStatus(unlinked, allInbound)).toMatchObject({ label: 'Held', detail: expect.stringContaining('Contact creation is Inbound') });
    expect(highLevelStatus(unlinked, both)).toMatchObject({ label: 'Not yet', detail: expect.stringContaining('usually within seconds') });
    expect(highLevelStatus(unlinked, { ...both, paused: true }).detail).toContain('Sync is paused');
    const edited = { highlevelId: 'hl-1', outbound: { status: 'pending' as const, reason: null } };
    expect(highLevelStatus(edited, defaults)).toMatchObject({ label: 'Linked', note: 'Edit held' });
    expect(highLevelStatus(edited, both)).toMatchObject({ label: 'Linked', note: 'Sending edit' });
    expect(highLevelStatus(linked, defaults).label).toBe('Linked');
    expect(highLevelStatus(linked, defaults).note).toBeUndefined();
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
    expect(editOutcome(linked, defaults)).toMatch(/^Kept in Tandem: Contact update is Inbound/);
    expect(editOutcome(linked, { ...both, paused: true })).toBe('Sync is paused: sent to HighLevel when sync resumes.');
  });

  it('follows Contact creation for a contact not in HighLevel yet', () => {
    // Contact update does not matter here: the contact is created, not updated.
    expect(editOutcome(unlinked, defaults)).toBe('Created in HighLevel within seconds.');
    expect(editOutcome(unlinked, allInbound)).toMatch(/^Kept in Tandem: Contact creation is Inbound/);
    expect(editOutcome(refused, both)).toBe('Sent to HighLevel again within seconds.');
  });
});

describe('an email in a narrow column', () => {
  it('breaks before the @ and before each dot of the domain, and loses nothing', () => {
    expect(emailParts('dropped.create.2@hawthornebakery.example')).toEqual(['dropped.create.2', '@hawthornebakery', '.example']);
    expect(emailParts('ann@mail.co.uk').join('')).toBe('ann@mail.co.uk');
    expect(emailParts('not-an-email')).toEqual(['not-an-email']);
  });
});

describe('the filters', () => {
  it('offers All, Refused and Waiting to send, and says something useful when a filtered list is empty', () => {
    expect(CONTACT_FILTER_OPTIONS.map((o) => o.label)).toEqual(['All', 'Refused', 'Waiting to send']);
    expect(emptyContacts('refused', '')).toBe('No contact was refused by HighLevel. When HighLevel does not accept a contact, it shows here with HighLevel’s reason.');
    expect(emptyContacts('refused', ' ann ')).toBe('No refused contact matches this search.');
    expect(emptyContacts('waiting', '')).toBe('No contact waits to go to HighLevel.');
    expect(emptyContacts('waiting', 'ann')).toBe('No contact waiting to be sent matches this search.');
    expect(emptyContacts('all', '')).toMatch(/^No contacts yet\./);
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
