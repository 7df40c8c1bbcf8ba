// The One-time operations card in headless Chromium inside the sandbox (Tandem's real push, pull and
// sync-users handlers against the emulated HighLevel, the continuous loop running beside them): for
// each operation an admin opens the preview, reads what it will do, confirms, watches the progress
// and, for push and pull, undoes the run (itself previewed and confirmed); the data on both sides
// is checked after each step. A plain user sees the times and the history, no buttons. An undo that
// deletes contacts in HighLevel says so and asks with a red Confirm; a preview replaced by a newer
// one from another tab says so at once and offers Preview again. The dialog's live region says
// "Reading HighLevel…", then the preview and that Confirm is available; after Confirm focus goes to
// Cancel run, then to the result. A preview that failed is listed as one, not as a failed run.
// In a short frame a long preview keeps its notes in view, and the keyboard reaches and scrolls its
// scrolling boxes. A preview held up by HighLevel's daily limit says so, when it goes on in the
// viewer's zone, and does not animate as if it were reading (last: it spends the day's budget).
// Each Undo button is named after its run. The browser's language is German: every time is still
// written in English, with how long ago. A push with failed records finishes "with problems", in
// amber, its failures first, each failed and skipped contact named with its own reason in plain
// words (HighLevel's own words after them as a detail); a run waiting out a 429 says it waits to
// retry and when, its bar gray, the refused request counted, and History says the same. While the
// operations load, the buttons hold their place and the history shows placeholders, not "no
// operation has run". A push confirmed while sync is paused is told that it still runs and what
// waits for the resume. A preview waiting on HighLevel is found after a reload and in another
// admin's panel (who opened it, since when, why it waits and until when, until when it stands, what
// the buttons do meanwhile), reopened in its dialog until it is ready, and cancelled from the card;
// a dialog whose preview another admin confirmed goes, and the card follows the run. While a run
// goes, the buttons say why they wait. Screenshots before and after each step land in
// test-results/operations/.
import { mkdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FrameLocator, Page, Route } from 'playwright-core';
import { archiveContact, createContact, getContact, listRecentContacts, updateContact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { activeOperation } from '../../db/operations.ts';
import { updateSyncSettings } from '../../db/sync-settings.ts';
import { listUsers } from '../../db/users.ts';
import { contactLabel, emptyContact } from '../../server/sync/contact-model.ts';
import { call, control, until } from '../helpers/emulator.ts';
import { sandboxInBrowser } from './browser.ts';

const OUT = 'test-results/operations';
const world = sandboxInBrowser('operations');
let page: Page;
let panel: FrameLocator;

const sandbox = () => world.tandem.sandbox!;
const location = () => sandbox().locations[0]!;
const db = () => world.tandem.database.db;
const plainUser = () => sandbox().users.find((u) => u.type === 'account' && u.role === 'user' && !u.deactivated && u.locationIds.includes(location().id))!;
const agencyAdmin = () => sandbox().users.find((u) => u.type === 'agency' && u.role === 'admin')!;

/** A HighLevel contact as HighLevel holds it (the location's own token, like another integration). */
async function highLevelContact(id: string): Promise<{ firstName?: string; lastName?: string }> {
  const res = await call<{ contact: { firstName?: string; lastName?: string } }>(sandbox().highlevelUrl, 'GET', `/contacts/${id}`, { token: location().privateToken });
  expect(res.status).toBe(200);
  return res.body.contact;
}

/** Two linked contacts of the demo location, once the loop has imported them. */
async function linkedContacts(n: number): Promise<Array<{ id: string; highlevelId: string }>> {
  return until(() => {
    const out = listRecentContacts(db(), location().id, { limit: 50 })
      .contacts.map((c) => ({ id: c.id, highlevelId: getLinkByContact(db(), location().id, c.id)?.highlevelId }))
      .filter((c): c is { id: string; highlevelId: string } => c.highlevelId !== undefined);
    return out.length >= n ? out.slice(0, n) : undefined;
  }, 'the demo contacts imported and linked', 30_000);
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  // The viewer's own time zone, so the "Last …" lines must carry its abbreviation; and a browser
  // in German, whose day and month names must not mix into the panel's English.
  page = await world.browser.newPage({ viewport: { width: 1280, height: 1400 }, timezoneId: 'America/Los_Angeles', locale: 'de-DE' });
  await page.goto(sandbox().sandboxUrl);
  await page.getByTestId('user-switcher').selectOption(agencyAdmin().id);
  panel = page.frameLocator('iframe[data-testid="app-frame"]');
  await panel.getByTestId('operations').waitFor();
}, 60_000);

/** A screenshot with the One-time operations card at the top of the panel's frame. */
async function shot(name: string): Promise<void> {
  await panel.getByTestId('operations').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: `${OUT}/${name}.png` });
}
/**
 * Holds every read of HighLevel contacts and users for the location until the returned release
 * is called (or the faults are cleared), so a run or preview is still under way for as long as a
 * test looks at it.
 */
async function holdReads(): Promise<() => Promise<void>> {
  const rule = await control(sandbox().highlevelUrl, 'POST', '/faults', { path: '^/(contacts/search|users/)', locationId: location().id, delayMs: 600_000, times: 1000 });
  return async () => void (await control(sandbox().highlevelUrl, 'DELETE', `/faults/${rule.id}`));
}
const dialog = () => panel.getByTestId('operation-dialog');

/** Opens the dialog with `start`, waits for the preview, and returns its text. */
async function preview(start: () => Promise<void>, name: string): Promise<string> {
  await start();
  await dialog().waitFor();
  const confirm = dialog().getByTestId('operation-confirm');
  await until(() => confirm.isEnabled(), 'the preview to arrive', 20_000);
  // Focus is in the dialog (the page behind is inert).
  expect(await dialog().evaluate((d) => d.contains(document.activeElement))).toBe(true);
  await shot(name);
  return dialog().getByTestId('operation-preview').innerText();
}

/**
 * Confirms the open preview, sees the progress, and waits for the run to complete. A run that
 * makes no HighLevel request (the undo of a pull writes Tandem only) may finish before the progress
 * can be seen; `progress: false` then only waits for the result.
 */
async function confirmAndWatch(name: string, opts: { progress?: boolean } = {}): Promise<string> {
  // HighLevel holds the run's reads until the progress has been seen.
  const release = await holdReads();
  await dialog().getByTestId('operation-confirm').click();
  if (opts.progress !== false) {
    await panel.getByTestId('operation-progress').waitFor({ timeout: 5_000 });
    expect(await panel.getByRole('progressbar').count()).toBe(1);
    expect(await panel.getByTestId('operation-cancel-run').isVisible()).toBe(true);
    // Announced: the run's status sentence alone, not Cancel nor the figures that move every second.
    const regions = panel.getByTestId('operations').locator('[aria-live], [role="status"], [role="alert"]');
    for (const region of await regions.all()) {
      expect(await region.locator('button, [role="progressbar"], [data-testid^="operation-progress"]').count()).toBe(0);
    }
    expect(await panel.getByTestId('operation-status').getAttribute('role')).toBe('status');
    await shot(`${name}-progress`);
  }
  await release();
  const result = panel.getByTestId('operation-result');
  await result.waitFor({ timeout: 30_000 });
  expect(await result.getAttribute('data-status')).toBe('completed');
  await shot(`${name}-done`);
  return result.innerText();
}

const firstEntry = () => panel.getByTestId('operations-history-entry').first();

/** A block of reasons (why records failed or were skipped) as "Heading:" and one line per reason. */
async function reasonsOf(block: ReturnType<FrameLocator['getByTestId']>): Promise<string[]> {
  return [await block.locator('p').first().innerText(), ...(await block.getByRole('listitem').allInnerTexts())];
}

