// Buttons at work keep keyboard focus, in headless Chromium inside the emulated HighLevel. QA: after
// a save the Contacts tab's edit dialog refused (a conflict, or every identifying field emptied),
// focus was on the page's body: Save was disabled while saving, and a focused button that becomes
// disabled loses focus. A button whose own action runs is now busy instead (aria-disabled, still
// focusable, clicks and its form's submit ignored): focus stays on it through the wait and after a
// refusal, and a second press or Enter in a field sends nothing more. The same for the API keys'
// Create key and Revoke key, the Sync tab's Save changes, and the Retry and Check again of the
// sign-in screens (which stay on screen while they work).
import { describe, expect, it } from 'vitest';
import type { FrameLocator, Locator, Page, Request, Route } from 'playwright-core';
import { createContact, getContact, updateContact } from '../../db/contacts.ts';
import { getInstallation, setInstallationStatus, upsertInstallation } from '../../db/installations.ts';
import { getSyncSettings, updateSyncSettings } from '../../db/sync-settings.ts';
import { IDENTITY_REQUIRED } from '../../server/routes/panel-contacts.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { until } from '../helpers/emulator.ts';
import { sandboxInBrowser } from './browser.ts';

const world = sandboxInBrowser('busy', { sync: { start: false } });

const sandbox = () => world.tandem.sandbox!;
const demoLocation = () => sandbox().locations[0]!;
const agencyAdmin = () => sandbox().users.find((u) => u.type === 'agency' && u.role === 'admin')!;

async function openPanel(): Promise<{ page: Page; panel: FrameLocator }> {
  const page = await world.browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(sandbox().sandboxUrl);
  const panel = page.frameLocator('iframe[data-testid="app-frame"]');
  await panel.getByTestId('panel-signed-in').waitFor();
  return { page, panel };
}

/** Whether `locator` has keyboard focus. */
const focused = (locator: Locator) => locator.evaluate((el) => el === document.activeElement);

/** What has focus in the panel: its test id, else its id, else its tag ("BODY" for the page's body). */
const focusOf = (panel: FrameLocator) =>
  panel.locator('body').evaluate(() => {
    const el = document.activeElement;
    return el?.getAttribute('data-testid') ?? (el?.id || el?.tagName || 'none');
  });

/**
 * Holds the panel's requests that `matches` until `release` is called (then each goes on, or
 * fails as unreachable with `fail`), counting them.
 */
async function hold(page: Page, url: string, matches: (request: Request) => boolean) {
  const held: Route[] = [];
  let count = 0;
  await page.route(url, (route) => {
    if (!matches(route.request())) return route.continue();
    count += 1;
    held.push(route);
  });
  return {
    count: () => count,
    waitHeld: (n = 1) => until(() => held.length >= n, 'the request on its way'),
    async release(fail = false) {
      for (const route of held.splice(0)) await (fail ? route.abort() : route.continue());
      await page.unroute(url);
    },
  };
}

