// Issue 4's sandbox acceptance in a real browser: a contact edited in the emulated HighLevel shows
// in the panel's Contacts tab within seconds; with Contact update set to Bi-directional, an edit
// made in the panel shows on the emulated HighLevel contact page.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { until } from '../helpers/emulator.ts';
import { sandboxInBrowser } from './browser.ts';

const world = sandboxInBrowser('two-way');


/** The value of a field on the emulated HighLevel contact page, freshly loaded. */
async function highLevelField(page: Page, url: string, field: string): Promise<string> {
  await page.goto(url);
  return page.getByTestId(`contact-${field}`).inputValue();
}

describe('two-way sync in the sandbox', () => {
  it('HighLevel → Tandem within seconds, then Tandem → HighLevel once Contact update is Bi-directional', async () => {
    const sandbox = world.tandem.sandbox!;
    const location = sandbox.locations[0]!;
    const contactsUrl = `${sandbox.highlevelUrl}/v2/location/${location.id}/contacts`;

    // 1. Edit a seeded contact's first name in the emulated HighLevel.
    const hl = await world.browser.newPage({ viewport: { width: 1280, height: 800 } });
    await hl.goto(contactsUrl);
    const firstLink = hl.getByTestId('contact-link').first();
    await firstLink.waitFor();
    await firstLink.click();
    await hl.getByTestId('contact-form').waitFor();
    const contactUrl = hl.url().split('?')[0]!;
    const lastName = await hl.getByTestId('contact-lastName').inputValue();
    const newFirst = `Marigold${Date.now() % 100000}`;
    await hl.getByTestId('contact-firstName').fill(newFirst);
    await hl.getByTestId('contact-save').click();
    await hl.getByTestId('saved-notice').waitFor();
    const savedAt = Date.now();
    expect(await hl.getByTestId('contact-firstName').inputValue()).toBe(newFirst);
    await hl.screenshot({ path: 'test-results/two-way-1-highlevel-edit.png' });

    // 2. The panel's Contacts tab shows it within seconds (the tab refreshes on its own).
    const page = await world.browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(world.tandem.sandboxUrl!);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByTestId('panel-signed-in').waitFor();
    await panel.getByRole('tab', { name: 'Contacts' }).click();
    const row = panel.getByTestId('contact-row').filter({ hasText: newFirst });
    await row.waitFor({ timeout: 10_000 }).catch(async (err: unknown) => {
      await page.screenshot({ path: 'test-results/two-way-failed.png' });
      throw err;
    });
    const seenAfterMs = Date.now() - savedAt;
    expect(seenAfterMs).toBeLessThan(10_000);
    expect(await row.getByTestId('contact-name').innerText()).toContain(`${newFirst} ${lastName}`.trim());
    await row.getByTestId('contact-linked').waitFor();
    await page.screenshot({ path: 'test-results/two-way-2-panel-sees-highlevel-edit.png' });

    // 3. Contact update → Bi-directional on the Sync tab.
    await panel.getByRole('tab', { name: 'Sync' }).click();
    await panel.getByTestId('setting-update').getByRole('radio', { name: /^Bi-directional/ }).check();
    await panel.getByTestId('sync-save').click();
    await until(async () => /saved/i.test(await panel.getByTestId('sync-save-status').innerText()), 'settings saved', 5000);

    // 4. Edit the last name in the panel; the emulated HighLevel contact page shows it.
    await panel.getByRole('tab', { name: 'Contacts' }).click();
    const editRow = panel.getByTestId('contact-row').filter({ hasText: newFirst });
    await editRow.getByTestId('contact-edit').click();
    const dialog = panel.getByTestId('contact-edit-dialog');
    await dialog.waitFor();
    const newLast = `Quill${Date.now() % 100000}`;
    await dialog.getByTestId('edit-lastName').fill(newLast);
    await page.screenshot({ path: 'test-results/two-way-3-panel-edit.png' });
    await dialog.getByTestId('contact-save').click();
    await panel.getByTestId('contacts-notice').waitFor();
    await expect.poll(() => editRow.getByTestId('contact-name').innerText()).toContain(newLast);
    const editedAt = Date.now();
    await page.screenshot({ path: 'test-results/two-way-4-panel-saved.png' });

    await until(async () => (await highLevelField(hl, contactUrl, 'lastName')) === newLast, 'the panel edit in HighLevel', 10_000);
    expect(Date.now() - editedAt).toBeLessThan(10_000);
    expect(await hl.getByTestId('contact-firstName').inputValue()).toBe(newFirst);
    await hl.screenshot({ path: 'test-results/two-way-5-highlevel-sees-panel-edit.png' });
  }, 60_000);
});