describe('one-time operations in the sandbox', () => {
  it('shows Never before any run, with each explanation; Escape closes a preview without writing', async () => {
    for (const [kind, label] of [['push', 'Last push contacts'], ['pull', 'Last pull contacts'], ['sync_users', 'Last sync users']] as const) {
      // The card shows a placeholder until the operations have loaded.
      await expect.poll(() => panel.getByTestId(`operation-last-${kind}`).innerText(), { timeout: 15_000 }).toBe(`${label}: Never`);
    }
    expect(await panel.getByTestId('operation-push').innerText()).toContain('Tandem’s values win');
    expect(await panel.getByTestId('operations-history').innerText()).toContain('No one-time operation has run');
    await shot('0-card-before');

    // HighLevel holds the reads: the dialog says it is reading, with progress, and Confirm waits.
    const release = await holdReads();
    const button = panel.getByTestId('operation-start-push');
    await button.click();
    await dialog().getByText('Reading HighLevel… Nothing is changed until you confirm.').waitFor();
    expect(await dialog().getByRole('progressbar').count()).toBe(1);
    expect(await dialog().getByTestId('operation-confirm').isDisabled()).toBe(true);
    await shot('0-push-reading');
    await release();
    await preview(async () => {}, '0-push-preview-escape');
    await page.keyboard.press('Escape');
    await dialog().getByTestId('operation-confirm').waitFor({ state: 'detached' });
    // Focus returns to the button that opened it; nothing ran.
    expect(await button.evaluate((b) => b === document.activeElement)).toBe(true);
    expect(await panel.getByTestId('operations-history').innerText()).toContain('No one-time operation has run');
  }, 60_000);

  it('pushes a contact changed in Tandem to HighLevel, then undoes the push', async () => {
    const [contact] = await linkedContacts(2);
    const before = await highLevelContact(contact!.highlevelId);
    // An edit made in Tandem that the loop does not send (Contact update is Inbound by default).
    const changed = `Pushed${Date.now() % 100000}`;
    updateContact(db(), { locationId: location().id, id: contact!.id, patch: { firstName: changed }, now: Date.now(), origin: 'local' });

    const text = await preview(() => panel.getByTestId('operation-start-push').click(), 'push-1-preview');
    expect(text).toContain(`First name: ${before.firstName ?? 'empty'} → ${changed}`);
    expect(await dialog().getByTestId('operation-preview-counts').innerText()).toMatch(/HighLevel\s+0\s+1\s+\d+/);
    expect(text).toMatch(/Needs \d+ HighLevel requests?; HighLevel’s rate limits make that take/);
    // Nothing is written before Confirm.
    expect((await highLevelContact(contact!.highlevelId)).firstName).toBe(before.firstName);

    expect(await confirmAndWatch('push-2')).toMatch(/Completed: 1 updated, \d+ unchanged in HighLevel$/);
    expect((await highLevelContact(contact!.highlevelId)).firstName).toBe(changed);
    const last = await panel.getByTestId('operation-last-push').innerText();
    // When it ran (in English, with how long ago, as every time of the panel), and what it did:
    // verified at a glance.
    expect(last).toMatch(/^Last push contacts:\s+[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\s?[AP]M P[SD]T\s+(just now|\d+ min\. ago)$/);
    expect(await panel.getByTestId('operation-last-result-push').innerText()).toMatch(/^1 updated, \d+ unchanged in HighLevel$/);
    expect(await firstEntry().locator('.ago').innerText()).toMatch(/^(just now|\d+ min\. ago)$/);
    expect(await firstEntry().innerText()).toContain(`by ${agencyAdmin().name}`);

    // QA: every Undo button was named "Undo this run" alone; each says which run it takes back.
    await firstEntry().getByTestId('operation-undo').waitFor();
    const finished = await firstEntry().locator('time').innerText();
    expect(await firstEntry().getByRole('button', { name: `Undo this run: push contacts of ${finished}`, exact: true }).count()).toBe(1);
    const undoText = await preview(() => firstEntry().getByTestId('operation-undo').click(), 'push-3-undo-preview');
    expect(await dialog().locator('#operation-dialog-title').innerText()).toBe(`Undo push contacts of ${finished}`);
    expect(undoText).toContain(`First name: ${changed} → ${before.firstName ?? 'empty'}`);
    await confirmAndWatch('push-4-undo');
    expect((await highLevelContact(contact!.highlevelId)).firstName).toBe(before.firstName);
    // The pushed run is marked undone and cannot be undone twice.
    const pushed = panel.getByTestId('operations-history-entry').filter({ hasText: 'Undone' });
    await pushed.waitFor();
    expect(await pushed.getByTestId('operation-undo').count()).toBe(0);
    // The last-run line says so too: its result no longer stands.
    expect(await panel.getByTestId('operation-last-result-push').innerText()).toMatch(/^1 updated, \d+ unchanged in HighLevel \(undone since\)$/);
  }, 90_000);

  it('pulls HighLevel’s values over a contact changed in Tandem, then undoes the pull', async () => {
    const [, contact] = await linkedContacts(2);
    const hl = await highLevelContact(contact!.highlevelId);
    const local = `Local${Date.now() % 100000}`;
    updateContact(db(), { locationId: location().id, id: contact!.id, patch: { lastName: local }, now: Date.now(), origin: 'local' });

    // A contact archived in Tandem (still in HighLevel: Contact update is Inbound): a pull skips it.
    const [, , , archived] = await linkedContacts(4);
    archiveContact(db(), { locationId: location().id, id: archived!.id, now: Date.now(), origin: 'local' });

    const text = await preview(() => panel.getByTestId('operation-start-pull').click(), 'pull-1-preview');
    expect(text).toContain(`Last name: ${local} → ${hl.lastName ?? 'empty'}`);
    expect(getContact(db(), location().id, contact!.id)!.fields.lastName).toBe(local);

    // Two contacts differ: this one, and the one whose push was undone (Tandem kept its first name).
    expect(await confirmAndWatch('pull-2')).toMatch(/Completed: 2 updated, \d+ unchanged, 1 skipped in Tandem$/);
    // Why it skipped one is said for that contact, under the result and under the run in History
    // (QA: one sentence listing every reason a pull may skip for).
    const archivedName = contactLabel(getContact(db(), location().id, archived!.id)!.fields, archived!.id);
    const why = ['Skipped, left as they are in Tandem:', `${archivedName} — archived in Tandem: a pull does not bring it back (restore it through Tandem’s REST API to pull it again)`];
    expect(await reasonsOf(panel.getByTestId('operation-result-skipped'))).toEqual(why);
    await until(async () => (await firstEntry().getAttribute('data-kind')) === 'pull' && (await firstEntry().getAttribute('data-status')) === 'completed', 'the pull in History');
    expect(await reasonsOf(firstEntry().getByTestId('operations-history-skipped-why'))).toEqual(why);
    // That names every skipped contact already: no list to open that would repeat it.
    expect(await firstEntry().getByTestId('operations-history-skips-toggle').count()).toBe(0);
    expect(getContact(db(), location().id, contact!.id)!.fields.lastName).toBe(hl.lastName ?? null);
    const [pushed] = await linkedContacts(2);
    const pushedHl = await highLevelContact(pushed!.highlevelId);
    expect(getContact(db(), location().id, pushed!.id)!.fields.firstName).toBe(pushedHl.firstName ?? null);

    const undoText = await preview(() => firstEntry().getByTestId('operation-undo').click(), 'pull-3-undo-preview');
    expect(undoText).toContain(`Last name: ${hl.lastName ?? 'empty'} → ${local}`);
    // Taking a pull back writes Tandem only.
    expect(undoText).toContain('Makes no HighLevel request');
    await confirmAndWatch('pull-4-undo', { progress: false });
    expect(getContact(db(), location().id, contact!.id)!.fields.lastName).toBe(local);
    expect(getContact(db(), location().id, pushed!.id)!.fields.firstName).toMatch(/^Pushed\d+$/);
  }, 90_000);

  it('syncs users: a HighLevel user missing in Tandem is added', async () => {
    const email = `casey.new${Date.now() % 100000}@example.com`;
    await control(sandbox().highlevelUrl, 'POST', '/users', {
      companyId: sandbox().company.id, firstName: 'Casey', lastName: 'Newhire', email, type: 'account', role: 'user', locationIds: [location().id],
    });
    const text = await preview(() => panel.getByTestId('operation-start-sync_users').click(), 'sync-users-1-preview');
    expect(await dialog().getByTestId('operation-preview-users').innerText()).toContain(`Add Casey Newhire ${email}`);
    expect(text).toMatch(/Needs \d+ HighLevel requests?/);
    expect(listUsers(db(), location().id, { email })).toEqual([]);

    await confirmAndWatch('sync-users-2');
    expect(listUsers(db(), location().id, { email }).map((u) => u.name)).toEqual(['Casey Newhire']);
    expect(await panel.getByTestId('operation-last-sync_users').innerText()).toMatch(/^Last sync users:\s+[A-Z][a-z]{2} \d/);
    // Sync users is not undoable.
    expect(await firstEntry().getByTestId('operation-undo').count()).toBe(0);

    // Run again at once, it has nothing left to do: the dialog says so and offers no Confirm.
    await panel.getByTestId('operation-start-sync_users').click();
    await dialog().locator('[data-status="previewed"]').waitFor({ timeout: 20_000 });
    expect(await dialog().getByTestId('operation-nothing').innerText()).toMatch(/^Nothing to change\./);
    expect(await dialog().getByTestId('operation-confirm').isDisabled()).toBe(true);
    await shot('sync-users-3-nothing');
    await page.keyboard.press('Escape');
    await dialog().getByTestId('operation-confirm').waitFor({ state: 'detached' });
  }, 90_000);

  it('says why a record HighLevel refused failed, in plain words with what to do, under the result and the run', async () => {
    const [, , contact] = await linkedContacts(3);
    updateContact(db(), { locationId: location().id, id: contact!.id, patch: { companyName: `Refused Co ${Date.now() % 1000}` }, now: Date.now(), origin: 'local' });
    await preview(() => panel.getByTestId('operation-start-push').click(), 'push-failure-1-preview');
    await control(sandbox().highlevelUrl, 'POST', '/faults', { method: 'PUT', path: `/contacts/${contact!.highlevelId}`, status: 422, body: { message: 'companyName is not allowed' }, times: 1 });
    // Not the green all-clear of a clean run: finished with problems, in amber, its failures first.
    expect(await confirmAndWatch('push-failure-2')).toMatch(/^Push contacts · Finished with problems: 1 contact failed in HighLevel(; .+ in (HighLevel|Tandem))?$/);
    const result = panel.getByTestId('operation-result');
    expect(await result.getAttribute('data-tone')).toBe('warn');
    expect(await result.locator('strong.problem').innerText()).toBe('1 contact failed in HighLevel');
    expect(await panel.getByTestId('operation-live').evaluate((el) => getComputedStyle(el).borderLeftColor)).toBe('rgb(247, 144, 9)');
    await until(async () => (await firstEntry().getByTestId('operations-history-status').innerText()) === 'Finished with problems', 'the run in History');
    const pill = firstEntry().getByTestId('operations-history-status');
    expect(await pill.evaluate((el) => getComputedStyle(el).color)).toBe('rgb(181, 71, 8)');
    expect(await firstEntry().getByTestId('operations-history-summary').innerText()).toMatch(/^1 contact failed in HighLevel(; |$)/);
    expect(await panel.getByTestId('operation-last-result-push').locator('strong.problem').innerText()).toBe('1 contact failed in HighLevel');
    // Why, in words that say what to do, HighLevel's own words after them as a quieter detail
    // (QA: HighLevel's raw message was the reason), under the result and under the run in History.
    const name = contactLabel(getContact(db(), location().id, contact!.id)!.fields, contact!.id);
    const why = ['Failed:', `${name} — HighLevel refused this contact’s values. Correct the contact in Tandem, then run Push contacts again. HighLevel said: “companyName is not allowed.”`];
    const failed = panel.getByTestId('operation-result-failed');
    expect(await reasonsOf(failed)).toEqual(why);
    expect(await failed.locator('.detail').innerText()).toBe('HighLevel said: “companyName is not allowed.”');
    expect(await failed.locator('.detail').evaluate((el) => getComputedStyle(el).color)).not.toBe(await failed.locator('li').evaluate((el) => getComputedStyle(el).color));
    expect(await reasonsOf(firstEntry().getByTestId('operations-history-failed-why'))).toEqual(why);
    // Named already: no "Show 1 failed record" repeating it.
    expect(await firstEntry().getByTestId('operations-history-failures-toggle').count()).toBe(0);
    await shot('push-failure-3-why');
  }, 90_000);

  it('shows a plain user the times and the history, without any button', async () => {
    await page.getByTestId('user-switcher').selectOption(plainUser().id);
    await panel.getByTestId('panel-read-only').waitFor();
    await panel.getByTestId('operations-history-entry').first().waitFor();
    expect(await panel.getByTestId('operations-history-entry').count()).toBe(6);
    for (const kind of ['push', 'pull', 'sync_users']) expect(await panel.getByTestId(`operation-start-${kind}`).count()).toBe(0);
    expect(await panel.getByTestId('operation-undo').count()).toBe(0);
    expect(await panel.getByTestId('operation-last-push').innerText()).toMatch(/^Last push contacts:\s+[A-Z][a-z]{2} \d/);
    expect(await panel.getByTestId('operations-read-only').innerText()).toContain('Only admins can run these operations');
    await shot('user-read-only');
  }, 60_000);

  it('warns before an undo deletes contacts in HighLevel, and asks with a red Confirm', async () => {
    await page.getByTestId('user-switcher').selectOption(agencyAdmin().id);
    await panel.getByTestId('operation-start-push').waitFor();
    const loc = location().id;
    const admin = { id: 'e2e-test', name: 'E2E test' };
    // Creation Inbound: the loop holds the new Tandem contact, so the push is what creates it in HighLevel.
    updateSyncSettings(db(), { locationId: loc, patch: { creationDirection: 'inbound' }, user: admin, now: Date.now() });
    const email = `fresh${Date.now() % 100000}@tandem.example`;
    const fresh = createContact(db(), { locationId: loc, fields: { ...emptyContact(), firstName: 'Fresh', lastName: 'FromTandem', email }, now: Date.now(), origin: 'local' });
    try {
      await preview(() => panel.getByTestId('operation-start-push').click(), 'delete-1-push-preview');
      expect(await dialog().getByTestId('operation-preview-counts').innerText()).toMatch(/HighLevel\s+1\s/);
      // A push only creates and updates: nothing to warn about, the usual blue Confirm.
      expect(await dialog().getByTestId('operation-warning').count()).toBe(0);
      expect(await dialog().getByTestId('operation-confirm').getAttribute('class')).toMatch(/\bprimary\b/);
      expect(await confirmAndWatch('delete-2-push')).toMatch(/1 created/);
      const highlevelId = getLinkByContact(db(), loc, fresh.id)!.highlevelId;
      await highLevelContact(highlevelId);

      const text = await preview(() => firstEntry().getByTestId('operation-undo').click(), 'delete-3-undo-preview');
      const warning = dialog().getByTestId('operation-warning');
      expect(await warning.count()).toBe(1);
      expect(await warning.innerText()).toBe('1 contact Tandem created in HighLevel will be deleted there; HighLevel cannot restore it.');
      const confirm = dialog().getByTestId('operation-confirm');
      expect(await confirm.getAttribute('class')).toMatch(/\bdanger\b/);
      expect(await confirm.evaluate((b) => getComputedStyle(b).backgroundColor)).toBe('rgb(217, 45, 32)');
      expect(await confirm.getAttribute('aria-describedby')).toBe('operation-warning');
      // The contact's line says what happens to it in plain words; the table's column too.
      expect(text).toContain('deleted in HighLevel');
      expect(text).not.toMatch(/exists|→ deleted/);
      expect(await dialog().getByTestId('operation-preview-counts').innerText()).toContain('Deleted');
      await confirmAndWatch('delete-4-undo');
      const gone = await call(sandbox().highlevelUrl, 'GET', `/contacts/${highlevelId}`, { token: location().privateToken });
      // HighLevel answers a deleted contact's id as not found (400, as the real one does, or 404).
      expect([400, 404]).toContain(gone.status);
    } finally {
      archiveContact(db(), { locationId: loc, id: fresh.id, now: Date.now(), origin: 'local' });
      updateSyncSettings(db(), { locationId: loc, patch: { creationDirection: 'bidirectional' }, user: admin, now: Date.now() });
    }
  }, 90_000);

  it('names under the run each contact a push skipped as a duplicate, with why', async () => {
    const loc = location().id;
    const admin = { id: 'e2e-test', name: 'E2E test' };
    // A Tandem contact with the email of a linked one HighLevel already holds (Creation Inbound: the
    // loop leaves it to the push, which does not create it twice).
    const [held] = await linkedContacts(1);
    const email = `twice${Date.now() % 100000}@tandem.example`;
    updateContact(db(), { locationId: loc, id: held!.id, patch: { email }, now: Date.now(), origin: 'local' });
    updateSyncSettings(db(), { locationId: loc, patch: { creationDirection: 'inbound' }, user: admin, now: Date.now() });
    const twin = createContact(db(), { locationId: loc, fields: { ...emptyContact(), firstName: 'Twin', lastName: 'Duplicate', email }, now: Date.now(), origin: 'local' });
    try {
      const text = await preview(() => panel.getByTestId('operation-start-push').click(), 'skipped-1-preview');
      expect(text).toContain('1 contact has the email or phone of another Tandem contact that HighLevel already holds: not created twice (change the email or phone of one of the two on the Contacts tab, or delete the other in HighLevel; History names each).');
      expect(await confirmAndWatch('skipped-2-push')).toMatch(/1 skipped in HighLevel/);
      await until(async () => (await firstEntry().getAttribute('data-kind')) === 'push' && (await firstEntry().getAttribute('data-status')) === 'completed', 'the push in History');
      // Named with why under the run, and under the result (QA: one generic sentence per kind of skip).
      const heldName = contactLabel(getContact(db(), loc, held!.id)!.fields, held!.id);
      const why = ['Skipped, not sent to HighLevel:', `Twin Duplicate — same email as Tandem contact ${heldName}, which HighLevel already holds as one contact: not created twice (change the email of one of the two on the Contacts tab, or delete the other in HighLevel)`];
      expect(await reasonsOf(panel.getByTestId('operation-result-skipped'))).toEqual(why);
      expect(await reasonsOf(firstEntry().getByTestId('operations-history-skipped-why'))).toEqual(why);
      expect(await firstEntry().getByTestId('operations-history-skips-toggle').count()).toBe(0);
      await shot('skipped-3-named');
    } finally {
      archiveContact(db(), { locationId: loc, id: twin.id, now: Date.now(), origin: 'local' });
      updateSyncSettings(db(), { locationId: loc, patch: { creationDirection: 'bidirectional' }, user: admin, now: Date.now() });
    }
  }, 90_000);
});

describe('two tabs of the panel', () => {
  /** The panel in a tab of its own, signed in as the agency admin. */
  async function tab(): Promise<{ page: Page; panel: FrameLocator; dialog: () => ReturnType<FrameLocator['getByTestId']> }> {
    const p = await world.browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await p.goto(sandbox().sandboxUrl);
    await p.getByTestId('user-switcher').selectOption(agencyAdmin().id);
    const f = p.frameLocator('iframe[data-testid="app-frame"]');
    await f.getByTestId('operation-start-pull').waitFor();
    return { page: p, panel: f, dialog: () => f.getByTestId('operation-dialog') };
  }

  it('tells a preview at once that a newer one from another tab replaced it, and offers Preview again', async () => {
    const a = await tab();
    const b = await tab();
    try {
      // Tab A's preview reads slowly; tab B starts one meanwhile.
      await control(sandbox().highlevelUrl, 'POST', '/faults', { path: '/contacts/search', locationId: location().id, delayMs: 3000, times: 1 });
      await a.panel.getByTestId('operation-start-pull').click();
      await a.dialog().getByText('Reading HighLevel… Nothing is changed until you confirm.').waitFor();
      await b.panel.getByTestId('operation-start-pull').click();
      const why = 'A newer preview of Pull contacts, which you opened in another tab or window, replaced this one: a sub-account has one preview open at a time. Nothing was changed.';
      const ended = a.dialog().getByTestId('operation-ended');
      await ended.waitFor({ timeout: 10_000 });
      expect(await ended.innerText()).toBe(why);
      expect(await a.dialog().getByTestId('operation-confirm').count()).toBe(0);
      expect(await a.dialog().getByTestId('operation-cancel').innerText()).toBe('Close');
      await a.page.screenshot({ path: `${OUT}/tabs-1-replaced-while-reading.png` });

      // Tab B's preview is shown; tab A previews again, which replaces B's shown preview in turn.
      await until(() => b.dialog().getByTestId('operation-confirm').isEnabled(), 'tab B’s preview', 20_000);
      await a.dialog().getByTestId('operation-preview-again').click();
      await until(() => a.dialog().getByTestId('operation-confirm').isEnabled(), 'tab A’s new preview', 20_000);
      const bEnded = b.dialog().getByTestId('operation-ended');
      await bEnded.waitFor({ timeout: 10_000 });
      expect(await bEnded.innerText()).toBe(why);
      expect(await b.dialog().getByTestId('operation-confirm').count()).toBe(0);
      // Focus stays in the dialog (on Preview again if it was on the Confirm that went away).
      expect(await b.dialog().evaluate((d) => d.contains(document.activeElement))).toBe(true);
      await b.page.screenshot({ path: `${OUT}/tabs-2-replaced-once-shown.png` });

      await b.page.keyboard.press('Escape');
      await b.dialog().getByTestId('operation-preview-again').waitFor({ state: 'detached' });
      await a.page.keyboard.press('Escape');
      await a.dialog().getByTestId('operation-confirm').waitFor({ state: 'detached' });
    } finally {
      await control(sandbox().highlevelUrl, 'DELETE', '/faults');
      await a.page.close();
      await b.page.close();
    }
  }, 90_000);
  it('announces "Reading HighLevel…" and then the preview and its Confirm politely; after Enter on Confirm focus is on Cancel run, then on the result', async () => {
    const { page: p, panel: f, dialog: d } = await tab();
    try {
      const releasePreview = await holdReads();
      await f.getByTestId('operation-start-push').focus();
      await p.keyboard.press('Enter');
      const live = d().getByTestId('operation-dialog-announcement');
      expect(await live.getAttribute('role')).toBe('status');
      expect(await live.getAttribute('aria-live')).toBe('polite');
      const said = async () => (await live.textContent()) ?? '';
      // QA: focus sits on Cancel while HighLevel is read, and nothing said the preview arrived.
      await until(async () => (await said()) === 'Reading HighLevel… Nothing is changed until you confirm.', 'the reading announced');
      expect(await d().getByTestId('operation-cancel').evaluate((el) => el === document.activeElement)).toBe(true);
      await releasePreview();
      await until(async () => /^Preview ready: .+ Confirm push contacts is available\.$/.test(await said()), 'the preview announced', 20_000);
      expect(await d().getByTestId('operation-confirm').isEnabled()).toBe(true);
      await p.screenshot({ path: `${OUT}/a11y-1-preview-announced.png` });

      // HighLevel holds the run's reads until the faults are cleared, so it is still running when the dialog closes.
      const releaseRun = await holdReads();
      await d().getByTestId('operation-confirm').focus();
      await p.keyboard.press('Enter');
      await d().getByTestId('operation-confirm').waitFor({ state: 'detached' });
      // QA: focus landed on the page's body (Push contacts, which opened the dialog, is disabled while the run goes).
      const cancelRun = f.getByTestId('operation-cancel-run');
      await until(() => cancelRun.evaluate((el) => el === document.activeElement), 'focus on Cancel run');
      await p.screenshot({ path: `${OUT}/a11y-2-focus-after-confirm.png` });
      await releaseRun();
      // Cancel run goes with the run: focus moves to the line that says how it ended.
      await f.getByTestId('operation-result').waitFor({ timeout: 30_000 });
      await until(() => f.getByTestId('operation-status').evaluate((el) => el === document.activeElement), 'focus on the result');
    } finally {
      await control(sandbox().highlevelUrl, 'DELETE', '/faults');
      await p.close();
    }
  }, 90_000);

  it('keeps focus on Confirm while it is sent and on Cancel run once pressed, each busy, a second press sending nothing', async () => {
    // QA: a focused button disabled while its own action ran dropped focus to the page's body.
    const { page: p, panel: f, dialog: d } = await tab();
    /** Holds the panel's POSTs to `path` until released, counting them. */
    const hold = async (path: string) => {
      const held: Route[] = [];
      await p.route(path, (route) => (route.request().method() === 'POST' ? void held.push(route) : route.continue()));
      return {
        count: () => held.length,
        async release() {
          for (const route of held) await route.continue();
          await p.unroute(path);
        },
      };
    };
    const focused = (locator: ReturnType<FrameLocator['getByTestId']>) => locator.evaluate((el) => el === document.activeElement);
    try {
      await f.getByTestId('operation-start-push').click();
      const confirm = d().getByTestId('operation-confirm');
      await until(() => confirm.isEnabled(), 'the preview to arrive', 20_000);
      // HighLevel holds the run's reads until the faults are cleared, so it is still running when Cancel run is pressed.
      const release = await holdReads();
      const confirms = await hold('**/api/panel/operations/*/confirm');
      await confirm.focus();
      await p.keyboard.press('Enter');
      await until(() => confirms.count() === 1, 'the confirmation on its way');
      expect(await confirm.getAttribute('aria-disabled')).toBe('true');
      expect(await confirm.innerText()).toBe('Starting…');
      expect(await focused(confirm)).toBe(true);
      await p.keyboard.press('Enter');
      await confirms.release();
      const cancelRun = f.getByTestId('operation-cancel-run');
      await until(() => focused(cancelRun), 'focus on Cancel run');
      expect(confirms.count()).toBe(1);

      const cancels = await hold('**/api/panel/operations/*/cancel');
      await p.keyboard.press('Enter');
      await until(() => cancels.count() === 1, 'the cancel on its way');
      expect(await cancelRun.getAttribute('aria-disabled')).toBe('true');
      expect(await cancelRun.innerText()).toBe('Stopping…');
      expect(await focused(cancelRun)).toBe(true);
      await p.screenshot({ path: `${OUT}/busy-cancel-run.png` });
      await p.keyboard.press('Enter');
      await cancels.release();
      expect(cancels.count()).toBe(1);
      await until(() => activeOperation(db(), location().id)?.cancelRequestedAt != null, 'the cancel recorded');
      await release();
      // Stopping, then stopped: focus stays on the button while it is there, then the status line says how the run ended.
      await until(() => f.getByTestId('operation-status').evaluate((el) => el === document.activeElement), 'focus on the result', 30_000);
      expect(await f.getByTestId('operation-result').getAttribute('data-status')).toBe('cancelled');
    } finally {
      await control(sandbox().highlevelUrl, 'DELETE', '/faults');
      await p.close();
    }
  }, 90_000);

  it('lists a preview that failed as a failed preview, not as a failed run', async () => {
    const { page: p, panel: f, dialog: d } = await tab();
    try {
      await control(sandbox().highlevelUrl, 'POST', '/faults', { path: '/contacts/search', locationId: location().id, status: 400, body: { statusCode: 400, message: 'Bad search' }, times: 1 });
      await f.getByTestId('operation-start-push').click();
      await d().getByText('The preview could not be made').waitFor({ timeout: 20_000 });
      await d().getByTestId('operation-cancel').click();
      const entry = f.getByTestId('operations-history-entry').first();
      await until(async () => (await entry.getAttribute('data-status')) === 'failed' && (await entry.getAttribute('data-kind')) === 'push', 'the failed preview in History', 15_000);
      expect(await entry.getByTestId('operations-history-status').innerText()).toBe('Preview failed');
      expect(await entry.getByTestId('operations-history-summary').innerText()).toBe('Nothing ran: the preview could not be made.');
      await f.getByTestId('operations-history').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await p.screenshot({ path: `${OUT}/history-preview-failed.png` });
    } finally {
      await control(sandbox().highlevelUrl, 'DELETE', '/faults');
      await p.close();
    }
  }, 60_000);
});

/** What has focus in the panel's frame: a region's name, else the element's test id. */
const focused = (f: FrameLocator) =>
  f.locator(':root').evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el) return '';
    if (el.getAttribute('role') === 'region') return `region: ${document.getElementById(el.getAttribute('aria-labelledby') ?? '')?.textContent ?? ''}`;
    return el.dataset.testid ?? el.tagName;
  });

