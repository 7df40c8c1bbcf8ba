// The API keys tab in headless Chromium, inside the emulated HighLevel: an admin creates a key,
// sees it once in the dialog (focus on Copy, which says so), uses it, and revokes it after confirming
// (focus then goes to the list's heading, neither the page nor the next key's Revoke, and the notice
// says what was revoked, politely); Escape asks before it loses a key not copied yet; a plain user
// sees the list without the buttons. The name field is invalid after a create without a name (no
// longer once one is typed) and while the name is longer than Tandem accepts, which it says, never
// cutting the name; the dialogs' buttons are the panel's own (one height, blue to create, red to revoke).
import { describe, expect, it } from 'vitest';
import { KEY_NAME_MAX, KEY_NAME_TOO_LONG } from '../../web/lib/api-keys.svelte.ts';
import { until } from '../helpers/emulator.ts';
import { sandboxInBrowser } from './browser.ts';

const world = sandboxInBrowser('keys', { sync: { start: false } });


const sandbox = () => world.tandem.sandbox!;
const useKey = (key: string) => fetch(`${world.tandem.tandemUrl}/api/v1/contacts?limit=1`, { headers: { authorization: `Bearer ${key}` } });

describe('the API keys tab', () => {
  it('lets an admin create a key, shows it once, and revoke it after confirming', async () => {
    const page = await world.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(sandbox().sandboxUrl);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByRole('tab', { name: 'API keys' }).click();
    // The sandbox's own key is listed by its prefix, never in full.
    const list = panel.getByTestId('api-keys-list');
    await list.waitFor();
    expect(await list.innerText()).toContain(`${sandbox().apiKey!.key.slice(0, 10)}…`);
    expect(await list.innerText()).not.toContain(sandbox().apiKey!.key);

    await panel.getByTestId('api-keys-create').click();
    await panel.getByTestId('api-key-name').fill('Billing system');
    // Submitted from the keyboard: the form gives way to the key.
    await page.keyboard.press('Enter');
    const secret = panel.getByTestId('api-key-secret');
    await secret.waitFor();
    const key = await secret.inputValue();
    expect(key).toMatch(/^tk_[0-9A-Za-z]{32}$/);
    // QA: focus fell to the page's body and nothing said a key was made. It is on Copy, whose
    // description says so (read out with it).
    const copy = panel.getByTestId('api-key-copy');
    await until(() => copy.evaluate((el) => el === document.activeElement), 'focus on Copy');
    expect(await copy.evaluate((el) => document.getElementById(el.getAttribute('aria-describedby') ?? '')?.textContent?.trim())).toMatch(
      /^Key “Billing system” created\. This is the only time Tandem shows it\./,
    );
    expect(await panel.getByRole('button', { name: 'Copy API key', exact: true }).count()).toBe(1);
    // QA: Escape closed it and the key was lost for good. The first Escape asks; the key stays.
    await page.keyboard.press('Escape');
    await panel.getByTestId('api-key-leaving').waitFor();
    expect(await panel.getByTestId('api-key-leaving').getAttribute('role')).toBe('alert');
    expect(await secret.inputValue()).toBe(key);
    await page.screenshot({ path: 'test-results/api-keys-escape-asks.png' });
    await copy.click();
    await page.screenshot({ path: 'test-results/api-keys-created.png' });
    expect((await useKey(key)).status).toBe(200);
    await panel.getByTestId('api-key-done').click();
    await panel.getByTestId('api-keys-notice').waitFor();
    // Gone from the page once the dialog closes.
    expect(await panel.locator('body').innerHTML()).not.toContain(key);
    const row = panel.getByTestId('api-key-row').filter({ hasText: 'Billing system' });
    expect(await row.innerText()).toContain(`${key.slice(0, 10)}…`);

    await row.getByTestId('api-key-revoke').click();
    await panel.getByTestId('api-key-revoke-dialog').getByText('Every system using this key loses access').waitFor();
    // Red, the panel's danger button, as tall as Cancel beside it.
    const revokeConfirm = panel.getByTestId('api-key-revoke-confirm');
    expect(await revokeConfirm.getAttribute('class')).toMatch(/\bdanger\b/);
    const revokeCancel = panel.getByTestId('api-key-revoke-dialog').getByRole('button', { name: 'Cancel' });
    expect((await revokeConfirm.boundingBox())!.height).toBe((await revokeCancel.boundingBox())!.height);
    // Confirmed from the keyboard: the key's Revoke button, which opened the dialog, goes with it.
    // Focus goes to the list's heading, not to the page's body, nor (QA) to the Revoke of the key
    // now in its place, one more Enter from revoking that one too; the notice says what happened.
    await panel.getByTestId('api-key-revoke-confirm').focus();
    await page.keyboard.press('Enter');
    await row.getByText('Revoked').waitFor();
    expect((await useKey(key)).status).toBe(401);
    await until(() => panel.locator('#api-keys-title').evaluate((el) => el === document.activeElement), 'focus on the list’s heading');
    const notice = panel.getByTestId('api-keys-notice');
    expect(await notice.innerText()).toBe('Key “Billing system” revoked. Requests with it are refused from now on.');
    expect(await notice.evaluate((el) => el.closest('[aria-live="polite"]') !== null)).toBe(true);
    const sandboxRow = panel.getByTestId('api-key-row').filter({ hasText: `${sandbox().apiKey!.key.slice(0, 10)}…` });
    expect(await sandboxRow.getByTestId('api-key-revoke').evaluate((el) => el === document.activeElement)).toBe(false);
    await page.screenshot({ path: 'test-results/api-keys-revoked.png' });
    await page.close();
  });

  it('closes the new key on a second Escape, or at once once it was copied', async () => {
    const page = await world.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(sandbox().sandboxUrl);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByRole('tab', { name: 'API keys' }).click();
    const create = async (name: string) => {
      await panel.getByTestId('api-keys-create').click();
      await panel.getByTestId('api-key-name').fill(name);
      await page.keyboard.press('Enter');
      await panel.getByTestId('api-key-secret').waitFor();
    };
    const dialog = panel.getByTestId('api-key-dialog');
    await create('Escape twice');
    await page.keyboard.press('Escape');
    await panel.getByTestId('api-key-leaving').waitFor();
    await page.keyboard.press('Escape');
    await panel.getByTestId('api-key-secret').waitFor({ state: 'detached' });
    expect(await dialog.evaluate((d) => (d as HTMLDialogElement).open)).toBe(false);
    expect(await panel.getByTestId('api-keys-notice').innerText()).toContain('Key “Escape twice” created.');

    // Copied with the keyboard (Ctrl+C in the key's box): nothing left to lose, Escape closes.
    await create('Copied first');
    await panel.getByTestId('api-key-secret').focus();
    await panel.getByTestId('api-key-secret').dispatchEvent('copy');
    await page.keyboard.press('Escape');
    await panel.getByTestId('api-key-secret').waitFor({ state: 'detached' });
    expect(await panel.getByTestId('api-key-leaving').count()).toBe(0);
    await page.close();
  });

  it('marks the name invalid only after a create without one, says why, and not once a name is typed', async () => {
    const page = await world.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(sandbox().sandboxUrl);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByRole('tab', { name: 'API keys' }).click();
    await panel.getByTestId('api-keys-create').click();
    const input = panel.getByTestId('api-key-name');
    const error = panel.getByTestId('api-key-name-error');
    await input.waitFor();
    // Nothing typed yet is not an error.
    expect(await input.getAttribute('aria-invalid')).toBeNull();
    expect(await error.count()).toBe(0);

    // Create key without a name: the field says it is invalid and why (announced), focus on it.
    await panel.getByTestId('api-key-submit').click();
    await error.waitFor();
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect(await input.getAttribute('aria-describedby')).toBe('api-key-name-error api-key-name-help');
    expect(await error.innerText()).toBe('Give the key a name, e.g. the system that will use it.');
    expect(await error.evaluate((el) => el.closest('[role="alert"]') !== null)).toBe(true);
    expect(await input.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.screenshot({ path: 'test-results/api-keys-name-invalid.png' });

    // A name typed fixes it at once, before any new create.
    await page.keyboard.type('B');
    await until(async () => (await input.getAttribute('aria-invalid')) === null, 'the field valid again');
    expect(await error.count()).toBe(0);
    expect(await input.getAttribute('aria-describedby')).toBe('api-key-name-help');
    await page.keyboard.press('Backspace');
    expect(await input.getAttribute('aria-invalid')).toBeNull();

    // The dialog's buttons: the panel's own, one height, the submit blue.
    const [cancel, submit] = [panel.getByTestId('api-key-dialog').getByRole('button', { name: 'Cancel' }), panel.getByTestId('api-key-submit')];
    expect(await submit.getAttribute('class')).toMatch(/\bprimary\b/);
    expect(await submit.getAttribute('type')).toBe('submit');
    expect((await submit.boundingBox())!.height).toBe((await cancel.boundingBox())!.height);
    await page.keyboard.press('Escape');
    await page.close();
  });

  it('says how long a name may be, and refuses a longer one rather than cutting it', async () => {
    // QA: a name past 80 characters was cut silently (the field's maxlength); Tandem accepts 80.
    const page = await world.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(sandbox().sandboxUrl);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByRole('tab', { name: 'API keys' }).click();
    await panel.getByTestId('api-keys-create').click();
    const input = panel.getByTestId('api-key-name');
    const help = panel.getByTestId('api-key-name-help');
    const error = panel.getByTestId('api-key-name-error');
    await input.waitFor();
    expect(await help.innerText()).toBe(`Name it after the system that will use it; up to ${KEY_NAME_MAX} characters.`);

    const long = 'Quarterly billing reconciliation between the ledger, the CRM and the payments provider (EU)';
    expect(long.length).toBeGreaterThan(KEY_NAME_MAX);
    let posts = 0;
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith('/api/panel/api-keys')) posts += 1;
    });
    await input.fill(long);
    // Whole in the field, and said at once: too long, by how much in the help.
    expect(await input.inputValue()).toBe(long);
    await error.waitFor();
    expect(await error.innerText()).toBe(KEY_NAME_TOO_LONG);
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect(await input.getAttribute('aria-describedby')).toBe('api-key-name-error api-key-name-help');
    expect(await help.innerText()).toContain(`This one has ${long.length}.`);
    await page.screenshot({ path: 'test-results/api-keys-name-too-long.png' });

    // Create key refuses it: nothing sent, focus back on the name to shorten it.
    await panel.getByTestId('api-key-submit').click();
    await until(() => input.evaluate((el) => el === document.activeElement), 'focus on the name');
    expect(posts).toBe(0);
    expect(await panel.getByTestId('api-key-secret').count()).toBe(0);

    // Shortened to the limit: valid at once, and created with every character.
    const fits = long.slice(0, KEY_NAME_MAX);
    await input.fill(fits);
    await error.waitFor({ state: 'detached' });
    expect(await input.getAttribute('aria-invalid')).toBeNull();
    await page.keyboard.press('Enter');
    await panel.getByTestId('api-key-secret').waitFor();
    expect(posts).toBe(1);
    await panel.getByTestId('api-key-done').click();
    await panel.getByTestId('api-key-row').filter({ hasText: fits }).waitFor();
    await page.close();
  });

  it('shows a plain user the keys without create or revoke', async () => {
    const location = sandbox().locations[0]!;
    const plain = sandbox().users.find((u) => u.type === 'account' && u.role === 'user' && !u.deactivated && u.locationIds.includes(location.id))!;
    const page = await world.browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(sandbox().sandboxUrl);
    await page.getByTestId('user-switcher').selectOption(plain.id);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByRole('tab', { name: 'API keys' }).click();
    await panel.getByTestId('api-keys-read-only').waitFor();
    await panel.getByTestId('api-keys-list').waitFor();
    expect(await panel.getByTestId('api-keys-create').count()).toBe(0);
    expect(await panel.getByTestId('api-key-revoke').count()).toBe(0);
    await page.close();
  });
});