describe('a button at work keeps focus', () => {
  it('in the contact edit dialog: Save keeps focus while saving and after a conflict or an edit that empties every identifying field, and a second Enter sends nothing', async () => {
    const db = world.tandem.database.db;
    const location = demoLocation().id;
    const id = createContact(db, { locationId: location, fields: { ...emptyContact(), firstName: 'Faye', lastName: 'Focuskeeper', email: 'faye.focus@example.com' }, now: Date.now(), origin: 'remote' }).id;
    const { page, panel } = await openPanel();
    await panel.getByRole('tab', { name: 'Contacts' }).click();
    await panel.getByTestId('contacts-search').fill('focuskeeper');
    const row = panel.locator(`[data-testid="contact-row"][data-contact-id="${id}"]`);
    await row.getByTestId('contact-edit').click();
    const dialog = panel.getByTestId('contact-edit-dialog');
    const save = dialog.getByTestId('contact-save');
    const error = dialog.getByTestId('contact-edit-error');
    await dialog.getByTestId('edit-companyName').fill('Typed Inc');
    // A sync from HighLevel changes the contact meanwhile: the save will be refused.
    updateContact(db, { locationId: location, id, patch: { firstName: 'Fay' }, now: Date.now(), origin: 'remote' });

    // Save from the keyboard, the answer held: Save is busy, and keeps focus.
    const patches = await hold(page, '**/api/panel/contacts/*', (r) => r.method() === 'PATCH');
    await save.focus();
    await page.keyboard.press('Enter');
    await patches.waitHeld();
    expect(await save.getAttribute('aria-disabled')).toBe('true');
    // Not the `disabled` attribute, which would drop focus (Playwright counts aria-disabled as disabled).
    expect(await save.evaluate((el) => (el as HTMLButtonElement).disabled)).toBe(false);
    expect(await save.innerText()).toBe('Saving…');
    expect(await focused(save)).toBe(true);
    await page.screenshot({ path: 'test-results/busy-contact-saving.png' });
    // Pressed again meanwhile: nothing more is sent.
    await page.keyboard.press('Enter');
    await patches.release();
    await error.getByText('This contact changed after you opened it, so nothing was saved.').waitFor();
    expect(patches.count()).toBe(1);
    // QA: focus was on the page's body here.
    expect(await focusOf(panel)).toBe('contact-save');
    expect(await save.getAttribute('aria-disabled')).toBeNull();
    await page.screenshot({ path: 'test-results/busy-contact-conflict-focus.png' });

    // Load latest, then every identifying field emptied and Save clicked: refused, focus on Save.
    await dialog.getByTestId('contact-load-latest').click();
    await dialog.getByTestId('contact-edit-latest').waitFor();
    for (const field of ['firstName', 'lastName', 'email', 'phone', 'companyName']) await dialog.getByTestId(`edit-${field}`).fill('');
    await save.click();
    await error.getByText(IDENTITY_REQUIRED).waitFor();
    expect(await focusOf(panel)).toBe('contact-save');

    // Enter in a field twice while the save is on its way: one save, focus still in the field.
    const again = await hold(page, '**/api/panel/contacts/*', (r) => r.method() === 'PATCH');
    const tags = dialog.getByTestId('edit-tags');
    await tags.fill('kept');
    await tags.press('Enter');
    await again.waitHeld();
    await tags.press('Enter');
    await again.release();
    await until(async () => (await error.innerText()) === IDENTITY_REQUIRED, 'the refusal said again');
    expect(again.count()).toBe(1);
    expect(await focusOf(panel)).toBe('edit-tags');
    expect(getContact(db, location, id)!.fields).toMatchObject({ firstName: 'Fay', companyName: null });
    await page.keyboard.press('Escape');
    await page.close();
  });

  it('on Create key and Revoke key: busy while sent, a second press or Enter in the name sending nothing', async () => {
    const { page, panel } = await openPanel();
    await panel.getByRole('tab', { name: 'API keys' }).click();
    await panel.getByTestId('api-keys-create').click();
    const submit = panel.getByTestId('api-key-submit');
    await panel.getByTestId('api-key-name').fill('Twice pressed');
    const posts = await hold(page, '**/api/panel/api-keys', (r) => r.method() === 'POST');
    await submit.click();
    await posts.waitHeld();
    expect(await submit.getAttribute('aria-disabled')).toBe('true');
    expect(await focused(submit)).toBe(true);
    await panel.getByTestId('api-key-name').press('Enter');
    // A click on the busy button (forced: Playwright waits for an aria-disabled one to be enabled).
    await submit.click({ force: true });
    await posts.release();
    await panel.getByTestId('api-key-secret').waitFor();
    expect(posts.count()).toBe(1);
    await panel.getByTestId('api-key-done').click();

    // Revoke key, Tandem out of reach: busy while it is sent, then still focused beside the reason.
    await panel.getByTestId('api-key-row').filter({ hasText: 'Twice pressed' }).getByTestId('api-key-revoke').click();
    const confirm = panel.getByTestId('api-key-revoke-confirm');
    const deletes = await hold(page, '**/api/panel/api-keys/*', (r) => r.method() === 'DELETE');
    await confirm.focus();
    await page.keyboard.press('Enter');
    await deletes.waitHeld();
    expect(await confirm.getAttribute('aria-disabled')).toBe('true');
    expect(await confirm.innerText()).toBe('Revoking…');
    expect(await focused(confirm)).toBe(true);
    await page.keyboard.press('Enter');
    await deletes.release(true);
    await panel.getByTestId('api-key-revoke-dialog').getByRole('alert').waitFor();
    expect(deletes.count()).toBe(1);
    expect(await focusOf(panel)).toBe('api-key-revoke-confirm');
    await page.keyboard.press('Escape');
    await page.close();
  });

  it('on Save changes in the Sync tab: busy while saving, and still focused when the save fails', async () => {
    const db = world.tandem.database.db;
    const location = demoLocation().id;
    const before = getSyncSettings(db, location);
    const { page, panel } = await openPanel();
    await page.getByTestId('user-switcher').selectOption(agencyAdmin().id);
    const save = panel.getByTestId('sync-save');
    await save.waitFor();
    const other = before.creationDirection === 'bidirectional' ? /^Inbound/ : /^Bi-directional/;
    await panel.getByTestId('setting-creation').getByRole('radio', { name: other }).check();
    try {
      const puts = await hold(page, '**/api/panel/sync/settings', (r) => r.method() === 'PUT');
      await save.focus();
      await page.keyboard.press('Enter');
      await puts.waitHeld();
      expect(await save.getAttribute('aria-disabled')).toBe('true');
      expect(await save.innerText()).toBe('Saving…');
      expect(await focused(save)).toBe(true);
      await page.keyboard.press('Enter');
      // Tandem out of reach: not saved, said so, and focus still on Save to try again.
      await puts.release(true);
      await panel.getByTestId('sync-save-status').getByText('Settings not saved').waitFor();
      expect(puts.count()).toBe(1);
      expect(await focusOf(panel)).toBe('sync-save');
      expect(getSyncSettings(db, location).creationDirection).toBe(before.creationDirection);
      await page.screenshot({ path: 'test-results/busy-sync-save-failed.png' });
    } finally {
      updateSyncSettings(db, { locationId: location, patch: { creationDirection: before.creationDirection }, user: { id: 'e2e-test', name: 'E2E test' }, now: Date.now() });
      await page.close();
    }
  });

  it('on Retry when the sign-in failed, and Check again when Tandem is not installed: the screen stays, the button keeps focus', async () => {
    const page = await world.browser.newPage({ viewport: { width: 1280, height: 800 } });
    const refuse = (route: Route) => route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal', message: 'Tandem had a problem on its side.' } }) });
    const db = world.tandem.database.db;
    const installation = getInstallation(db, demoLocation().id)!;
    try {
      await page.route('**/api/panel/session', refuse);
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      const failed = panel.getByTestId('panel-sign-in-failed');
      await failed.waitFor();
      const retry = failed.getByRole('button', { name: /^Retr/ });
      await retry.focus();
      await page.keyboard.press('Enter');
      // Refused again: the same screen, focus on Retry, the reason said again.
      await until(async () => (await retry.innerText()) === 'Retry', 'the retry answered');
      expect(await failed.isVisible()).toBe(true);
      expect(await focused(retry)).toBe(true);

      // Not installed: Check again keeps the screen and focus while it checks, and after.
      await page.unroute('**/api/panel/session');
      setInstallationStatus(db, demoLocation().id, 'uninstalled', Date.now());
      const sessions = await hold(page, '**/api/panel/session', () => true);
      await page.keyboard.press('Enter');
      await sessions.waitHeld();
      expect(await retry.getAttribute('aria-disabled')).toBe('true');
      expect(await focused(retry)).toBe(true);
      await sessions.release();
      const screen = panel.getByTestId('panel-not-installed');
      await screen.waitFor();
      const check = screen.getByRole('button', { name: /^Check/ });
      await check.focus();
      const checks = await hold(page, '**/api/panel/session', () => true);
      await page.keyboard.press('Enter');
      await checks.waitHeld();
      expect(await check.innerText()).toBe('Checking…');
      expect(await check.getAttribute('aria-disabled')).toBe('true');
      expect(await focused(check)).toBe(true);
      await page.screenshot({ path: 'test-results/busy-check-again.png' });
      await checks.release();
      await until(async () => (await check.innerText()) === 'Check again', 'the check answered');
      expect(await focused(check)).toBe(true);

      // Installed again: Check again signs in.
      upsertInstallation(db, { locationId: installation.locationId, companyId: installation.companyId, now: Date.now() });
      await page.keyboard.press('Enter');
      await panel.getByTestId('panel-signed-in').waitFor();
    } finally {
      upsertInstallation(db, { locationId: installation.locationId, companyId: installation.companyId, now: Date.now() });
      await page.close();
    }
  });
});