describe('a long preview in a short frame', () => {
  it('keeps the notes in view and lets the keyboard reach and scroll the samples and the dialog body', async () => {
    // QA at 700 px: Tab went Cancel ↔ Confirm only, and the key note was cut off under the samples.
    const p = await world.browser.newPage({ viewport: { width: 1280, height: 700 } });
    try {
      await p.goto(sandbox().sandboxUrl);
      await p.getByTestId('user-switcher').selectOption(agencyAdmin().id);
      const f = p.frameLocator('iframe[data-testid="app-frame"]');
      await f.getByTestId('operation-start-push').waitFor();
      const contacts = await linkedContacts(12);
      for (const [i, c] of contacts.entries()) {
        updateContact(db(), { locationId: location().id, id: c.id, patch: { companyName: `Long preview ${i} ${Date.now() % 1000}` }, now: Date.now(), origin: 'local' });
      }
      const d = f.getByTestId('operation-dialog');
      await f.getByTestId('operation-start-push').click();
      const confirm = d.getByTestId('operation-confirm');
      await until(() => confirm.isEnabled(), 'the preview', 20_000);
      expect(await d.getByTestId('operation-preview-samples').getByRole('listitem').count()).toBeGreaterThanOrEqual(12);

      // The notes come before the samples: on screen without scrolling.
      const body = d.locator('.body');
      const notes = d.getByTestId('operation-preview-notes');
      expect(await notes.innerText()).toContain('never clear HighLevel’s values');
      const [bodyBox, notesBox] = [await body.boundingBox(), await notes.boundingBox()];
      expect(await body.evaluate((el) => el.scrollTop)).toBe(0);
      expect(notesBox!.y + notesBox!.height).toBeLessThanOrEqual(bodyBox!.y + bodyBox!.height);

      // The samples scroll in their own box: a named keyboard stop, scrolled with the keys, with a visible ring.
      const samples = d.getByRole('region', { name: 'Sample of changes' });
      expect(await samples.getAttribute('tabindex')).toBe('0');
      await confirm.focus();
      // Tab from Confirm goes round the dialog once: past the samples, back to Cancel and Confirm.
      const order: string[] = [];
      do {
        await p.keyboard.press('Tab');
        order.push(await focused(f));
      } while (order.at(-1) !== 'operation-confirm' && order.length < 8);
      expect(order).toContain('region: Sample of changes');
      expect(order.slice(-2)).toEqual(['operation-cancel', 'operation-confirm']);
      await samples.focus();
      await p.keyboard.press('End');
      await until(async () => (await samples.evaluate((el) => el.scrollTop)) > 0, 'the samples scrolled by the keyboard');
      expect(await samples.evaluate((el) => getComputedStyle(el).boxShadow)).toContain('rgb(0, 64, 193)');
      await p.screenshot({ path: `${OUT}/short-1-samples-700.png` });

      // Shorter still, the dialog's body scrolls too: a keyboard stop named by the dialog's title.
      await p.setViewportSize({ width: 1280, height: 460 });
      const title = await d.locator('#operation-dialog-title').innerText();
      const region = d.getByRole('region', { name: title, exact: true });
      await until(async () => (await region.count()) === 1, 'the dialog body to become a keyboard stop');
      await confirm.focus();
      await p.keyboard.press('Tab');
      expect(await focused(f)).toBe(`region: ${title}`);
      await p.keyboard.press('End');
      await until(async () => (await region.evaluate((el) => el.scrollTop)) > 0, 'the body scrolled by the keyboard');
      await p.screenshot({ path: `${OUT}/short-2-body-460.png` });
      await p.keyboard.press('Escape');
      await confirm.waitFor({ state: 'detached' });
    } finally {
      await p.close();
    }
  }, 60_000);
});

