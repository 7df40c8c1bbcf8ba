// The repositories' side of retrying duplicate refusals (db/outbox.ts releaseRefusals): a row
// refused because a HighLevel contact held its email or phone is made pending again, in the write
// that frees it, and only then: the holder's link deleted, moved or re-keyed, its contact archived,
// its HighLevel contact deleted. Nothing else, and never another location's rows.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Db } from '../../db/client.ts';
import { archiveContact, createContact, restoreContact, type Contact } from '../../db/contacts.ts';
import { deleteLink, insertLink, saveLink, tombstone } from '../../db/links.ts';
import { enqueueOutbox, failOutbox, getOutbox, refusedOutbox, releaseRefusals } from '../../db/outbox.ts';
import { emptyContact, type ContactFields } from '../../server/sync/contact-model.ts';
import { memoryDatabase } from '../helpers/database.ts';

const L = 'loc-a';
const OTHER = 'loc-b';
let database: Database;
let db: Db;
let now: number;

beforeEach(() => {
  database = memoryDatabase();
  db = database.db;
  now = 1_000;
});

afterEach(() => database.close());

function contact(locationId: string, draft: Partial<ContactFields>): Contact {
  return createContact(db, { locationId, fields: { ...emptyContact(), ...draft }, now: ++now, origin: 'remote' });
}

/** A Tandem contact linked to HighLevel contact `highlevelId`, holding its email and phone. */
function holder(locationId: string, highlevelId: string): Contact {
  const c = contact(locationId, { firstName: 'Ada', email: 'ada@example.com', phone: '+14155550170' });
  insertLink(db, { locationId, contactId: c.id, highlevelId, base: c.fields, remoteUpdatedAt: now, now });
  return c;
}

/** A contact whose push was refused because `highlevelId` held its email (or, without one, refused for another reason). */
function refused(locationId: string, highlevelId?: string): string {
  const c = contact(locationId, { firstName: 'Bea', email: 'ada@example.com' });
  enqueueOutbox(db, locationId, c.id, 'upsert', ++now);
  failOutbox(db, getOutbox(db, locationId, c.id)!, { error: 'held', nextAttemptAt: ++now, permanent: true, ...(highlevelId ? { refusedBy: highlevelId } : {}) });
  return c.id;
}

const statusOf = (locationId: string, id: string) => getOutbox(db, locationId, id)?.status;

describe('a refusal is released', () => {
  it('when its holder’s email or phone changes, its link moves, or it is deleted: not for any other ledger write', () => {
    const ada = holder(L, 'hl-ada');
    const bea = refused(L, 'hl-ada');
    const save = (base: Partial<ContactFields>, highlevelId = 'hl-ada') => saveLink(db, { locationId: L, contactId: ada.id, highlevelId, base: { ...ada.fields, ...base }, now: ++now });
    const refuseAgain = () => failOutbox(db, getOutbox(db, L, bea)!, { error: 'held', nextAttemptAt: ++now, permanent: true, refusedBy: 'hl-ada' });
    const released = () => {
      expect(getOutbox(db, L, bea)).toMatchObject({ status: 'pending', attempts: 0, lastError: null, refusedBy: null });
      refuseAgain();
    };

    save({ firstName: 'Adah', tags: ['vip'] });
    save({});
    expect(statusOf(L, bea)).toBe('failed');

    save({ phone: '+14155550199' });
    released();
    save({ phone: '+14155550199', email: 'ada.byron@example.com' });
    released();
    save({}, 'hl-other');
    released();
    tombstone(db, L, 'hl-ada', ++now);
    released();
  });

  it('when its holder is archived (either side), or its link deleted; a restore releases nothing', () => {
    const ada = holder(L, 'hl-ada');
    const bea = refused(L, 'hl-ada');
    archiveContact(db, { locationId: L, id: ada.id, now: ++now, origin: 'remote' });
    expect(statusOf(L, bea)).toBe('pending');

    failOutbox(db, getOutbox(db, L, bea)!, { error: 'held', nextAttemptAt: ++now, permanent: true, refusedBy: 'hl-ada' });
    restoreContact(db, { locationId: L, id: ada.id, now: ++now, origin: 'local' });
    expect(statusOf(L, bea)).toBe('failed');

    deleteLink(db, L, ada.id);
    expect(statusOf(L, bea)).toBe('pending');
  });

  it('by the HighLevel contact it names, whether Tandem links it or not', () => {
    const bea = refused(L, 'hl-unlinked');
    releaseRefusals(db, L, 'hl-someone-else');
    expect(statusOf(L, bea)).toBe('failed');
    releaseRefusals(db, L, 'hl-unlinked');
    expect(statusOf(L, bea)).toBe('pending');
  });
});

describe('nothing else is released', () => {
  it('not a failure of another kind, nor another location’s refusal naming the same id', () => {
    const ada = holder(L, 'hl-ada');
    const other = refused(L);
    const elsewhere = refused(OTHER, 'hl-ada');
    archiveContact(db, { locationId: L, id: ada.id, now: ++now, origin: 'local' });
    tombstone(db, L, 'hl-ada', ++now);
    releaseRefusals(db, L, 'hl-ada');
    expect(statusOf(L, other)).toBe('failed');
    expect(statusOf(OTHER, elsewhere)).toBe('failed');
  });

  it('a new change of the refused contact clears what it was refused for', () => {
    const bea = refused(L, 'hl-ada');
    enqueueOutbox(db, L, bea, 'upsert', ++now);
    expect(getOutbox(db, L, bea)).toMatchObject({ status: 'pending', refusedBy: null, lastError: null });
  });
});

describe('refusedOutbox', () => {
  it('counts the refused live contacts only, as the Refused filter lists them', () => {
    const bea = refused(L, 'hl-ada');
    const gone = refused(L);
    archiveContact(db, { locationId: L, id: gone, now: ++now, origin: 'remote' });
    enqueueOutbox(db, L, 'no-such-contact', 'upsert', ++now);
    failOutbox(db, getOutbox(db, L, 'no-such-contact')!, { error: 'refused', nextAttemptAt: ++now, permanent: true });
    const refusedNow = refusedOutbox(db, L);
    expect(refusedNow.count).toBe(1);
    expect(refusedNow.latest?.contactId).toBe(bea);
  });
});
