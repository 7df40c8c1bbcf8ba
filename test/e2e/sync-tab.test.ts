// The Sync tab in headless Chromium inside the emulated HighLevel: the defaults show, an admin
// switches Contact update to Bi-directional (Save enables only then), saves, sees the confirmation,
// and after a reload sees the saved value and the change in the history; a choice made while a save
// is in progress is kept for the next save; an unsaved choice survives a visit to another tab (the
// Sync tab is marked meanwhile); a save sends only what the admin changed, so another admin's change
// of the other setting stays, and one made to the same setting after the draft began is shown with
// who and when and saved over only when asked; a plain user sees the same settings disabled; pause
// and resume (the header shows the pause too), and the status strip's counts and latest problem (its
// times in the viewer's zone). Keyboard focus: a ring that stands out, on a selected card too, and
// Discard leaves it on the group it reset, not on the page's body. A switch to Bi-directional that
// releases a held edit first shows what goes out (the count, the contact and the field's change):
// Cancel sends and saves nothing, Save and send saves and the edit reaches HighLevel; a check that
// fails says so and saves nothing until Retry reads it. What goes out is what the dialog shows: an
// edit held through the REST API while it is open is shown (the save confirming the older preview
// is refused) before both go, the dialog reads it again at each refresh without moving focus, and
// says so when another admin saved the same settings meanwhile. A held contact HighLevel will refuse
// (its email is on the HighLevel contact of another Tandem contact) is listed apart, naming that
// contact, and not counted as created. When the settings and the one-time operations both fail to
// load for the same reason, the tab says so once, with one Retry for both.
import { existsSync, mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FrameLocator, Page, Route } from 'playwright-core';
import { archiveContact, createContact, listRecentContacts, updateContact } from '../../db/contacts.ts';
import { customFieldList } from '../../db/custom-fields.ts';
import { getLinkByContact } from '../../db/links.ts';
import { enqueueOutbox, failOutbox, getOutbox } from '../../db/outbox.ts';
import { updateSyncState } from '../../db/sync-state.ts';
import { getSyncSettings, updateSyncSettings } from '../../db/sync-settings.ts';
import { contactLabel, emptyContact } from '../../server/sync/contact-model.ts';
import { call, control, until } from '../helpers/emulator.ts';
import { sandboxInBrowser } from './browser.ts';

const world = sandboxInBrowser('sync-tab');


const sandbox = () => world.tandem.sandbox!;
const demoLocation = () => sandbox().locations[0]!;
const agencyAdmin = () => sandbox().users.find((u) => u.type === 'agency' && u.role === 'admin')!;
const plainUser = () =>
  sandbox().users.find((u) => u.type === 'account' && u.role === 'user' && !u.deactivated && u.locationIds.includes(demoLocation().id))!;

async function openPanel(timezoneId?: string): Promise<{ page: Page; panel: FrameLocator; console: string[] }> {
  const page = await world.browser.newPage({ viewport: { width: 1280, height: 1500 }, ...(timezoneId ? { timezoneId } : {}) });
  const console: string[] = [];
  page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
  await page.goto(sandbox().sandboxUrl);
  const panel = page.frameLocator('iframe[data-testid="app-frame"]');
  await panel.getByTestId('sync-settings').waitFor();
  return { page, panel, console };
}

/** The panel as the agency admin, ready to save, with the location's settings as they were. */
async function openAsAdmin() {
  const opened = await openPanel();
  await opened.page.getByTestId('user-switcher').selectOption(agencyAdmin().id);
  await opened.panel.getByTestId('sync-save').waitFor();
  const db = world.tandem.database.db;
  const location = demoLocation().id;
  return { ...opened, db, location, before: getSyncSettings(db, location) };
}

/** Another admin of the location, saving from another browser (written straight to the settings). */
const otherAdmin = { id: 'e2e-other-admin', name: 'Olga Other' };
const otherValue = (d: string) => (d === 'bidirectional' ? ('inbound' as const) : ('bidirectional' as const));
/** The radio's label of the value that is not `d`. */
const otherLabel = (d: string) => (d === 'bidirectional' ? ('Inbound' as const) : ('Bi-directional' as const));
/** The settings as the next tests expect them. */
const restore = (s: { creationDirection: 'bidirectional' | 'inbound'; updateDirection: 'bidirectional' | 'inbound' }) =>
  updateSyncSettings(world.tandem.database.db, {
    locationId: demoLocation().id,
    patch: { creationDirection: s.creationDirection, updateDirection: s.updateDirection },
    user: { id: 'e2e-test', name: 'E2E test' },
    now: Date.now(),
  });

const radio = (panel: FrameLocator, setting: 'creation' | 'update', label: 'Bi-directional' | 'Inbound') =>
  panel.getByTestId(`setting-${setting}`).getByRole('radio', { name: new RegExp(`^${label}`) });