describe('a run waiting out a 429', () => {
  it('says it waits to retry and when, its figures and bar still, not sending', async () => {
    const p = await world.browser.newPage({ viewport: { width: 1280, height: 1000 }, timezoneId: 'America/Los_Angeles' });
    try {
      await p.goto(sandbox().sandboxUrl);
      await p.getByTestId('user-switcher').selectOption(agencyAdmin().id);
      const f = p.frameLocator('iframe[data-testid="app-frame"]');
      await f.getByTestId('operation-start-push').waitFor();
      const [contact] = await linkedContacts(1);
      updateContact(db(), { locationId: location().id, id: contact!.id, patch: { companyName: `Retried Co ${Date.now() % 1000}` }, now: Date.now(), origin: 'local' });
      const d = f.getByTestId('operation-dialog');
      await f.getByTestId('operation-start-push').click();
      const confirm = d.getByTestId('operation-confirm');
      await until(() => confirm.isEnabled(), 'the preview', 20_000);
      // HighLevel refuses the run's write once as too many, asking it to wait a few seconds.
      await control(sandbox().highlevelUrl, 'POST', '/faults', { method: 'PUT', path: `/contacts/${contact!.highlevelId}`, status: 429, headers: { 'retry-after': '8' }, times: 1 });
      await confirm.click();
      const waiting = f.getByTestId('operation-progress-waiting');
      await waiting.waitFor({ timeout: 20_000 });
      expect(await waiting.innerText()).toMatch(/^HighLevel asked Tandem to slow down; the run tries again at [A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2}\s?[AP]M P[SD]T \(in less than a minute\)\.$/);
      expect(await f.getByTestId('operation-status').innerText()).toBe('Push contacts · Waiting to retry');
      // The buttons say why they wait.
      expect(await f.getByTestId('operations-start-note').innerText()).toBe('One operation runs at a time in a sub-account: these wait until the run below finishes or is cancelled.');
      expect(await f.getByTestId('operation-progress-done').innerText()).toMatch(/^Waiting/);
      // The refused write counts as a request HighLevel answered (the page read before it, then the 429).
      expect(await f.getByTestId('operation-progress-requests').innerText()).toBe('2 HighLevel requests');
      // History says what the card says, and why and until when (QA: its row said "Running").
      const entry = f.getByTestId('operations-history-entry').first();
      expect(await entry.getAttribute('data-status')).toBe('running');
      expect(await entry.getByTestId('operations-history-status').innerText()).toBe('Waiting to retry');
      expect(await entry.getByTestId('operations-history-waiting').innerText()).toBe(await waiting.innerText());
      const bar = f.getByTestId('operation-live').getByRole('progressbar');
      expect(await bar.getAttribute('aria-valuetext')).toMatch(/^Waiting for HighLevel/);
      expect(await bar.locator('span').evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(152, 162, 179)');
      await f.getByTestId('operations').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await p.screenshot({ path: `${OUT}/retry-1-waiting.png` });
      // Once HighLevel takes the write, the run goes on and completes.
      const result = f.getByTestId('operation-result');
      await result.waitFor({ timeout: 30_000 });
      expect(await result.getAttribute('data-status')).toBe('completed');
    } finally {
      await control(sandbox().highlevelUrl, 'DELETE', '/faults');
      await p.close();
    }
  }, 60_000);
});

describe('the card while the operations load', () => {
  it('holds the buttons’ place and shows placeholders in History, not “no operation has run”', async () => {
    const p = await world.browser.newPage({ viewport: { width: 1000, height: 1000 }, timezoneId: 'America/Los_Angeles' });
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    try {
      await p.route('**/api/panel/operations', async (route) => {
        await held;
        await route.continue();
      });
      await p.goto(sandbox().sandboxUrl);
      await p.getByTestId('user-switcher').selectOption(agencyAdmin().id);
      const f = p.frameLocator('iframe[data-testid="app-frame"]');
      const row = f.getByTestId('operation-push');
      await row.waitFor();
      await f.getByTestId('operations-history-loading').waitFor();
      expect(await f.getByTestId('operations-history').innerText()).not.toContain('No one-time operation has run');
      // The button is there already (disabled until the operations are read).
      expect(await f.getByTestId('operation-start-push').isDisabled()).toBe(true);
      await f.getByTestId('operations').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      const before = await row.boundingBox();
      await p.screenshot({ path: `${OUT}/load-1-loading.png` });
      release();
      await until(() => f.getByTestId('operation-start-push').isEnabled(), 'the operations read');
      const after = await row.boundingBox();
      expect(after!.height).toBe(before!.height);
      expect(await f.getByTestId('operations-history-loading').count()).toBe(0);
    } finally {
      release();
      await p.close();
    }
  }, 60_000);

  it('says it is the operations that could not be loaded, with Retry', async () => {
    const p = await world.browser.newPage({ viewport: { width: 1000, height: 1000 } });
    try {
      await p.route('**/api/panel/operations', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal', message: 'Internal error' } }) }));
      await p.goto(sandbox().sandboxUrl);
      await p.getByTestId('user-switcher').selectOption(agencyAdmin().id);
      const f = p.frameLocator('iframe[data-testid="app-frame"]');
      const failure = f.getByTestId('operations-failure');
      await failure.waitFor({ timeout: 20_000 });
      expect(await failure.getAttribute('role')).toBe('alert');
      expect(await failure.innerText()).toMatch(/^The one-time operations could not be loaded\. /);
      await p.unroute('**/api/panel/operations');
      await failure.getByRole('button', { name: 'Retry' }).click();
      await f.getByTestId('operation-start-push').waitFor();
    } finally {
      await p.close();
    }
  }, 60_000);
});

describe('a push while sync is paused', () => {
  it('says in the confirmation that sync is paused and the push still runs; it then finishes with problems, naming the failed and the skipped contact with why', async () => {
    // QA: a push ran while the status strip said Paused, and nothing said so before confirming.
    const p = await world.browser.newPage({ viewport: { width: 1280, height: 1100 }, timezoneId: 'America/Los_Angeles' });
    const loc = location().id;
    const admin = { id: 'e2e-test', name: 'E2E test' };
    const [held, refused] = await linkedContacts(2);
    const email = `paused${Date.now() % 100000}@tandem.example`;
    updateContact(db(), { locationId: loc, id: held!.id, patch: { email }, now: Date.now(), origin: 'local' });
    updateContact(db(), { locationId: loc, id: refused!.id, patch: { companyName: `Paused Co ${Date.now() % 1000}` }, now: Date.now(), origin: 'local' });
    updateSyncSettings(db(), { locationId: loc, patch: { creationDirection: 'inbound', paused: true }, user: admin, now: Date.now() });
    const twin = createContact(db(), { locationId: loc, fields: { ...emptyContact(), firstName: 'Paused', lastName: 'Twin', email }, now: Date.now(), origin: 'local' });
    try {
      await p.goto(sandbox().sandboxUrl);
      await p.getByTestId('user-switcher').selectOption(agencyAdmin().id);
      const f = p.frameLocator('iframe[data-testid="app-frame"]');
      const d = f.getByTestId('operation-dialog');
      await f.getByTestId('operation-start-push').click();
      const confirm = d.getByTestId('operation-confirm');
      await until(() => confirm.isEnabled(), 'the preview', 20_000);
      const notice = d.getByTestId('operation-paused');
      expect(await notice.innerText()).toBe(
        'Sync is paused, but this push still runs when you confirm: it sends Tandem’s contacts to HighLevel now. Other changes, both ways, keep waiting until you resume sync.',
      );
      expect(await confirm.getAttribute('aria-describedby')).toBe('operation-paused');
      await until(async () => (await d.getByTestId('operation-dialog-announcement').innerText()).includes('Sync is paused, but this push still runs'), 'the pause announced');
      await p.screenshot({ path: `${OUT}/paused-1-confirmation.png` });

      await control(sandbox().highlevelUrl, 'POST', '/faults', { method: 'PUT', path: `/contacts/${refused!.highlevelId}`, status: 422, body: { message: 'companyName is not allowed' }, times: 1 });
      await confirm.click();
      const result = f.getByTestId('operation-result');
      await result.waitFor({ timeout: 30_000 });
      // It ran while paused, as the confirmation said.
      expect(await result.innerText()).toMatch(/^Push contacts · Finished with problems: 1 contact failed in HighLevel; .*1 skipped in HighLevel$/);
      const refusedName = contactLabel(getContact(db(), loc, refused!.id)!.fields, refused!.id);
      const heldName = contactLabel(getContact(db(), loc, held!.id)!.fields, held!.id);
      expect(await reasonsOf(f.getByTestId('operation-result-failed'))).toEqual([
        'Failed:',
        `${refusedName} — HighLevel refused this contact’s values. Correct the contact in Tandem, then run Push contacts again. HighLevel said: “companyName is not allowed.”`,
      ]);
      expect(await reasonsOf(f.getByTestId('operation-result-skipped'))).toEqual([
        'Skipped, not sent to HighLevel:',
        `Paused Twin — same email as Tandem contact ${heldName}, which HighLevel already holds as one contact: not created twice (change the email of one of the two on the Contacts tab, or delete the other in HighLevel)`,
      ]);
      await until(async () => (await f.getByTestId('operations-history-entry').first().getAttribute('data-status')) === 'completed', 'the push in History');
      await f.getByTestId('operations').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await p.screenshot({ path: `${OUT}/paused-2-finished-with-problems.png` });
    } finally {
      await control(sandbox().highlevelUrl, 'DELETE', '/faults');
      archiveContact(db(), { locationId: loc, id: twin.id, now: Date.now(), origin: 'local' });
      updateSyncSettings(db(), { locationId: loc, patch: { creationDirection: 'bidirectional', paused: false }, user: admin, now: Date.now() });
      await p.close();
    }
  }, 60_000);
});

describe('a preview waiting on HighLevel, found after a reload', () => {
  const secondAdmin = () => sandbox().users.find((u) => u.type === 'account' && u.role === 'admin' && !u.deactivated && u.locationIds.includes(location().id))!;
  /** The panel in `p`, loaded afresh (a reload) and signed in as `userId`. */
  async function load(p: Page, userId: string): Promise<FrameLocator> {
    await p.goto(sandbox().sandboxUrl);
    await p.getByTestId('user-switcher').selectOption(userId);
    const f = p.frameLocator('iframe[data-testid="app-frame"]');
    await f.getByTestId('operation-start-push').waitFor();
    return f;
  }
  const moment = String.raw`[A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2}\s?[AP]M P[SD]T`;

  it('shows who opened it, since when, why it waits and until when, and until when it stands; Open preview reattaches to it, Cancel preview discards it', async () => {
    // QA: reloaded while a Push contacts preview waited on HighLevel's rate limit, the card showed no
    // operation and its buttons looked as usual; only starting Push contacts again found the wait.
    const p = await world.browser.newPage({ viewport: { width: 1280, height: 1000 }, timezoneId: 'America/Los_Angeles' });
    const other = await world.browser.newPage({ viewport: { width: 1280, height: 1000 }, timezoneId: 'America/Los_Angeles' });
    try {
      let f = await load(p, agencyAdmin().id);
      // HighLevel refuses the preview's first read as too many, asking Tandem to wait 20 s.
      await control(sandbox().highlevelUrl, 'POST', '/faults', { path: '/contacts/search', locationId: location().id, status: 429, headers: { 'retry-after': '20' }, times: 1 });
      await f.getByTestId('operation-start-push').click();
      await f.getByTestId('operation-dialog').getByTestId('operation-progress-waiting').waitFor({ timeout: 20_000 });

      f = await load(p, agencyAdmin().id);
      const pending = f.getByTestId('operation-pending');
      await pending.waitFor();
      expect(await pending.innerText()).toBe('Push contacts · Preparing the preview: waiting to retry');
      expect(await f.getByTestId('operation-pending-by').innerText()).toMatch(new RegExp(`^Opened by ${agencyAdmin().name} ·\\s+[A-Z][a-z]{2} \\d{1,2}, \\d{4}, \\d{1,2}:\\d{2}\\s?[AP]M P[SD]T\\s+(just now|\\d+ min\\. ago)$`));
      const live = f.getByTestId('operation-live');
      expect(await live.getByTestId('operation-progress-waiting').innerText()).toMatch(
        new RegExp(`^HighLevel asked Tandem to slow down; the preview tries again at ${moment} \\(in less than a minute\\)\\.$`),
      );
      expect(await f.getByTestId('operation-pending-expiry').innerText()).toMatch(
        new RegExp(`^Nothing has been changed\\. Unless confirmed by ${moment} \\(in 1[45] minutes\\), it is dropped\\.$`),
      );
      // The buttons say what starting one does meanwhile: the server keeps one preview open at a time.
      const note = 'A sub-account has one preview open at a time: starting an operation replaces the one below.';
      expect(await f.getByTestId('operations-start-note').innerText()).toBe(note);
      expect(await f.getByTestId('operation-start-pull').getAttribute('aria-describedby')).toBe('operations-start-note');
      expect(await f.getByTestId('operation-start-pull').isEnabled()).toBe(true);
      expect(await live.getByTestId('operation-pending-cancel').isEnabled()).toBe(true);
      await f.getByTestId('operations').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await p.screenshot({ path: `${OUT}/reattach-1-waiting-after-reload.png` });

      // Another admin's panel shows it too, with who opened it.
      const g = await load(other, secondAdmin().id);
      await g.getByTestId('operation-pending').waitFor();
      expect(await g.getByTestId('operation-pending-by').innerText()).toContain(`Opened by ${agencyAdmin().name} ·`);
      expect(await g.getByTestId('operations-start-note').innerText()).toBe(note);

      // Open preview: the dialog shows it waiting, then what the run would do once HighLevel lets it read.
      await f.getByTestId('operation-pending-open').click();
      const d = f.getByTestId('operation-dialog');
      await d.getByText('Waiting for HighLevel before reading on.').waitFor();
      expect(await d.getByTestId('operation-progress-waiting').innerText()).toMatch(/^HighLevel asked Tandem to slow down; the preview tries again at /);
      await p.screenshot({ path: `${OUT}/reattach-2-dialog-waiting.png` });
      const confirm = d.getByTestId('operation-confirm');
      await until(() => confirm.isEnabled(), 'the preview, once HighLevel lets it read', 45_000);
      expect(await d.getByTestId('operation-preview').isVisible()).toBe(true);
      await p.screenshot({ path: `${OUT}/reattach-3-dialog-ready.png` });
      await until(async () => (await g.getByTestId('operation-pending').innerText()) === 'Push contacts · Preview ready — review and confirm', 'the other admin’s card to say it is ready', 15_000);

      // Reloaded while it waits for confirmation: it is there to review, until it expires.
      f = await load(p, agencyAdmin().id);
      await f.getByTestId('operation-pending').waitFor();
      expect(await f.getByTestId('operation-pending').innerText()).toBe('Push contacts · Preview ready — review and confirm');
      expect(await f.getByTestId('operation-live').getByRole('progressbar').count()).toBe(0);
      expect(await f.getByTestId('operation-pending-open').getAttribute('class')).toMatch(/\bprimary\b/);
      await f.getByTestId('operations').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await p.screenshot({ path: `${OUT}/reattach-4-ready-after-reload.png` });

      // Cancel preview discards it: nothing is open, in either panel; focus goes to Push contacts.
      await f.getByTestId('operation-pending-cancel').click();
      await f.getByTestId('operation-pending').waitFor({ state: 'detached' });
      expect(await f.getByTestId('operations-start-note').count()).toBe(0);
      await until(() => f.getByTestId('operation-start-push').evaluate((el) => el === document.activeElement), 'focus on Push contacts');
      expect(activeOperation(db(), location().id)).toBeUndefined();
      await g.getByTestId('operation-pending').waitFor({ state: 'detached', timeout: 15_000 });
      await f.getByTestId('operations').evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await p.screenshot({ path: `${OUT}/reattach-5-cancelled.png` });
    } finally {
      await control(sandbox().highlevelUrl, 'DELETE', '/faults');
      await p.close();
      await other.close();
    }
  }, 120_000);

  it('closes a preview’s dialog when another admin confirms it, and follows the run', async () => {
    const p = await world.browser.newPage({ viewport: { width: 1280, height: 1000 }, timezoneId: 'America/Los_Angeles' });
    const other = await world.browser.newPage({ viewport: { width: 1280, height: 1000 }, timezoneId: 'America/Los_Angeles' });
    try {
      const f = await load(p, agencyAdmin().id);
      const d = f.getByTestId('operation-dialog');
      await f.getByTestId('operation-start-push').click();
      await until(() => d.getByTestId('operation-confirm').isEnabled(), 'the preview', 20_000);
      // The other admin opens it from the card and confirms it.
      const g = await load(other, secondAdmin().id);
      await g.getByTestId('operation-pending-open').click();
      const confirm = g.getByTestId('operation-dialog').getByTestId('operation-confirm');
      await until(() => confirm.isEnabled(), 'the preview in the other admin’s dialog', 20_000);
      await confirm.click();
      // The first dialog does not say the preview was closed: it goes, and the card follows the run to its end.
      await d.getByTestId('operation-confirm').waitFor({ state: 'detached', timeout: 10_000 });
      expect(await d.getByTestId('operation-ended').count()).toBe(0);
      const result = f.getByTestId('operation-result');
      await result.waitFor({ timeout: 30_000 });
      expect(await result.getAttribute('data-status')).toBe('completed');
      expect(await f.getByTestId('operation-pending').count()).toBe(0);
    } finally {
      await p.close();
      await other.close();
    }
  }, 90_000);
});

describe('a preview held up by HighLevel’s daily limit', () => {
  it('says so, with when it goes on in the viewer’s time zone, and does not animate as if reading', async () => {
    // QA: "HighLevel asked Tandem to slow down; the run goes on at 2026-12-08 00:00 UTC." to a viewer
    // in Pacific time, under a bar sliding on beside "Reading the first page…".
    const p = await world.browser.newPage({ viewport: { width: 1280, height: 900 }, timezoneId: 'America/Los_Angeles' });
    try {
      await p.goto(sandbox().sandboxUrl);
      await p.getByTestId('user-switcher').selectOption(agencyAdmin().id);
      const f = p.frameLocator('iframe[data-testid="app-frame"]');
      await f.getByTestId('operation-start-pull').waitFor();
      // Today's requests are spent already: HighLevel's next answer is a 429 saying none is left today.
      await control(sandbox().highlevelUrl, 'PATCH', '/config', { rateLimit: { dailyMax: 1 } });
      const d = f.getByTestId('operation-dialog');
      await f.getByTestId('operation-start-pull').click();
      const waiting = d.getByTestId('operation-progress-waiting');
      await waiting.waitFor({ timeout: 20_000 });
      const text = await waiting.innerText();
      expect(text).toMatch(
        /^HighLevel’s daily request limit for this sub-account is used up; the preview goes on at [A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2}\s?[AP]M P[SD]T \(in (\d+ hours?|\d+ minutes?|less than a minute)\)\.$/,
      );
      expect(text).not.toContain('UTC');
      expect(await d.getByTestId('operation-progress-done').innerText()).toBe('Waiting for HighLevel');
      // HighLevel's refusal was its answer to a request: not "0 HighLevel requests", as if nothing had happened.
      expect(await d.getByTestId('operation-progress-requests').innerText()).toBe('1 HighLevel request');
      expect(await d.getByText('Waiting for HighLevel before reading on.').count()).toBe(1);
      expect(await d.getByRole('progressbar').locator('span').evaluate((el) => getComputedStyle(el).animationName)).toBe('none');
      await p.screenshot({ path: `${OUT}/daily-limit-preview.png` });
      await p.keyboard.press('Escape');
      await d.getByTestId('operation-confirm').waitFor({ state: 'detached' });
    } finally {
      await control(sandbox().highlevelUrl, 'PATCH', '/config', { rateLimit: { dailyMax: 200_000 } });
      await p.close();
    }
  }, 60_000);
});
