// The sandbox in a real browser: the printed URL opens the emulated HighLevel, whose page frames
// Tandem's panel, and the panel completes HighLevel's postMessage handshake.
import { describe, expect, it } from 'vitest';
import { sandboxInBrowser } from './browser.ts';

const world = sandboxInBrowser('sandbox');


describe('sandbox in a browser', () => {
  it('opens the emulated HighLevel with the panel signed in inside it', async () => {
    const page = await world.browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(world.tandem.sandboxUrl!);
    const sidebar = page.getByTestId('sidebar');
    await sidebar.waitFor();
    expect(await sidebar.textContent()).toContain('Contacts');
    expect(await sidebar.textContent()).toContain('Tandem');

    const panel = page.frameLocator('iframe[data-testid="app-frame"]');
    await panel.getByTestId('panel-header').waitFor();
    await panel.getByTestId('panel-signed-in').waitFor();
    expect(await panel.getByTestId('panel-header').textContent()).toContain('Tandem');
    expect(await panel.getByTestId('panel-header').textContent()).toContain(world.tandem.sandbox!.locations[0]!.name);
    expect(await panel.getByTestId('panel-outside').count()).toBe(0);

    await page.screenshot({ path: 'test-results/sandbox.png' });
  });

  it('explains where to go when the panel is opened outside HighLevel', async () => {
    const page = await world.browser.newPage({ viewport: { width: 1100, height: 700 } });
    await page.goto(`${world.tandem.tandemUrl}/panel/`);
    await page.getByTestId('panel-outside').waitFor();
    expect(await page.getByTestId('panel-outside').innerText()).toContain('Tandem');
    await page.screenshot({ path: 'test-results/panel-outside.png' });
  });
});