/** WCAG's contrast ratio of two `rgb(r, g, b)` colours. */
function contrast(a: string, b: string): number {
  const luminance = (rgb: string) => {
    const [r, g, bl] = rgb.match(/\d+/g)!.slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/**
 * The focus ring round a radio's card, and the colours it must stand out from: the ring's outer
 * colour, its inner gap, the card's background and border, and the settings card's background.
 */
async function ringAround(panel: FrameLocator, setting: 'creation' | 'update', label: 'Bi-directional' | 'Inbound') {
  return radio(panel, setting, label).evaluate((input) => {
    const card = input.closest('label')!;
    const shadow = getComputedStyle(card).boxShadow;
    const colours = shadow.match(/rgba?\([^)]*\)/g) ?? [];
    return {
      gap: colours[0] ?? '',
      ring: colours[1] ?? '',
      cardBackground: getComputedStyle(card).backgroundColor,
      cardBorder: getComputedStyle(card).borderTopColor,
      around: getComputedStyle(card.closest('[data-testid="sync-settings"]')!).backgroundColor,
    };
  });
}

describe('the Sync tab', () => {
  it('shows the defaults; an admin changes Contact update to Bi-directional, saves, and the change survives a reload', async () => {
    const { page, panel, console } = await openPanel();
    expect(await panel.getByRole('tab', { name: 'Sync' }).getAttribute('aria-selected')).toBe('true');
    expect(await radio(panel, 'creation', 'Bi-directional').isChecked()).toBe(true);
    expect(await radio(panel, 'update', 'Inbound').isChecked()).toBe(true);
    expect(await radio(panel, 'update', 'Bi-directional').isChecked()).toBe(false);
    // Each radio is named by its label alone: the Inbound explanations mention Bi-directional,
    // and asking for "Bi-directional" by name must not find them too.
    for (const setting of ['creation', 'update']) {
      const group = panel.getByTestId(`setting-${setting}`);
      expect(await group.getByRole('radio', { name: 'Bi-directional' }).count()).toBe(1);
      expect(await group.getByRole('radio', { name: 'Bi-directional', exact: true }).count()).toBe(1);
      expect(await group.getByRole('radio', { name: 'Inbound', exact: true }).count()).toBe(1);
    }
    const save = panel.getByTestId('sync-save');
    expect(await save.isDisabled()).toBe(true);
    expect(await panel.getByTestId('sync-default-note').innerText()).toContain('never overwrites data already in HighLevel');
    expect(await panel.getByTestId('sync-state').innerText()).toContain('Sync on');
    expect(await panel.getByTestId('sync-history').innerText()).toContain('No changes yet');

    // Choosing a value enables Save; choosing the saved one again disables it.
    await radio(panel, 'update', 'Bi-directional').check();
    expect(await save.isEnabled()).toBe(true);
    await radio(panel, 'update', 'Inbound').check();
    expect(await save.isDisabled()).toBe(true);
    // Keyboard: arrows move within the radio group.
    await radio(panel, 'update', 'Inbound').focus();
    await page.keyboard.press('ArrowRight');
    expect(await radio(panel, 'update', 'Bi-directional').isChecked()).toBe(true);
    expect(await save.isEnabled()).toBe(true);
    // QA: the focus ring was 1.7:1 on white and all but invisible on the selected (blue) card. Its
    // ring stands out 3:1 or more from what is round it, and a gap keeps it off the card's blue border.
    const ring = await ringAround(panel, 'update', 'Bi-directional');
    expect(ring.ring).toBe('rgb(0, 64, 193)');
    expect(ring.gap).toBe('rgb(255, 255, 255)');
    for (const next of [ring.gap, ring.cardBackground, ring.around]) expect(contrast(ring.ring, next)).toBeGreaterThanOrEqual(3);
    expect(contrast(ring.gap, ring.cardBorder)).toBeGreaterThanOrEqual(3);
    await panel.getByTestId('setting-update').screenshot({ path: 'test-results/sync-tab-focus-selected.png' });

    // Saved from the keyboard: Tab reaches Save, Enter saves, focus lands on the confirmation.
    await page.keyboard.press('Tab');
    await expect.poll(() => save.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await panel.getByTestId('sync-save-status').getByText('Settings saved').waitFor();
    expect(await panel.getByTestId('sync-save-status').evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await panel.getByTestId('sync-save-status').getAttribute('aria-live')).toBe('polite');
    expect(await save.isDisabled()).toBe(true);
    expect(getSyncSettings(world.tandem.database.db, demoLocation().id)).toMatchObject({ creationDirection: 'bidirectional', updateDirection: 'bidirectional' });
    await panel.getByTestId('sync-history-entry').first().waitFor();

    await page.reload();
    await panel.getByTestId('sync-settings').waitFor();
    expect(await radio(panel, 'update', 'Bi-directional').isChecked()).toBe(true);
    expect(await radio(panel, 'creation', 'Bi-directional').isChecked()).toBe(true);
    const entry = await panel.getByTestId('sync-history-entry').first().innerText();
    expect(entry).toContain(agencyAdmin().name);
    expect(entry).toContain('changed Contact update from Inbound to Bi-directional');
    // The time carries its zone abbreviation (the sandbox browser runs in UTC or the host's zone).
    expect(entry).toMatch(/\d{1,2}:\d{2}\s?[AP]M [A-Z]{2,5}|GMT/);
    expect(console.filter((m) => /Content Security Policy|Refused to/i.test(m))).toEqual([]);
    await page.screenshot({ path: 'test-results/sync-tab.png', fullPage: true });
    await page.close();
  });

  it('keeps a choice made while Save is in progress as the next change to save', async () => {
    const { page, panel, db, before } = await openAsAdmin();
    const other = (d: string) => (d === 'bidirectional' ? 'Inbound' : 'Bi-directional');
    const value = (label: string) => (label === 'Inbound' ? 'inbound' : 'bidirectional');
    const firstChoice = other(before.creationDirection);
    const secondChoice = other(before.updateDirection);
    // The save is held on its way to Tandem until the test lets it through.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let saving = false;
    await page.route('**/api/panel/sync/settings', async (route) => {
      if (route.request().method() !== 'PUT') return route.continue();
      saving = true;
      await held;
      await route.continue();
    });
    await radio(panel, 'creation', firstChoice).check();
    const save = panel.getByTestId('sync-save');
    await save.click();
    await until(() => saving, 'the save to be on its way');
    expect(await save.innerText()).toBe('Saving…');
    // A second choice while the first saves.
    await radio(panel, 'update', secondChoice).check();
    release();
    const status = panel.getByTestId('sync-save-status');
    await status.getByText(/Settings saved/).waitFor();
    expect(getSyncSettings(db, demoLocation().id)).toMatchObject({ creationDirection: value(firstChoice), updateDirection: before.updateDirection });
    // The newer choice is still on screen, and Save takes it.
    expect(await radio(panel, 'creation', firstChoice).isChecked()).toBe(true);
    expect(await radio(panel, 'update', secondChoice).isChecked()).toBe(true);
    expect(await save.isEnabled()).toBe(true);
    expect(await status.innerText()).toBe('✓Settings saved, except the change you made while saving: save again to apply it.');
    await page.unroute('**/api/panel/sync/settings');
    await save.click();
    await status.getByText('Settings saved. Tandem syncs with them from now on.').waitFor();
    expect(getSyncSettings(db, demoLocation().id)).toMatchObject({ creationDirection: value(firstChoice), updateDirection: value(secondChoice) });
    expect(await save.isDisabled()).toBe(true);
    // The settings as the next tests expect them.
    const { creationDirection, updateDirection } = before;
    updateSyncSettings(db, { locationId: demoLocation().id, patch: { creationDirection, updateDirection }, user: { id: 'e2e-test', name: 'E2E test' }, now: Date.now() });
    await page.close();
  });

  it('keeps an unsaved choice across a visit to another tab, and marks the Sync tab meanwhile', async () => {
    // QA: Sync → Contacts → Sync silently threw the draft away.
    const { page, panel, before } = await openAsAdmin();
    const choice = otherLabel(before.updateDirection);
    await radio(panel, 'update', choice).check();
    await panel.getByRole('tab', { name: /^Sync\W*unsaved changes$/ }).waitFor();
    await panel.getByRole('tab', { name: 'Contacts' }).click();
    await panel.getByTestId('contacts').waitFor();
    // The mark stays in view (and in the tab's name) on the other tab.
    expect(await panel.getByTestId('tab-sync-note').isVisible()).toBe(true);
    await page.screenshot({ path: 'test-results/sync-tab-draft-marked.png' });
    await panel.getByRole('tab', { name: /^Sync/ }).click();
    await panel.getByTestId('sync-settings').waitFor();
    expect(await radio(panel, 'update', choice).isChecked()).toBe(true);
    expect(await panel.getByTestId('sync-save').isEnabled()).toBe(true);
    expect(await panel.getByTestId('sync-save-status').innerText()).toBe('You have unsaved changes.');
    expect(getSyncSettings(world.tandem.database.db, demoLocation().id)).toEqual(before);
    // Discarded from the keyboard, the mark goes.
    await panel.getByTestId('sync-discard').focus();
    await page.keyboard.press('Enter');
    await panel.getByTestId('tab-sync-note').waitFor({ state: 'detached' });
    const saved = radio(panel, 'update', otherLabel(otherValue(before.updateDirection)));
    expect(await saved.isChecked()).toBe(true);
    // QA: Discard went with the draft, and focus fell to the page's body. It is on the radio group
    // just reset, on its saved value, and the status line says what happened.
    await until(() => saved.evaluate((el) => el === document.activeElement), 'focus on the reset group’s saved value');
    expect(await panel.getByTestId('sync-save-status').innerText()).toBe('Changes discarded: the saved settings stand.');
    await page.close();
  });

  it('saves only the setting the admin changed: another admin’s change saved meanwhile stays', async () => {
    // QA: B's draft sent both settings, so B's save put back the one A had just changed.
    const { page, panel, db, before } = await openAsAdmin();
    await radio(panel, 'creation', otherLabel(before.creationDirection)).check();
    // Another admin saves Contact update; this panel's refresh shows it, the draft stays.
    updateSyncSettings(db, { locationId: demoLocation().id, patch: { updateDirection: otherValue(before.updateDirection) }, user: otherAdmin, now: Date.now() });
    await until(() => radio(panel, 'update', otherLabel(before.updateDirection)).isChecked(), 'the refresh to show the other admin’s change', 15_000);
    expect(await radio(panel, 'creation', otherLabel(before.creationDirection)).isChecked()).toBe(true);
    await panel.getByTestId('sync-save').click();
    await panel.getByTestId('sync-save-status').getByText('Settings saved. Tandem syncs with them from now on.').waitFor();
    expect(getSyncSettings(db, demoLocation().id)).toMatchObject({
      creationDirection: otherValue(before.creationDirection),
      updateDirection: otherValue(before.updateDirection),
    });
    await page.close();
    restore(before);
  });

  it('says who changed a setting the draft changes, and when, and saves over it only when asked', async () => {
    const { page, panel, db, location, before } = await openAsAdmin();
    const mine = otherValue(before.creationDirection);
    await radio(panel, 'creation', otherLabel(before.creationDirection)).check();
    // Meanwhile another admin sets Contact creation to the draft's value and back: their decision,
    // made after the draft began, which saving the draft would undo.
    updateSyncSettings(db, { locationId: location, patch: { creationDirection: mine }, user: otherAdmin, now: Date.now() });
    updateSyncSettings(db, { locationId: location, patch: { creationDirection: before.creationDirection }, user: otherAdmin, now: Date.now() });
    const conflict = panel.getByTestId('sync-conflict');
    await conflict.waitFor({ timeout: 15_000 });
    const line = await conflict.getByTestId('sync-conflict-line').innerText();
    expect(line).toContain(`${otherAdmin.name} changed Contact creation to ${otherLabel(mine)} since you began editing; your draft sets it to ${otherLabel(before.creationDirection)}.`);
    expect(line).toMatch(/\d{1,2}:\d{2}\s?[AP]M [A-Z]{2,5}|GMT/);
    expect(await panel.getByTestId('sync-save').isDisabled()).toBe(true);
    await page.screenshot({ path: 'test-results/sync-tab-conflict.png', fullPage: true });
    await panel.getByTestId('sync-overwrite').click();
    await panel.getByTestId('sync-save-status').getByText('Settings saved. Tandem syncs with them from now on.').waitFor();
    expect(getSyncSettings(db, location).creationDirection).toBe(mine);
    expect(await conflict.count()).toBe(0);
    await page.close();
    restore(before);
  });

  it('refuses a save overtaken before the panel refreshed, says by whom, and keeps theirs when asked', async () => {
    const { page, panel, db, location, before } = await openAsAdmin();
    await radio(panel, 'update', otherLabel(before.updateDirection)).check();
    // The panel's refreshes are held: it cannot know of the change below before saving.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await page.route('**/api/panel/sync', async (route) => {
      await held;
      await route.continue();
    });
    await page.route('**/api/panel/sync/settings', async (route) => {
      release();
      await route.continue();
    });
    updateSyncSettings(db, { locationId: location, patch: { updateDirection: otherValue(before.updateDirection) }, user: otherAdmin, now: Date.now() });
    updateSyncSettings(db, { locationId: location, patch: { updateDirection: before.updateDirection }, user: otherAdmin, now: Date.now() });
    const after = getSyncSettings(db, location);
    await panel.getByTestId('sync-save').click();
    const conflict = panel.getByTestId('sync-conflict');
    await conflict.waitFor({ timeout: 15_000 });
    expect(await conflict.getByTestId('sync-conflict-line').innerText()).toContain(`${otherAdmin.name} changed Contact update to`);
    expect(await panel.getByTestId('sync-save-status').innerText()).toContain('Not saved: someone changed a setting you are changing.');
    // Save was disabled under the keyboard: focus went to the question, not to the page.
    expect(await panel.locator('#sync-conflict-title').evaluate((el) => el === document.activeElement)).toBe(true);
    expect(getSyncSettings(db, location)).toEqual(after);
    await panel.getByTestId('sync-keep-theirs').click();
    await conflict.waitFor({ state: 'detached' });
    expect(await panel.getByTestId('sync-save-status').innerText()).toContain('Their change stands. You have nothing else to save.');
    expect(await panel.getByTestId('sync-save-status').evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await radio(panel, 'update', otherLabel(otherValue(before.updateDirection))).isChecked()).toBe(true);
    expect(await panel.getByTestId('sync-save').isDisabled()).toBe(true);
    expect(getSyncSettings(db, location)).toEqual(after);
    await page.unrouteAll();
    await page.close();
  });

  it('shows a plain user the settings disabled, without Save or Pause', async () => {
    const { page, panel } = await openPanel();
    await page.getByTestId('user-switcher').selectOption(plainUser().id);
    await panel.getByTestId('panel-read-only').waitFor();
    expect(await panel.getByTestId('panel-read-only').innerText()).toContain('Only admins can change settings');
    for (const setting of ['creation', 'update'] as const) {
      for (const label of ['Bi-directional', 'Inbound'] as const) expect(await radio(panel, setting, label).isDisabled()).toBe(true);
    }
    // The saved values show, read-only.
    expect(await radio(panel, 'update', 'Bi-directional').isChecked()).toBe(true);
    expect(await panel.getByTestId('sync-save').count()).toBe(0);
    expect(await panel.getByTestId('sync-pause-toggle').count()).toBe(0);
    await page.screenshot({ path: 'test-results/sync-tab-user.png', fullPage: true });
    await page.close();
  });
});

