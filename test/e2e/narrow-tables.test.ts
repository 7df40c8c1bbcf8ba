// The panel's two small tables at 375, 600 and 1280 px of frame, in headless Chromium inside the
// emulated HighLevel. QA at 375 px: the one-time operation preview's counts cut "Skipped" to "Sk"
// (the table scrolled sideways inside the dialog, with nothing saying so), and on the API keys tab
// the Created and Last used columns slid under the pinned Revoke column. Now, where the columns do
// not fit, each row becomes a block with a label on every value (to a screen reader still the same
// table): nothing scrolls sideways, nothing is cut or covered, at any of the three widths.
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import { archiveContact, createContact, listRecentContacts, updateContact } from '../../db/contacts.ts';
import { getLinkByContact } from '../../db/links.ts';
import { getSyncSettings, updateSyncSettings } from '../../db/sync-settings.ts';
import { emptyContact } from '../../server/sync/contact-model.ts';
import { until } from '../helpers/emulator.ts';
import { sandboxInBrowser } from './browser.ts';

const OUT = 'test-results/narrow-tables';
const world = sandboxInBrowser('narrow-tables');

const sandbox = () => world.tandem.sandbox!;
const demoLocation = () => sandbox().locations[0]!;
const agencyAdmin = () => sandbox().users.find((u) => u.type === 'agency' && u.role === 'admin')!;

/** The panel, as the agency admin, with its iframe exactly `frameWidth` px wide. */
async function openPanel(frameWidth: number): Promise<{ page: Page; panel: FrameLocator }> {
  const page = await world.browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(sandbox().sandboxUrl);
  await page.getByTestId('user-switcher').selectOption(agencyAdmin().id);
  const panel = page.frameLocator('iframe[data-testid="app-frame"]');
  await panel.getByTestId('panel-signed-in').waitFor();
  const frame = await until(() => page.mainFrame().childFrames().find((f) => f.url().includes('/panel/')), 'the panel frame');
  const client = () => frame.evaluate(() => document.documentElement.clientWidth);
  // The emulator's own sidebar takes the rest of the page: widen or narrow the page by the difference.
  await page.setViewportSize({ width: 1400 + frameWidth - (await client()), height: 900 });
  await until(async () => (await client()) === frameWidth, `a ${frameWidth} px frame`);
  return { page, panel };
}

/**
 * Whether every cell of `table` is whole on screen inside `box`: the box does not scroll sideways
 * and no cell is cut by it, wider than its own box or covered by another cell. Returns what is wrong.
 */
function cellsInView(box: Locator): Promise<string[]> {
  return box.evaluate((wrap) => {
    const problems: string[] = [];
    if (wrap.scrollWidth > wrap.clientWidth + 1) problems.push(`the box scrolls sideways (${wrap.scrollWidth} > ${wrap.clientWidth})`);
    const edge = wrap.getBoundingClientRect();
    const cells = [...wrap.querySelectorAll<HTMLElement>('tbody th, tbody td')].filter((c) => c.getClientRects().length > 0);
    for (const cell of cells) {
      const r = cell.getBoundingClientRect();
      const what = `${cell.dataset.testid ?? cell.dataset.label ?? cell.tagName} "${cell.innerText.trim().slice(0, 20)}"`;
      if (r.left < edge.left - 1 || r.right > edge.right + 1) problems.push(`${what} is outside the box`);
      if (cell.scrollWidth > cell.clientWidth + 1) problems.push(`${what} is cut`);
      // Covered: the point in the middle of its content belongs to another cell.
      const hit = document.elementFromPoint(r.left + Math.min(r.width / 2, 20), r.top + Math.min(r.height / 2, 8));
      if (hit && !cell.contains(hit) && !hit.contains(cell)) problems.push(`${what} is covered by ${hit.tagName}.${hit.className}`);
    }
    return problems;
  });
}

/** Whether a table's column headers are only visually hidden (its rows stacked): a 1 px box. */
const headersHidden = (table: Locator) => table.locator('thead').evaluate((head) => head.getBoundingClientRect().width <= 1);

