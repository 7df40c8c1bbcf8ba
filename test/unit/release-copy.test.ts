// The words of the dialog a save that releases held work opens (web/lib/sync-copy.ts).
import { describe, expect, it } from 'vitest';
import {
  RELEASE_REFUSED_NOTE, RELEASE_SETTLED, RELEASE_SETTLED_NOTICE, RELEASE_SETTLED_TITLE, changeField, changeValue, moreThanShown, refusedReason, releaseAnnouncement, releaseChanged, releaseCheckFailed,
  releaseCreatedLine, releaseLead, releaseRefusedLine, releaseUpdatedLine, savedNotice,
} from '../../web/lib/sync-copy.ts';

const group = (count: number) => ({ count, samples: [] });

describe('the release dialog', () => {
  it('names the settings that turn Bi-directional', () => {
    expect(releaseLead({ updateDirection: 'bidirectional' })).toBe(
      'Saving turns Contact update to Bi-directional: what Tandem held back while it was Inbound goes to HighLevel as soon as you save.',
    );
    expect(releaseLead({ creationDirection: 'bidirectional', updateDirection: 'bidirectional' })).toBe(
      'Saving turns Contact creation and Contact update to Bi-directional: what Tandem held back while they were Inbound goes to HighLevel as soon as you save.',
    );
    // Paused, nothing goes until sync resumes.
    expect(releaseLead({ updateDirection: 'bidirectional' }, true)).toBe(
      'Saving turns Contact update to Bi-directional: what Tandem held back while it was Inbound goes to HighLevel once you resume sync (it is paused now).',
    );
    // A setting turned Inbound in the same save is not one that releases anything.
    expect(releaseLead({ creationDirection: 'bidirectional', updateDirection: 'inbound' })).toContain('turns Contact creation to Bi-directional: what Tandem held back while it was Inbound');
  });

  it('counts in words', () => {
    expect(releaseCreatedLine(1)).toBe('1 new contact will be created in HighLevel.');
    expect(releaseCreatedLine(1200)).toBe('1,200 new contacts will be created in HighLevel.');
    expect(releaseUpdatedLine(1)).toBe('Edits of 1 contact will be sent to HighLevel.');
    expect(releaseUpdatedLine(3)).toBe('Edits of 3 contacts will be sent to HighLevel.');
    expect(moreThanShown(12, 5)).toBe('and 7 more');
    expect(moreThanShown(5, 5)).toBe('');
  });

  it('says a change as "Lead score: 54 → 99", with plain words for empty values and Do not disturb', () => {
    const names = { 'customFields.cfLead': 'Lead score' };
    expect(`${changeField('customFields.cfLead', names)}: ${changeValue('customFields.cfLead', 54)} → ${changeValue('customFields.cfLead', 99)}`).toBe('Lead score: 54 → 99');
    expect(changeField('customFields.cfGone', names)).toBe('Custom field cfGone');
    expect(changeField('city', names)).toBe('City');
    expect(changeValue('city', null)).toBe('empty');
    expect([changeField('dnd', names), changeValue('dnd', false), changeValue('dnd', true)]).toEqual(['Do not disturb', 'Off', 'On']);
    expect(changeValue('tags', ['lead', 'vip'])).toBe('lead, vip');
  });

  it('announces the counts and the way on, or that nothing waits', () => {
    expect(releaseAnnouncement({ created: group(2), updated: group(1) })).toBe(
      '2 new contacts will be created in HighLevel. Edits of 1 contact will be sent to HighLevel. Save and send is available; Cancel keeps your changes unsaved.',
    );
    expect(releaseAnnouncement({ created: group(0), updated: group(0) })).toMatch(/^Nothing is waiting to go to HighLevel now/);
  });

  it('says apart, naming the other contact, what HighLevel will refuse because its email or phone is already on another contact there', () => {
    expect(releaseRefusedLine(1)).toBe('1 contact will be refused: its email or phone is already on another contact in HighLevel.');
    expect(releaseRefusedLine(3)).toBe('3 contacts will be refused: their email or phone is already on another contact in HighLevel.');
    expect(refusedReason({ change: 'create', field: 'email', holder: 'Ben Ortiz' })).toBe('Not created: its email is already on the HighLevel contact linked to Ben Ortiz.');
    expect(refusedReason({ change: 'edit', field: 'phone', holder: 'Archie' })).toBe('Edit not sent: its new phone is already on the HighLevel contact linked to Archie.');
    // An edit refused for its email or phone sends its other changes all the same.
    expect(refusedReason({ change: 'edit', field: 'email', holder: 'Ben Ortiz', othersSent: true })).toBe(
      'New email not sent: it is already on the HighLevel contact linked to Ben Ortiz. Its other changes are sent.',
    );
    expect(releaseRefusedLine(1, 1)).toBe('1 contact will be refused its email or phone, already on another contact in HighLevel; its other changes are sent.');
    expect(releaseRefusedLine(3, 1)).toBe('3 contacts will be refused their email or phone, already on another contact in HighLevel; the other changes of 1 are sent.');
    expect(releaseRefusedLine(2, 2)).toBe('2 contacts will be refused their email or phone, already on another contact in HighLevel; their other changes are sent.');
    expect(RELEASE_REFUSED_NOTE).toMatch(/unless the location allows duplicates/);
    expect(RELEASE_REFUSED_NOTE).toMatch(/change its email or phone/);
    expect(releaseAnnouncement({ created: group(2), updated: group(0), refused: group(1) })).toBe(
      '2 new contacts will be created in HighLevel. 1 contact will be refused: its email or phone is already on another contact in HighLevel. Save and send is available; Cancel keeps your changes unsaved.',
    );
    // Only refused contacts: still said, not "nothing is waiting".
    expect(releaseAnnouncement({ created: group(0), updated: group(0), refused: group(1) })).toMatch(/^1 contact will be refused/);
  });

  it('says a failed check saved nothing, and a save that sent held work says so', () => {
    expect(releaseCheckFailed('Tandem could not be reached')).toBe(
      'Tandem could not check what saving would send to HighLevel: Tandem could not be reached. Nothing is saved. Retry, or cancel to keep your changes unsaved.',
    );
    expect(savedNotice(0)).toBe('Settings saved. Tandem syncs with them from now on.');
    expect(savedNotice(1)).toBe('Settings saved. Tandem is sending the held change to HighLevel now.');
    expect(savedNotice(4)).toBe('Settings saved. Tandem is sending the held changes to HighLevel now.');
    expect(savedNotice(1, true)).toBe('Settings saved. The held change goes to HighLevel once you resume sync.');
    expect(savedNotice(2, true)).toBe('Settings saved. The held changes go to HighLevel once you resume sync.');
  });

  it('says what changed since the preview on screen: how many more or fewer, that nothing is held any more, or only that it changed', () => {
    const preview = (created: number, updated: number) => ({ created: group(created), updated: group(updated) });
    expect(releaseChanged(preview(0, 1), preview(0, 2))).toBe('What goes out changed since this was shown: 1 more edit.');
    expect(releaseChanged(preview(0, 1), preview(0, 4))).toBe('What goes out changed since this was shown: 3 more edits.');
    expect(releaseChanged(preview(2, 1), preview(1, 1))).toBe('What goes out changed since this was shown: 1 fewer new contact.');
    expect(releaseChanged(preview(1, 3), preview(1201, 1))).toBe('What goes out changed since this was shown: 1,200 more new contacts and 2 fewer edits.');
    expect(releaseChanged(preview(1, 3), preview(0, 0))).toBe('What goes out changed since this was shown: nothing is held back any more.');
    // As many as before, but not what was shown (a contact edited again): no count to tell.
    expect(releaseChanged(preview(1, 3), preview(1, 3))).toBe('What goes out changed since this was shown. Check it again before sending.');
    // A contact refused now created (the other contact was archived meanwhile), and the reverse.
    const refusing = (created: number, refused: number) => ({ created: group(created), updated: group(0), refused: group(refused) });
    expect(releaseChanged(refusing(1, 1), refusing(2, 0))).toBe('What goes out changed since this was shown: 1 more new contact and 1 fewer contact refused.');
    expect(releaseChanged(refusing(2, 0), refusing(1, 2))).toBe('What goes out changed since this was shown: 1 fewer new contact and 2 more contacts refused.');
    expect(releaseChanged(refusing(1, 0), refusing(0, 1))).not.toMatch(/nothing is held back/);
    // Said after Save and send was refused for it.
    expect(releaseChanged(preview(0, 1), preview(0, 2), true)).toBe('What goes out changed since this was shown: 1 more edit. Nothing was saved or sent yet.');
  });

  it('says plainly when the settings were saved meanwhile as the draft has them, never that it sends anything', () => {
    expect(RELEASE_SETTLED_TITLE).toBe('Settings already saved');
    for (const text of [RELEASE_SETTLED, RELEASE_SETTLED_NOTICE]) {
      expect(text).toMatch(/saved (these settings )?meanwhile/);
      expect(text).not.toMatch(/sending|will be (sent|created)/i);
      expect(text).not.toMatch(/'/);
    }
  });
});