describe('the tabs', () => {
  it('lists Sync first (selected), Contacts, and the API keys tab when it is built; arrow keys switch tabs', async () => {
    const { page, panel } = await openPanel();
    const hasApiKeys = existsSync(new URL('../../web/lib/ApiKeysTab.svelte', import.meta.url));
    const tabs = panel.getByRole('tab');
    expect(await tabs.allInnerTexts()).toEqual(['Sync', 'Contacts', ...(hasApiKeys ? ['API keys'] : [])]);
    expect(await panel.getByRole('tab', { name: 'Sync' }).getAttribute('aria-selected')).toBe('true');
    await panel.getByRole('tab', { name: 'Sync' }).focus();
    await page.keyboard.press('ArrowRight');
    await panel.getByTestId('contacts').waitFor();
    expect(await panel.getByRole('tab', { name: 'Contacts' }).getAttribute('aria-selected')).toBe('true');
    await page.keyboard.press('ArrowLeft');
    await panel.getByTestId('sync-settings').waitFor();
    if (hasApiKeys) {
      await page.keyboard.press('End');
      await panel.getByTestId('api-keys').waitFor();
      expect(await panel.getByRole('tab', { name: 'API keys' }).getAttribute('aria-selected')).toBe('true');
      expect(await panel.getByTestId('sync-settings').count()).toBe(0);
      await page.keyboard.press('Home');
      await panel.getByTestId('sync-settings').waitFor();
    }
    await page.close();
  });
});