/** A cell's visible label (its header's words, drawn before it where the rows stack), or '' where there is none. */
const labelOf = (cell: Locator) => cell.evaluate((el) => getComputedStyle(el, '::before').content.replace(/^"|"\s*\/\s*""$|"$/g, ''));

describe('narrow frames', () => {
  it('shows the API keys whole at 375, 600 and 1280 px: stacked with labels where the columns do not fit', async () => {
    mkdirSync(OUT, { recursive: true });
    for (const frameWidth of [375, 600, 1280]) {
      const { page, panel } = await openPanel(frameWidth);
      await panel.getByRole('tab', { name: 'API keys' }).click();
      const wrap = panel.getByTestId('api-keys-table-wrap');
      await panel.getByTestId('api-key-row').first().waitFor();
      await page.screenshot({ path: `${OUT}/api-keys-${frameWidth}.png`, fullPage: true });
      expect(await cellsInView(wrap), `${frameWidth} px`).toEqual([]);
      const row = panel.getByTestId('api-key-row').first();
      const stacked = await headersHidden(panel.getByTestId('api-keys-list'));
      expect(stacked, `${frameWidth} px stacked`).toBe(frameWidth < 700);
      if (stacked) {
        // Each value says what it is; Revoke beside the name, on its first line.
        expect(await labelOf(row.getByTestId('api-key-created'))).toBe('Created');
        expect(await labelOf(row.getByTestId('api-key-last-used'))).toBe('Last used');
        expect(await labelOf(row.getByTestId('api-key-prefix'))).toBe('Key');
        const name = (await row.getByTestId('api-key-name-cell').boundingBox())!;
        const revoke = (await row.getByTestId('api-key-revoke').boundingBox())!;
        expect(revoke.x).toBeGreaterThanOrEqual(name.x + name.width);
        expect(revoke.y).toBeLessThan(name.y + name.height);
      } else {
        expect(await labelOf(row.getByTestId('api-key-created'))).toBe('none');
      }
      // The headers are there for a screen reader in every layout.
      expect(await panel.getByTestId('api-keys-list').getByRole('columnheader').allInnerTexts()).toEqual(['Name', 'Key', 'Created', 'Last used', 'Actions']);
      await page.close();
    }
  }, 60_000);

  it('shows every count of a push preview, Skipped included, at 375, 600 and 1280 px', async () => {
    const db = world.tandem.database.db;
    const location = demoLocation().id;
    const admin = { id: 'e2e-test', name: 'E2E test' };
    const before = getSyncSettings(db, location);
    // A Tandem contact with the email of a linked one HighLevel already holds, Creation Inbound so
    // that the loop leaves it to the push: the preview skips it (a Skipped column).
    const held = await until(() => listRecentContacts(db, location, { limit: 50 }).contacts.find((c) => getLinkByContact(db, location, c.id)), 'the demo contacts imported and linked', 30_000);
    const email = `narrow.twice${Date.now() % 100000}@tandem.example`;
    updateContact(db, { locationId: location, id: held.id, patch: { email }, now: Date.now(), origin: 'local' });
    updateSyncSettings(db, { locationId: location, patch: { creationDirection: 'inbound' }, user: admin, now: Date.now() });
    const twin = createContact(db, { locationId: location, fields: { ...emptyContact(), firstName: 'Narrow', lastName: 'Twin', email }, now: Date.now(), origin: 'local' });
    try {
      for (const frameWidth of [375, 600, 1280]) {
        const { page, panel } = await openPanel(frameWidth);
        await panel.getByTestId('operation-start-push').click();
        const dialog = panel.getByTestId('operation-dialog');
        const counts = dialog.getByTestId('operation-preview-counts');
        await counts.waitFor({ timeout: 20_000 });
        const headers = await counts.locator('thead th').allTextContents();
        expect(headers).toContain('Skipped');
        await dialog.getByTestId('operation-preview').evaluate((el) => el.scrollIntoView({ block: 'start' }));
        await page.screenshot({ path: `${OUT}/preview-${frameWidth}.png` });
        expect(await cellsInView(dialog.getByTestId('operation-preview-counts-scroll')), `${frameWidth} px`).toEqual([]);
        const stacked = await headersHidden(counts);
        expect(stacked, `${frameWidth} px stacked`).toBe(frameWidth < 500);
        // Every count says what it counts: its header, or where the rows stack its own label.
        const cells = counts.locator('tbody tr').first().locator('td');
        const labels = [];
        for (const cell of await cells.all()) labels.push(stacked ? await labelOf(cell) : await cell.getAttribute('data-label'));
        expect(labels).toEqual(headers.slice(1));
        await dialog.getByTestId('operation-cancel').click();
        await dialog.getByTestId('operation-preview').waitFor({ state: 'detached' });
        await page.close();
      }
    } finally {
      archiveContact(db, { locationId: location, id: twin.id, now: Date.now(), origin: 'local' });
      updateSyncSettings(db, { locationId: location, patch: { creationDirection: before.creationDirection }, user: admin, now: Date.now() });
    }
  }, 120_000);
});
