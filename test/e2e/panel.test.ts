// The signed-in panel in headless Chromium: inside the emulated HighLevel it signs in and shows the
// location, user and connection (and follows a Reconnect made elsewhere); plain users get the
// read-only view; a sub-account Tandem was uninstalled from gets its "not installed" screen, also
// in a panel left open at the uninstall, and Check again signs in once reinstalled; a refused
// sign-in says so, and Retry signs in once Tandem answers (both screens use the panel's buttons). T21: the browser refuses to frame the panel under a foreign origin, and refuses to frame
// any other route even under HighLevel's origin.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Frame, Locator, Page, Route } from 'playwright-core';
import { getInstallation, setInstallationStatus, upsertInstallation } from '../../db/installations.ts';
import { PAUSED_REASON, REAUTH_REASON } from '../../server/highlevel/token-provider.ts';
import { control, until } from '../helpers/emulator.ts';
import { sandboxInBrowser } from './browser.ts';

const world = sandboxInBrowser('panel');
let foreign: Server;
let foreignUrl: string;

beforeAll(async () => {
  // Someone else's site that tries to show Tandem's panel in an iframe.
  foreign = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Not HighLevel</title><h1>Not HighLevel</h1><iframe data-testid="stolen" src="${world.tandem.tandemUrl}/panel/" width="900" height="500"></iframe>`);
  });
  await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => (foreign ? foreign.close(() => resolve()) : resolve()));
});

/** A page that records its console, where Chromium reports CSP and framing refusals. */
async function openPage(width = 1440, height = 900): Promise<{ page: Page; console: string[] }> {
  const page = await world.browser.newPage({ viewport: { width, height } });
  const messages: string[] = [];
  page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
  return { page, console: messages };
}

/** The iframe inside `page`'s main frame once it has navigated somewhere. */
function childFrame(page: Page): Promise<Frame> {
  return until(() => page.mainFrame().childFrames().find((f) => f.url() !== '' && f.url() !== 'about:blank'), 'a child frame');
}

const sandbox = () => world.tandem.sandbox!;
/** The emulated HighLevel page's request for the encrypted user data it answers the panel with. */
const isSso = (url: URL) => url.pathname === '/__emulator/sso';
const demoLocation = () => sandbox().locations[0]!;
const agencyAdmin = () => sandbox().users.find((u) => u.type === 'agency' && u.role === 'admin')!;
const plainUser = () =>
  sandbox().users.find((u) => u.type === 'account' && u.role === 'user' && !u.deactivated && u.locationIds.includes(demoLocation().id))!;

/** Button.svelte's box, the same for all its variants: 36 px high (a 20 px line, 7 px padding, 1 px border). */
const BUTTON_BOX = { height: 36, padding: '7px 16px', radius: '6px', font: '500 14px' };

/** What sets a button's look apart: its box and its colours. */
function look(button: Locator) {
  return button.evaluate((el) => {
    const s = getComputedStyle(el);
    return { height: el.getBoundingClientRect().height, padding: s.padding, radius: s.borderRadius, font: `${s.fontWeight} ${s.fontSize}`, background: s.backgroundColor, border: s.borderTopColor, color: s.color };
  });
}

describe('the panel inside the emulated HighLevel', () => {
  it('signs in and shows the location, the user and the connection', async () => {
    const { page, console } = await openPage();
    await page.goto(sandbox().sandboxUrl);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByTestId('panel-signed-in').waitFor();
    expect(await panel.getByTestId('panel-location-name').innerText()).toBe(demoLocation().name);
    const user = await panel.getByTestId('panel-user').innerText();
    expect(user).toContain(agencyAdmin().name);
    expect(user).toContain('Admin');
    expect(await panel.getByTestId('panel-connection').innerText()).toContain('Connected');
    expect(await panel.getByTestId('panel-read-only').count()).toBe(0);
    expect(await panel.getByTestId('panel-outside').count()).toBe(0);
    // The panel's strict CSP (no inline styles or scripts) costs it nothing.
    expect(console.filter((m) => /Content Security Policy|Refused to/i.test(m))).toEqual([]);
    await page.screenshot({ path: 'test-results/panel-admin.png' });
    await page.close();
  });

  it('signs in when HighLevel sends the user data only after the panel stopped waiting', async () => {
    // QA: an answer after 5 s was ignored and "Open Tandem from HighLevel" stayed until a reload.
    const { page } = await openPage(1100, 700);
    const held: Route[] = [];
    let holding = true;
    await page.route(isSso, (route) => (holding ? void held.push(route) : route.continue()));
    try {
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      const outside = panel.getByTestId('panel-outside');
      await outside.waitFor({ timeout: 15_000 });
      await outside.getByRole('button', { name: 'Try again' }).waitFor({ timeout: 10_000 });
      await page.screenshot({ path: 'test-results/panel-handshake-late.png' });
      // HighLevel's answers to the requests made before the panel gave up arrive now.
      holding = false;
      expect(held.length).toBeGreaterThan(0);
      for (const route of held) await route.continue();
      await panel.getByTestId('panel-signed-in').waitFor();
      expect(await panel.getByTestId('panel-outside').count()).toBe(0);
      expect(await panel.getByTestId('panel-location-name').innerText()).toBe(demoLocation().name);
    } finally {
      await page.close();
    }
  });

  it('asks HighLevel again on Try again after it did not answer', async () => {
    const { page } = await openPage(1100, 700);
    await page.route(isSso, (route) => route.abort());
    try {
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      const outside = panel.getByTestId('panel-outside');
      await outside.waitFor({ timeout: 15_000 });
      await page.unroute(isSso);
      await outside.getByRole('button', { name: 'Try again' }).click({ timeout: 10_000 });
      await panel.getByTestId('panel-signed-in').waitFor();
      expect(await panel.getByTestId('panel-outside').count()).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('shows a plain user the read-only view after switching the emulated user', async () => {
    const { page } = await openPage();
    await page.goto(sandbox().sandboxUrl);
    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByTestId('panel-signed-in').waitFor();
    await page.getByTestId('user-switcher').selectOption(plainUser().id);
    await panel.getByTestId('panel-read-only').waitFor();
    expect(await panel.getByTestId('panel-read-only').innerText()).toContain('Only admins can change settings');
    const user = await panel.getByTestId('panel-user').innerText();
    expect(user).toContain(plainUser().name);
    expect(user).toContain('view only');
    await page.screenshot({ path: 'test-results/panel-user.png' });
    await page.close();
  });

  it('shows Needs re-auth with a Reconnect link that opens the install URL in a new tab, and Connected everywhere once reconnected elsewhere', async () => {
    const db = world.tandem.database.db;
    const { page } = await openPage(1100, 900);
    // The reason as Tandem records it when HighLevel refuses its refresh token.
    setInstallationStatus(db, demoLocation().id, 'needs_reauth', Date.now(), REAUTH_REASON.revoked);
    try {
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      const connection = panel.getByTestId('panel-connection');
      await connection.getByText('Needs re-auth').waitFor();
      const link = connection.getByRole('link', { name: /Reconnect/ });
      expect(await link.getAttribute('href')).toBe(`${world.tandem.tandemUrl}/oauth/install`);
      expect(await link.getAttribute('target')).toBe('_blank');
      expect(await link.getAttribute('rel')).toContain('noopener');
      // The reason, then one instruction: Reconnect.
      expect(await panel.getByTestId('panel-reconnect').innerText()).toContain(
        'HighLevel no longer accepts Tandem’s access to this sub-account: its authorization was revoked or has expired. Reconnect Tandem and approve this sub-account again.',
      );
      await panel.getByTestId('sync-problem').getByText('Reconnect Tandem from the banner above', { exact: false }).waitFor();
      expect(await panel.getByTestId('panel-signed-in').innerText()).toContain(REAUTH_REASON.revoked);
      await page.screenshot({ path: 'test-results/panel-needs-reauth.png' });

      // Reconnected in another tab: the page stays visible, and every part of it follows the Status card.
      setInstallationStatus(db, demoLocation().id, 'active', Date.now());
      await panel.getByTestId('sync-state').getByText('Sync on', { exact: true }).waitFor({ timeout: 15_000 });
      await until(async () => (await connection.getAttribute('data-status')) === 'active', 'the header to say Connected', 5000);
      expect(await connection.innerText()).toContain('Connected');
      await panel.getByTestId('panel-reconnect').waitFor({ state: 'detached' });
      expect(await panel.getByTestId('panel-installation-status').innerText()).toContain('Connected');
    } finally {
      setInstallationStatus(db, demoLocation().id, 'active', Date.now());
      await page.close();
    }
  });

  it('offers a plain user no Reconnect while Tandem needs re-auth: the header and the banner send them to an admin', async () => {
    // QA: the banner said "Ask an admin…" while the header still linked a plain user to the install page.
    const db = world.tandem.database.db;
    const { page } = await openPage(1100, 900);
    setInstallationStatus(db, demoLocation().id, 'needs_reauth', Date.now(), REAUTH_REASON.revoked);
    try {
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      await panel.getByTestId('panel-signed-in').waitFor();
      await page.getByTestId('user-switcher').selectOption(plainUser().id);
      await panel.getByTestId('panel-user').getByText(plainUser().name).waitFor();
      const connection = panel.getByTestId('panel-connection');
      await connection.getByText('Needs re-auth').waitFor();
      expect(await connection.getByRole('link').count()).toBe(0);
      expect(await connection.getAttribute('title')).toContain('Ask an admin');
      const banner = panel.getByTestId('panel-reconnect');
      expect(await banner.innerText()).toContain('Ask an admin of this sub-account or your agency to reconnect Tandem.');
      expect(await banner.getByRole('link').count()).toBe(0);
      await page.screenshot({ path: 'test-results/panel-needs-reauth-plain-user.png' });
    } finally {
      setInstallationStatus(db, demoLocation().id, 'active', Date.now());
      await page.close();
    }
  });

  it('says "Paused by HighLevel" in the header, with HighLevel’s reason on hover, and cuts nothing off in a 538 px frame', async () => {
    // QA: "Paused: HighLevel reports this sub-account as inact…" was cut at every width, with no tooltip.
    const db = world.tandem.database.db;
    const { page } = await openPage(768, 800);
    // Paused in HighLevel too: the loop asks a paused location now and then whether it is active
    // again (a forced token refresh), and would otherwise find it active and revive the
    // installation mid-test (seen in CI: the header then said Connected, and the wait timed out).
    await control(sandbox().highlevelUrl, 'PATCH', `/locations/${demoLocation().id}`, { active: false });
    setInstallationStatus(db, demoLocation().id, 'paused', Date.now(), PAUSED_REASON);
    try {
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      await panel.getByTestId('panel-signed-in').waitFor();
      const frame = await childFrame(page);
      const connection = panel.getByTestId('panel-connection');
      expect(await connection.getAttribute('data-status')).toBe('paused');
      await connection.getByText('Paused by HighLevel', { exact: true }).waitFor();
      expect(await connection.getAttribute('title')).toBe(PAUSED_REASON);
      // A short pill: the reason is not spelled out in it.
      expect((await connection.boundingBox())!.width).toBeLessThan(220);
      // Its reason is read out too, not only shown on hover.
      expect(await connection.textContent()).toContain(PAUSED_REASON);
      const fit = await frame.evaluate(() => {
        const header = document.querySelector('[data-testid="panel-header"]')!;
        const width = document.documentElement.clientWidth;
        // Every visible piece of the header lies inside the frame and shows all of its text.
        const pieces = [...header.querySelectorAll<HTMLElement>('*')].filter((el) => el.getClientRects().length && !el.closest('.visually-hidden'));
        return {
          width,
          page: document.documentElement.scrollWidth,
          outside: pieces.filter((el) => el.getBoundingClientRect().right > width + 0.5).map((el) => el.outerHTML.slice(0, 80)),
          cut: pieces.filter((el) => el.scrollWidth > el.clientWidth + 0.5 && getComputedStyle(el).overflowX !== 'visible').map((el) => el.outerHTML.slice(0, 80)),
        };
      });
      expect(fit.width).toBeLessThanOrEqual(540);
      expect(fit.page).toBeLessThanOrEqual(fit.width);
      expect(fit.outside).toEqual([]);
      expect(fit.cut).toEqual([]);
      await page.screenshot({ path: 'test-results/panel-paused-by-highlevel-538.png' });
    } finally {
      await control(sandbox().highlevelUrl, 'PATCH', `/locations/${demoLocation().id}`, { active: true });
      setInstallationStatus(db, demoLocation().id, 'active', Date.now());
      await page.close();
    }
  });

  it('says Tandem was uninstalled from the sub-account and how to install it again; Check again signs in once it is', async () => {
    const db = world.tandem.database.db;
    const before = getInstallation(db, demoLocation().id)!;
    const { page } = await openPage(1100, 700);
    setInstallationStatus(db, demoLocation().id, 'uninstalled', Date.now());
    try {
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      const screen = panel.getByTestId('panel-not-installed');
      await screen.waitFor();
      expect(await screen.innerText()).toContain('Tandem was uninstalled from this sub-account');
      expect(await panel.getByTestId('panel-sign-in-failed').count()).toBe(0);
      const install = screen.getByRole('link', { name: /Install Tandem again/ });
      expect(await install.getAttribute('target')).toBe('_blank');
      expect(new URL((await install.getAttribute('href'))!, world.tandem.tandemUrl).href).toBe(`${world.tandem.tandemUrl}/oauth/install`);
      // Check again is the panel's secondary button, as tall as the install link beside it.
      const check = screen.getByRole('button', { name: 'Check again' });
      expect(await look(check)).toMatchObject({ ...BUTTON_BOX, background: 'rgb(255, 255, 255)', border: 'rgb(208, 213, 221)' });
      expect((await check.boundingBox())!.height).toBe((await install.boundingBox())!.height);
      await page.screenshot({ path: 'test-results/panel-not-installed.png' });
      upsertInstallation(db, { locationId: before.locationId, companyId: before.companyId, now: Date.now() });
      await check.click();
      await panel.getByTestId('panel-signed-in').waitFor();
    } finally {
      upsertInstallation(db, { locationId: before.locationId, companyId: before.companyId, now: Date.now() });
      await page.close();
    }
  });

  it('says it could not sign in, with the panel’s primary Retry, which signs in once Tandem answers', async () => {
    const { page } = await openPage(1100, 700);
    const refuse = (route: Route) => route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal', message: 'Tandem had a problem on its side.' } }) });
    try {
      await page.route('**/api/panel/session', refuse);
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      const screen = panel.getByTestId('panel-sign-in-failed');
      await screen.waitFor();
      expect(await screen.getByRole('alert').innerText()).toBe('Tandem had a problem on its side.');
      const retry = screen.getByRole('button', { name: 'Retry' });
      expect(await look(retry)).toMatchObject({ ...BUTTON_BOX, background: 'rgb(21, 94, 239)', border: 'rgb(21, 94, 239)', color: 'rgb(255, 255, 255)' });
      await page.screenshot({ path: 'test-results/panel-sign-in-failed.png' });
      await page.unroute('**/api/panel/session');
      await retry.click();
      await panel.getByTestId('panel-signed-in').waitFor();
    } finally {
      await page.close();
    }
  });

  it('switches a panel left open to the "not installed" screen on its next request after the uninstall', async () => {
    const db = world.tandem.database.db;
    const before = getInstallation(db, demoLocation().id)!;
    const { page } = await openPage(1100, 700);
    try {
      await page.goto(sandbox().sandboxUrl);
      const panel = page.frameLocator('iframe[data-testid="app-frame"]');
      await panel.getByTestId('panel-signed-in').waitFor();
      setInstallationStatus(db, demoLocation().id, 'uninstalled', Date.now());
      // The Sync tab's next refresh (every few seconds) is that request.
      await panel.getByTestId('panel-not-installed').waitFor({ timeout: 15_000 });
      expect(await panel.getByTestId('panel-not-installed').innerText()).toContain('Tandem was uninstalled from this sub-account');
      expect(await panel.getByTestId('panel-signed-in').count()).toBe(0);
    } finally {
      upsertInstallation(db, { locationId: before.locationId, companyId: before.companyId, now: Date.now() });
      await page.close();
    }
  });
});

describe('framing (T21)', () => {
  it('is refused by the browser when a foreign origin frames the panel', async () => {
    const { page, console } = await openPage(1100, 700);
    await page.goto(foreignUrl);
    const frame = await childFrame(page);
    await until(() => console.some((m) => m.includes('frame-ancestors')), 'the CSP refusal in the console');
    expect(frame.url()).not.toContain(world.tandem.tandemUrl);
    expect(await frame.locator('[data-testid="panel-header"]').count()).toBe(0);
    await page.screenshot({ path: 'test-results/panel-foreign-frame.png' });
    await page.close();
  });

  it('refuses to frame any other route, even under the emulated HighLevel, while the panel is allowed there', async () => {
    const { page, console } = await openPage(1100, 700);
    await page.goto(`${sandbox().highlevelUrl}/`);
    const frameOf = async (path: string, id: string) => {
      await page.evaluate(
        ({ src, id }) => {
          const frame = document.createElement('iframe');
          frame.src = src;
          frame.id = id;
          document.body.append(frame);
        },
        { src: `${world.tandem.tandemUrl}${path}`, id },
      );
      return until(async () => {
        const handle = await page.$(`iframe#${id}`);
        const frame = await handle?.contentFrame();
        return frame && frame.url() !== 'about:blank' && frame.url() !== '' ? frame : undefined;
      }, `frame ${id}`);
    };
    // The panel loads under HighLevel's origin (it then waits for a handshake this page never answers).
    const panel = await frameOf('/panel/', 'panel');
    await panel.getByTestId('panel-loading').or(panel.getByTestId('panel-outside')).first().waitFor();
    expect(panel.url()).toBe(`${world.tandem.tandemUrl}/panel/`);
    // /health does not.
    const health = await frameOf('/health', 'health');
    await until(() => console.some((m) => m.includes("frame-ancestors 'none'")), 'the CSP refusal in the console');
    expect(health.url()).not.toContain(world.tandem.tandemUrl);
    expect(await health.evaluate(() => document.body.innerText)).not.toContain('"status"');
    await page.close();
  });
});