describe('the status strip', () => {
  it('an admin pauses and resumes; what waits and the latest problem show in plain words', async () => {
    const { page, panel } = await openPanel();
    await page.getByTestId('user-switcher').selectOption(agencyAdmin().id);
    const state = panel.getByTestId('sync-state');
    await state.getByText('Sync on', { exact: true }).waitFor();
    expect(await panel.getByTestId('panel-connection').getAttribute('data-status')).toBe('active');
    await panel.getByTestId('sync-pause-toggle').click();
    await state.getByText('Paused', { exact: true }).waitFor();
    // Not "nothing moves": a one-time operation an admin confirms still runs while paused.
    expect(await state.innerText()).toContain('One-time operations you confirm still run.');
    expect(await panel.getByTestId('sync-history-entry').first().innerText()).toContain('paused sync');
    // The header agrees with the strip: a paused sync is not a green Connected, on any tab.
    const connection = panel.getByTestId('panel-connection');
    expect(await connection.getAttribute('data-status')).toBe('sync_paused');
    expect(await connection.innerText()).toContain('Paused');
    expect(await connection.innerText()).not.toContain('Connected');
    await panel.getByRole('tab', { name: 'Contacts' }).click();
    await panel.getByTestId('contacts').waitFor();
    expect(await connection.getAttribute('data-status')).toBe('sync_paused');
    await panel.getByRole('tab', { name: 'Sync' }).click();
    await panel.getByTestId('sync-status').waitFor();

    // While paused the loop leaves these alone; the tab picks them up on its next refresh.
    const db = world.tandem.database.db;
    const location = demoLocation().id;
    const now = Date.now();
    enqueueOutbox(db, location, 'e2e-contact-1', 'upsert', now);
    // The refused one is a live contact: the strip counts what the Contacts tab's Refused filter lists.
    createContact(db, { locationId: location, id: 'e2e-contact-2', fields: { ...emptyContact(), firstName: 'Rae', lastName: 'Refused' }, now, origin: 'remote' });
    enqueueOutbox(db, location, 'e2e-contact-2', 'upsert', now);
    failOutbox(db, getOutbox(db, location, 'e2e-contact-2')!, { error: 'HighLevel refused the phone number “12”', nextAttemptAt: now, permanent: true });
    updateSyncState(db, location, { lastError: 'HighLevel answered 429: too many requests' }, now + 1000);
    // The tab may refresh between these writes: wait for what the last of them shows.
    await panel.getByTestId('sync-pending-outbound').getByText('1 contact refused by HighLevel').waitFor({ timeout: 15_000 });
    await panel.getByTestId('sync-problem').getByText('HighLevel answered 429: too many requests.').waitFor({ timeout: 15_000 });
    expect(await panel.getByTestId('sync-pending-outbound').innerText()).toContain('1 contact to send');
    const problem = await panel.getByTestId('sync-problem').innerText();
    expect(problem).toContain('HighLevel answered 429: too many requests.');
    expect(problem).toContain('What to do:');
    await page.screenshot({ path: 'test-results/sync-tab-paused.png', fullPage: true });

    // The server's message writes its time in UTC: the strip shows it in the viewer's zone (QA: UTC).
    const { page: pacific, panel: there } = await openPanel('America/Los_Angeles');
    const resumes = new Date(Date.now() + 3 * 3_600_000).toISOString().replace('T', ' ').slice(0, 16);
    updateSyncState(db, location, { lastError: `HighLevel’s daily request limit for this sub-account is used up; sync resumes at ${resumes} UTC.` }, Date.now() + 2000);
    const message = there.getByTestId('sync-problem-message');
    await message.getByText('daily request limit').waitFor({ timeout: 15_000 });
    expect(await message.innerText()).toMatch(
      /^HighLevel’s daily request limit for this sub-account is used up; sync resumes at [A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2}\s?[AP]M P[SD]T \(in (2|3) hours\)\.$/,
    );
    expect(await there.getByTestId('sync-problem').innerText()).toContain('What to do: Nothing: HighLevel allows more requests when its daily limit resets');
    await there.getByTestId('sync-problem').screenshot({ path: 'test-results/sync-tab-daily-limit-local-time.png' });
    await pacific.close();

    await panel.getByTestId('sync-pause-toggle').click();
    await state.getByText('Sync on', { exact: true }).waitFor();
    expect(await panel.getByTestId('sync-history-entry').first().innerText()).toContain('resumed sync');
    expect(await connection.innerText()).toContain('Connected');
    expect(getSyncSettings(db, location).paused).toBe(false);
    await page.close();
  });
});

describe('recent changes to settings', () => {
  it('lists the latest ten, and the older ones Tandem sent on request, focus staying on the button', async () => {
    // QA: the list grew by a line for every pause and resume, without end.
    const db = world.tandem.database.db;
    const location = demoLocation().id;
    const admin = { id: 'e2e-test', name: 'E2E test' };
    // Twenty-four pauses and resumes (sync on again at the end): more than Tandem sends (20).
    for (let i = 0; i < 24; i++) updateSyncSettings(db, { locationId: location, patch: { paused: i % 2 === 0 }, user: admin, now: Date.now() });
    expect(getSyncSettings(db, location).paused).toBe(false);
    const { page, panel } = await openPanel();
    const card = panel.getByTestId('sync-history');
    const entries = card.getByTestId('sync-history-entry');
    await card.getByTestId('sync-history-toggle').waitFor();
    expect(await entries.count()).toBe(10);
    expect(await entries.first().innerText()).toContain('resumed sync');
    const toggle = card.getByTestId('sync-history-toggle');
    expect(await toggle.innerText()).toBe('Show 10 older changes');
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    expect(await toggle.getAttribute('aria-controls')).toBe('sync-history-list');
    await card.screenshot({ path: 'test-results/sync-history-latest.png' });

    // From the keyboard: all twenty, then back to ten; focus stays on the button each time.
    await toggle.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => entries.count()).toBe(20);
    expect(await toggle.innerText()).toBe('Show only the latest 10');
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');
    expect(await toggle.evaluate((el) => el === document.activeElement)).toBe(true);
    await card.screenshot({ path: 'test-results/sync-history-all.png' });
    await page.keyboard.press('Enter');
    await expect.poll(() => entries.count()).toBe(10);
    expect(await toggle.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.close();
  });
});

describe('a save that sends held work', () => {
  const SHOTS = '.scratch/release';

  /**
   * The panel as the admin, who sets Contact update to Inbound (no dialog: nothing goes out), then
   * a linked demo contact's lead score edited in Tandem: an edit held until Contact update is
   * Bi-directional. Set through the panel, so the location's loop is told at once and no pass of
   * it still runs with the earlier setting when the edit is made.
   */
  async function holdAnEdit() {
    restore({ creationDirection: 'bidirectional', updateDirection: 'bidirectional' });
    const opened = await openAsAdmin();
    const { panel, db, location } = opened;
    await radio(panel, 'update', 'Inbound').check();
    await panel.getByTestId('sync-save').click();
    await panel.getByTestId('sync-save-status').getByText('Settings saved. Tandem syncs with them from now on.').waitFor();
    expect(await panel.getByTestId('sync-release').isHidden()).toBe(true);
    expect(getSyncSettings(db, location).updateDirection).toBe('inbound');

    const lead = await until(() => customFieldList(db, location).definitions.find((f) => f.name === 'Lead score'), 'the custom fields listed', 30_000);
    const contact = await until(
      () => listRecentContacts(db, location, { limit: 50 }).contacts.find((c) => c.fields.firstName && getLinkByContact(db, location, c.id) && !getOutbox(db, location, c.id)),
      'a linked demo contact',
      30_000,
    );
    const link = getLinkByContact(db, location, contact.id)!;
    const was = link.base.customFields[lead.id] ?? null;
    const score = was === 99 ? 98 : 99;
    updateContact(db, { locationId: location, id: contact.id, patch: { customFields: { [lead.id]: score } }, now: Date.now(), origin: 'local' });
    expect(getOutbox(db, location, contact.id)).toMatchObject({ status: 'pending', kind: 'upsert' });
    const name = [contact.fields.firstName, contact.fields.lastName].filter(Boolean).join(' ');
    return { ...opened, lead, contact, link, name, was, score };
  }

  /** The lead score HighLevel holds for the contact (the location's own token, like another integration). */
  async function highLevelScore(highlevelId: string, fieldId: string): Promise<unknown> {
    const res = await call<{ contact: { customFields?: Array<{ id: string; value: unknown }> } }>(sandbox().highlevelUrl, 'GET', `/contacts/${highlevelId}`, { token: demoLocation().privateToken });
    expect(res.status).toBe(200);
    return res.body.contact.customFields?.find((f) => f.id === fieldId)?.value ?? null;
  }

  it('shows the held edit and its field’s change before sending it; Cancel sends nothing, Save and send does', async () => {
    mkdirSync(SHOTS, { recursive: true });
    const held = await holdAnEdit();
    const { page, panel, db, location } = held;
    const inHighLevel = await highLevelScore(held.link.highlevelId, held.lead.id);
    await radio(panel, 'update', 'Bi-directional').check();
    const save = panel.getByTestId('sync-save');
    await save.click();
    const dialog = panel.getByTestId('sync-release');
    await dialog.getByTestId('sync-release-summary').waitFor();
    expect(await dialog.getByRole('heading', { level: 2 }).innerText()).toBe('Send held changes to HighLevel?');
    expect(await dialog.getByTestId('sync-release-summary').innerText()).toContain('Saving turns Contact update to Bi-directional');
    expect(await dialog.getByTestId('sync-release-updated-count').innerText()).toBe('Edits of 1 contact will be sent to HighLevel.');
    expect(await dialog.getByTestId('sync-release-created-count').count()).toBe(0);
    expect(await dialog.getByTestId('sync-release-updated').innerText()).toContain(held.name);
    expect(await dialog.getByTestId('sync-release-change').allInnerTexts()).toEqual([`Lead score: ${held.was ?? 'empty'} → ${held.score}`]);
    // Focus starts on Cancel, the safe way out.
    await expect.poll(() => dialog.getByTestId('sync-release-cancel').evaluate((el) => el === document.activeElement)).toBe(true);
    await page.screenshot({ path: `${SHOTS}/release-dialog.png` });

    // Cancel: nothing saved, nothing sent; the draft stays, and focus goes back to Save.
    await dialog.getByTestId('sync-release-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await panel.getByTestId('sync-save-status').innerText()).toBe('Not saved, and nothing was sent. Your changes stay here until you save or discard them.');
    await expect.poll(() => save.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await radio(panel, 'update', 'Bi-directional').isChecked()).toBe(true);
    expect(getSyncSettings(db, location).updateDirection).toBe('inbound');
    expect(getOutbox(db, location, held.contact.id)).toMatchObject({ status: 'pending' });
    expect(await highLevelScore(held.link.highlevelId, held.lead.id)).toEqual(inHighLevel);

    // Save and send: saved, and the edit reaches HighLevel.
    await save.click();
    await dialog.getByTestId('sync-release-confirm').waitFor();
    expect(await dialog.getByTestId('sync-release-confirm').innerText()).toBe('Save and send');
    await dialog.getByTestId('sync-release-confirm').click();
    await panel.getByTestId('sync-save-status').getByText('Settings saved. Tandem is sending the held change to HighLevel now.').waitFor();
    expect(await dialog.isHidden()).toBe(true);
    expect(getSyncSettings(db, location).updateDirection).toBe('bidirectional');
    await expect.poll(() => highLevelScore(held.link.highlevelId, held.lead.id), { timeout: 15_000 }).toEqual(held.score);
    await page.screenshot({ path: `${SHOTS}/release-saved.png`, fullPage: true });
    await page.close();
  });

  /** Another linked demo contact with nothing waiting to go out: its edit is a second held one. */
  async function anotherLinkedContact(db: typeof world.tandem.database.db, location: string, except: string) {
    const contact = await until(
      () => listRecentContacts(db, location, { limit: 50 }).contacts.find((c) => c.id !== except && c.fields.firstName && getLinkByContact(db, location, c.id) && !getOutbox(db, location, c.id)),
      'another linked demo contact',
      30_000,
    );
    return { contact, link: getLinkByContact(db, location, contact.id)! };
  }

  /** An edit of the contact's city through Tandem's REST API, as another integration makes one. */
  async function editCityThroughApi(contactId: string, city: string): Promise<void> {
    const res = await fetch(`${world.tandem.tandemUrl}/api/v1/contacts/${contactId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${sandbox().apiKey!.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ address: { city } }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }

  /** The city HighLevel holds for the contact. */
  async function highLevelCity(highlevelId: string): Promise<unknown> {
    const res = await call<{ contact: { city?: string | null } }>(sandbox().highlevelUrl, 'GET', `/contacts/${highlevelId}`, { token: demoLocation().privateToken });
    expect(res.status).toBe(200);
    return res.body.contact.city ?? null;
  }

  const FINGERPRINT_SHOTS = '.scratch/fingerprint';
  const isFocused = (el: Element) => el === document.activeElement;

  it('sends what the dialog shows: an edit held while it is open is shown instead of sent, and both go once confirmed again', async () => {
    mkdirSync(FINGERPRINT_SHOTS, { recursive: true });
    const held = await holdAnEdit();
    const { page, panel, db, location } = held;
    const other = await anotherLinkedContact(db, location, held.contact.id);
    const city = `Exactville ${Date.now() % 100_000}`;
    const cityBefore = await highLevelCity(other.link.highlevelId);
    const scoreBefore = await highLevelScore(held.link.highlevelId, held.lead.id);

    // Until Save and send is pressed, a refresh of the preview answers what the dialog first showed:
    // here the save itself, not a refresh, meets the edit held meanwhile.
    let first: string | undefined;
    let confirmed = false;
    const saves: number[] = [];
    const isSave = (method: string, url: string) => method === 'PUT' && new URL(url).pathname === '/api/panel/sync/settings';
    page.on('request', (r) => {
      if (isSave(r.method(), r.url())) confirmed = true;
    });
    page.on('response', (r) => {
      if (isSave(r.request().method(), r.url())) saves.push(r.status());
    });
    await page.route('**/api/panel/sync/settings/preview**', async (route) => {
      if (first !== undefined && !confirmed) return route.fulfill({ status: 200, contentType: 'application/json', body: first });
      const response = await route.fetch();
      const body = await response.text();
      first ??= body;
      await route.fulfill({ response, body });
    });

    await radio(panel, 'update', 'Bi-directional').check();
    await panel.getByTestId('sync-save').click();
    const dialog = panel.getByTestId('sync-release');
    const confirm = dialog.getByTestId('sync-release-confirm');
    await dialog.getByTestId('sync-release-updated-count').waitFor();
    expect(await dialog.getByTestId('sync-release-updated-count').innerText()).toBe('Edits of 1 contact will be sent to HighLevel.');

    // Another edit held through the REST API while the dialog is open.
    await editCityThroughApi(other.contact.id, city);
    expect(getOutbox(db, location, other.contact.id)).toMatchObject({ status: 'pending' });

    // Save and send: refused, nothing saved or sent; the dialog shows what goes out now.
    await confirm.click();
    await dialog.getByTestId('sync-release-changed').waitFor();
    expect(saves).toEqual([409]);
    expect(await dialog.getByTestId('sync-release-changed').innerText()).toBe('What goes out changed since this was shown: 1 more edit. Nothing was saved or sent yet.');
    expect(await dialog.getByTestId('sync-release-updated-count').innerText()).toBe('Edits of 2 contacts will be sent to HighLevel.');
    expect(await dialog.getByTestId('sync-release-updated').innerText()).toContain(city);
    expect(await confirm.innerText()).toBe('Save and send');
    // Focus stays on the button the admin pressed, ready to confirm again.
    expect(await confirm.evaluate(isFocused)).toBe(true);
    expect(getSyncSettings(db, location).updateDirection).toBe('inbound');
    expect(await panel.getByTestId('sync-save-status').innerText()).not.toContain('sending');
    await page.screenshot({ path: `${FINGERPRINT_SHOTS}/release-changed.png` });
    expect(await highLevelScore(held.link.highlevelId, held.lead.id)).toEqual(scoreBefore);
    expect(await highLevelCity(other.link.highlevelId)).toEqual(cityBefore);

    // Confirmed again: saved, and both edits reach HighLevel.
    await confirm.click();
    await panel.getByTestId('sync-save-status').getByText('Settings saved. Tandem is sending the held changes to HighLevel now.').waitFor();
    expect(saves).toEqual([409, 200]);
    expect(await dialog.isHidden()).toBe(true);
    expect(getSyncSettings(db, location).updateDirection).toBe('bidirectional');
    await expect.poll(() => highLevelScore(held.link.highlevelId, held.lead.id), { timeout: 15_000 }).toEqual(held.score);
    await expect.poll(() => highLevelCity(other.link.highlevelId), { timeout: 15_000 }).toEqual(city);
    await page.close();
  }, 60_000);

  it('reads what goes out again at each refresh while open, in place, and says so when the same settings were saved meanwhile', async () => {
    mkdirSync(FINGERPRINT_SHOTS, { recursive: true });
    const held = await holdAnEdit();
    const { page, panel, db, location } = held;
    const other = await anotherLinkedContact(db, location, held.contact.id);
    await radio(panel, 'update', 'Bi-directional').check();
    await panel.getByTestId('sync-save').click();
    const dialog = panel.getByTestId('sync-release');
    const cancel = dialog.getByTestId('sync-release-cancel');
    await dialog.getByTestId('sync-release-updated-count').waitFor();
    await expect.poll(() => cancel.evaluate(isFocused)).toBe(true);

    // An edit held while it is open shows at a refresh of the tab, without a click; focus stays on Cancel.
    const city = `Refreshville ${Date.now() % 100_000}`;
    await editCityThroughApi(other.contact.id, city);
    await expect.poll(() => dialog.getByTestId('sync-release-updated-count').innerText(), { timeout: 20_000 }).toBe('Edits of 2 contacts will be sent to HighLevel.');
    expect(await dialog.getByTestId('sync-release-changed').innerText()).toBe('What goes out changed since this was shown: 1 more edit.');
    expect(await cancel.evaluate(isFocused)).toBe(true);
    await page.screenshot({ path: `${FINGERPRINT_SHOTS}/release-refreshed.png` });

    // Another admin of the location saves the same settings in their own tab, sending both edits:
    // nothing is left to save or send from here.
    const second = await openPanel();
    const locationAdmin = sandbox().users.find((u) => u.type === 'account' && u.role === 'admin' && u.locationIds.includes(location))!;
    await second.page.getByTestId('user-switcher').selectOption(locationAdmin.id);
    await second.panel.getByTestId('sync-save').waitFor();
    await radio(second.panel, 'update', 'Bi-directional').check();
    await second.panel.getByTestId('sync-save').click();
    const theirs = second.panel.getByTestId('sync-release');
    await theirs.getByTestId('sync-release-updated-count').waitFor();
    expect(await theirs.getByTestId('sync-release-updated-count').innerText()).toBe('Edits of 2 contacts will be sent to HighLevel.');
    await theirs.getByTestId('sync-release-confirm').click();
    await second.panel.getByTestId('sync-save-status').getByText('Settings saved. Tandem is sending the held changes to HighLevel now.').waitFor();
    await second.page.close();

    await dialog.getByTestId('sync-release-settled').waitFor({ timeout: 20_000 });
    expect(await dialog.getByTestId('sync-release-settled').innerText()).toBe(
      'Someone saved these settings meanwhile (another admin, or you in another tab or window), so they are already as you chose. Nothing is left to save or send from here.',
    );
    expect(await dialog.getByRole('heading', { level: 2 }).innerText()).toBe('Settings already saved');
    expect(await dialog.getByTestId('sync-release-confirm').count()).toBe(0);
    expect(await cancel.innerText()).toBe('Close');
    expect(await cancel.evaluate(isFocused)).toBe(true);
    await page.screenshot({ path: `${FINGERPRINT_SHOTS}/release-settled.png` });
    await cancel.click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await panel.getByTestId('sync-save-status').innerText()).toBe('Nothing to save: these settings were saved meanwhile, in another tab or by another admin.');
    expect(await radio(panel, 'update', 'Bi-directional').isChecked()).toBe(true);
    expect(await panel.getByTestId('sync-save').isDisabled()).toBe(true);
    // Their save sent both.
    await expect.poll(() => highLevelCity(other.link.highlevelId), { timeout: 15_000 }).toEqual(city);
    await expect.poll(() => highLevelScore(held.link.highlevelId, held.lead.id), { timeout: 15_000 }).toEqual(held.score);
    await page.close();
  }, 60_000);

  it('says when what a save would send cannot be read, saves nothing, and reads it again on Retry', async () => {
    const held = await holdAnEdit();
    const { page, panel, db, location } = held;
    let refused = 0;
    await page.route('**/api/panel/sync/settings/preview**', async (route) => {
      refused++;
      await route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'Tandem is restarting' } }) });
    });
    await radio(panel, 'update', 'Bi-directional').check();
    await panel.getByTestId('sync-save').click();
    const dialog = panel.getByTestId('sync-release');
    const error = dialog.getByTestId('sync-release-error');
    await error.waitFor();
    expect(await error.innerText()).toBe('Tandem could not check what saving would send to HighLevel: Tandem is restarting. Nothing is saved. Retry, or cancel to keep your changes unsaved.');
    expect(await dialog.getByTestId('sync-release-confirm').count()).toBe(0);
    expect(getSyncSettings(db, location).updateDirection).toBe('inbound');
    await page.screenshot({ path: `${SHOTS}/release-check-failed.png` });

    // Retry, refused again: still nothing saved. Once Tandem answers, Retry shows what goes out.
    await dialog.getByTestId('sync-release-retry').click();
    await until(() => refused === 2, 'the second check');
    await error.waitFor();
    expect(getSyncSettings(db, location).updateDirection).toBe('inbound');
    await page.unroute('**/api/panel/sync/settings/preview**');
    await dialog.getByTestId('sync-release-retry').click();
    await dialog.getByTestId('sync-release-updated-count').waitFor();
    expect(await dialog.getByTestId('sync-release-change').allInnerTexts()).toEqual([`Lead score: ${held.was ?? 'empty'} → ${held.score}`]);
    // Retry is gone: focus is on Cancel, not on the page behind.
    await expect.poll(() => dialog.getByTestId('sync-release-cancel').evaluate((el) => el === document.activeElement)).toBe(true);
    // Escape is Cancel.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(await panel.getByTestId('sync-save-status').innerText()).toContain('Not saved, and nothing was sent.');
    expect(getSyncSettings(db, location).updateDirection).toBe('inbound');
    await page.close();
    restore({ creationDirection: 'bidirectional', updateDirection: 'inbound' });
  });

  it('lists apart the held contacts HighLevel will refuse, naming the contact whose email they share; Cancel sends nothing', async () => {
    const M2_SHOTS = '.scratch/m2';
    mkdirSync(M2_SHOTS, { recursive: true });
    restore({ creationDirection: 'bidirectional', updateDirection: 'inbound' });
    const { page, panel, db, location } = await openAsAdmin();
    // Contact creation Inbound (no dialog: nothing goes out), set through the panel so the loop holds what follows.
    await radio(panel, 'creation', 'Inbound').check();
    await panel.getByTestId('sync-save').click();
    await panel.getByTestId('sync-save-status').getByText('Settings saved. Tandem syncs with them from now on.').waitFor();
    const holder = await until(
      () => listRecentContacts(db, location, { limit: 50 }).contacts.find((c) => c.fields.firstName && c.fields.email && getLinkByContact(db, location, c.id)?.base.email === c.fields.email),
      'a linked demo contact with an email',
      30_000,
    );
    const now = Date.now();
    const fresh = createContact(db, { locationId: location, fields: { ...emptyContact(), firstName: 'Nina', lastName: 'New', email: `nina.${now}@tandem.example` }, now, origin: 'local' });
    const refused = createContact(db, { locationId: location, fields: { ...emptyContact(), firstName: 'Rita', lastName: 'Refused', email: holder.fields.email }, now: now + 1, origin: 'local' });
    try {
      await radio(panel, 'creation', 'Bi-directional').check();
      await panel.getByTestId('sync-save').click();
      const dialog = panel.getByTestId('sync-release');
      await dialog.getByTestId('sync-release-refused-count').waitFor();
      expect(await dialog.getByTestId('sync-release-created-count').innerText()).toBe('1 new contact will be created in HighLevel.');
      expect(await dialog.getByTestId('sync-release-refused-count').innerText()).toBe('1 contact will be refused: its email or phone is already on another contact in HighLevel.');
      expect(await dialog.getByTestId('sync-release-created').innerText()).toContain('Nina New');
      expect(await dialog.getByTestId('sync-release-created').innerText()).not.toContain('Rita Refused');
      expect((await dialog.getByTestId('sync-release-refused-contact').allInnerTexts()).map((t) => t.replace(/\s+/g, ' '))).toEqual([
        `Rita Refused Not created: its email is already on the HighLevel contact linked to ${contactLabel(holder.fields, '')}.`,
      ]);
      expect(await dialog.getByTestId('sync-release-confirm').innerText()).toBe('Save and send');
      await page.screenshot({ path: `${M2_SHOTS}/release-refused.png` });
      await dialog.getByTestId('sync-release-cancel').click();
      await dialog.waitFor({ state: 'hidden' });
      expect(getSyncSettings(db, location).creationDirection).toBe('inbound');
      expect(getLinkByContact(db, location, refused.id)).toBeUndefined();
    } finally {
      for (const c of [fresh, refused]) archiveContact(db, { locationId: location, id: c.id, now: Date.now(), origin: 'local' });
      await page.close();
      restore({ creationDirection: 'bidirectional', updateDirection: 'inbound' });
    }
  });
});

describe('the tab when it cannot be loaded', () => {
  const SHOTS = '.scratch/small';
  const refuse = (message: string) => (route: Route) =>
    route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal', message } }) });

  /** The panel with each of `failing` (a path under /api/panel/) refused with its message. */
  async function openFailing(failing: Record<string, string>): Promise<{ page: Page; panel: FrameLocator }> {
    const page = await world.browser.newPage({ viewport: { width: 1100, height: 1000 } });
    for (const [path, message] of Object.entries(failing)) await page.route(`**/api/panel/${path}`, refuse(message));
    await page.goto(sandbox().sandboxUrl);
    return { page, panel: page.frameLocator('iframe[data-testid="app-frame"]') };
  }

  it('says once that the settings and the operations could not be loaded, and one Retry reads both', async () => {
    mkdirSync(SHOTS, { recursive: true });
    const page = await world.browser.newPage({ viewport: { width: 1100, height: 1000 } });
    // The settings fail at once and keep failing; the operations answer only when released, so the
    // settings' failure is known first and must not show alone meanwhile.
    let settingsReads = 0;
    await page.route('**/api/panel/sync', (route) => {
      settingsReads++;
      return refuse('Tandem had a problem on its side.')(route);
    });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await page.route('**/api/panel/operations', async (route) => {
      await held;
      await refuse('Tandem had a problem on its side.')(route);
    });
    await page.goto(sandbox().sandboxUrl);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    // A second read of the settings comes only after the first one failed.
    await until(() => settingsReads >= 2, 'the settings read again after failing', 20_000);
    expect(await panel.getByTestId('sync-loading').count()).toBe(1);
    expect(await panel.getByTestId('sync-error').count()).toBe(0);
    expect(await panel.getByRole('alert').count()).toBe(0);
    release();

    const error = panel.getByTestId('sync-tab-error');
    await error.waitFor({ timeout: 15_000 });
    expect(await error.getByRole('heading').innerText()).toBe('Could not load the sync settings or the one-time operations');
    expect(await error.getByRole('alert').innerText()).toBe('Tandem had a problem on its side.');
    // One error and one Retry on the page: neither part says it again.
    expect(await panel.getByRole('alert').count()).toBe(1);
    expect(await panel.getByRole('button', { name: 'Retry' }).count()).toBe(1);
    expect(await panel.getByTestId('sync-error').count()).toBe(0);
    expect(await panel.getByTestId('operations').count()).toBe(0);
    expect(await panel.getByTestId('panel-signed-in').count()).toBe(1);
    await page.screenshot({ path: `${SHOTS}/sync-tab-both-failed.png` });

    // Tandem answers again: the one Retry reads the settings and the operations.
    await page.unrouteAll();
    await error.getByRole('button', { name: 'Retry' }).click();
    await panel.getByTestId('sync-settings').waitFor();
    await panel.getByTestId('operations-history').waitFor();
    await expect.poll(() => panel.getByTestId('operations-history-loading').count()).toBe(0);
    expect(await panel.getByRole('alert').count()).toBe(0);
    expect(await error.count()).toBe(0);
    await page.close();
  });

  it('says only what failed when one part failed, or each part’s own reason when they differ', async () => {
    // Only the settings: their error and Retry, the operations as usual.
    let opened = await openFailing({ sync: 'Tandem had a problem on its side.' });
    await opened.panel.getByTestId('sync-error').waitFor({ timeout: 15_000 });
    await opened.panel.getByTestId('operations-history').waitFor();
    await expect.poll(() => opened.panel.getByTestId('operations-history-loading').count()).toBe(0);
    expect(await opened.panel.getByTestId('sync-tab-error').count()).toBe(0);
    expect(await opened.panel.getByTestId('operations-failure').count()).toBe(0);
    expect(await opened.panel.getByRole('button', { name: 'Retry' }).count()).toBe(1);
    await opened.page.close();

    // Both, for different reasons: each says its own, with its own Retry.
    opened = await openFailing({ sync: 'Tandem had a problem on its side.', operations: 'Tandem is restarting.' });
    await opened.panel.getByTestId('sync-error').waitFor({ timeout: 15_000 });
    await opened.panel.getByTestId('operations-failure').waitFor();
    expect(await opened.panel.getByTestId('sync-tab-error').count()).toBe(0);
    expect(await opened.panel.getByRole('button', { name: 'Retry' }).count()).toBe(2);
    await opened.page.close();
  });
});

describe('the status strip while HighLevel holds sync back', () => {
  const SHOTS = '.scratch/strip';
  /** "… at Dec 7, 3:42 PM PST (in 2 minutes)." in the viewer's zone (Pacific here), never UTC. */
  const LOCAL_MOMENT = /at [A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2}\s?[AP]M P[SD]T \(in (\d+ (seconds?|minutes?)|less than a minute)\)\.$/;
  // The day's reset: up to a day away, however late in the UTC day the test runs.
  const RESET_MOMENT = /at [A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2}\s?[AP]M P[SD]T \(in [^)]+\)\.$/;

  // Last in the file, on the sandbox's other location: HighLevel's daily limit holds its loop back
  // until the day's reset, and no other test uses that location.
  it('says an outage and then the daily limit in amber, with when sync goes on in the viewer’s zone, as the problem below does', async () => {
    mkdirSync(SHOTS, { recursive: true });
    const db = world.tandem.database.db;
    const roofing = sandbox().locations[1]!;
    const highlevel = sandbox().highlevelUrl;
    updateSyncSettings(db, { locationId: roofing.id, patch: { updateDirection: 'bidirectional' }, user: { id: 'e2e-test', name: 'E2E test' }, now: Date.now() });
    const page = await world.browser.newPage({ viewport: { width: 1280, height: 1500 }, timezoneId: 'America/Los_Angeles' });
    try {
      await page.goto(sandbox().sandboxUrl.replace(demoLocation().id, roofing.id));
      await page.getByTestId('user-switcher').selectOption(agencyAdmin().id);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      const state = panel.getByTestId('sync-state');
      const detail = panel.getByTestId('sync-state-detail');
      await state.getByText('Sync on', { exact: true }).waitFor({ timeout: 15_000 });
      const contact = await until(
        () => listRecentContacts(db, roofing.id, { limit: 50 }).contacts.find((c) => c.fields.firstName && getLinkByContact(db, roofing.id, c.id) && !getOutbox(db, roofing.id, c.id)),
        'a linked contact of the other location',
        30_000,
      );
      /** Pausing and resuming wakes the location's loop, so the edit made meanwhile goes out now. */
      const wake = async () => {
        await panel.getByTestId('sync-pause-toggle').click();
        await state.getByText('Paused', { exact: true }).waitFor();
        await panel.getByTestId('sync-pause-toggle').click();
        await state.getByText('Paused', { exact: true }).waitFor({ state: 'detached' });
      };

      // HighLevel down: every request of the location answered 503 (GET and PUT /contacts/:id too).
      const outage = await control<{ id: number }>(highlevel, 'POST', '/faults', { locationId: roofing.id, status: 503, times: 10_000 });
      updateContact(db, { locationId: roofing.id, id: contact.id, patch: { companyName: 'Held Back Roofing' }, now: Date.now(), origin: 'local' });
      await wake();
      // A read whose next attempt is still ahead (one read between a retry and its answer says "now").
      await until(async () => (await state.getAttribute('data-state')) === 'retrying' && LOCAL_MOMENT.test(await detail.innerText()), 'the strip to say when Tandem retries', 60_000);
      expect(await state.innerText()).toContain('Retrying');
      expect(await detail.innerText()).not.toContain('usually within seconds');
      expect(await state.locator('[aria-hidden="true"]').first().getAttribute('class')).toMatch(/\bwarn\b/);
      const problem = panel.getByTestId('sync-problem');
      expect(await panel.getByTestId('sync-problem-message').innerText()).toMatch(/^HighLevel could not take Tandem’s change to .+ yet: HighLevel is not answering right now/);
      // The box says when as the strip does (one read, one moment).
      const next = await panel.getByTestId('sync-problem-next').innerText();
      expect(next).toMatch(new RegExp(`^Tandem tries again ${LOCAL_MOMENT.source}`));
      expect(await detail.innerText()).toContain(next);
      // The connection itself is fine: the header keeps Connected; the strip says what holds sync.
      const connection = panel.getByTestId('panel-connection');
      expect(await connection.getAttribute('data-status')).toBe('active');
      await state.screenshot({ path: `${SHOTS}/retrying-strip.png` });
      await panel.getByTestId('sync-status').screenshot({ path: `${SHOTS}/retrying-card.png` });

      // HighLevel answers again, but today's requests are used up: a 429 saying none is left today.
      const reset = 10 * 60_000;
      await control(highlevel, 'POST', '/faults', {
        locationId: roofing.id,
        status: 429,
        headers: { 'x-ratelimit-limit-daily': '200000', 'x-ratelimit-daily-remaining': '0', 'x-ratelimit-daily-reset': String(reset) },
        body: { statusCode: 429, message: 'Too Many Requests', error: 'Too Many Requests' },
        times: 10_000,
      });
      await control(highlevel, 'DELETE', `/faults/${outage.id}`);
      await state.getByText('Daily limit reached', { exact: true }).waitFor({ timeout: 60_000 });
      expect(await state.getAttribute('data-state')).toBe('daily');
      expect(await detail.innerText()).toMatch(new RegExp(`Sync goes on ${RESET_MOMENT.source}`));
      expect(await state.locator('[aria-hidden="true"]').first().getAttribute('class')).toMatch(/\bwarn\b/);
      // The box shows the limit too, not the change retried before it (QA: a retry due minutes ago).
      const message = await panel.getByTestId('sync-problem-message').innerText();
      expect(message).toMatch(new RegExp(`^HighLevel’s daily request limit for this sub-account is used up; sync resumes ${RESET_MOMENT.source}`));
      expect(await problem.innerText()).toContain('What to do: Nothing: HighLevel allows more requests when its daily limit resets');
      expect(await panel.getByTestId('sync-problem-next').count()).toBe(0);
      expect(await connection.getAttribute('data-status')).toBe('active');
      await state.screenshot({ path: `${SHOTS}/daily-strip.png` });
      await panel.getByTestId('sync-status').screenshot({ path: `${SHOTS}/daily-card.png` });
    } finally {
      await control(highlevel, 'DELETE', '/faults');
      await page.close();
    }
  }, 150_000);
});
