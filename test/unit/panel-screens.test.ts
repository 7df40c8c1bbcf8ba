// The panel's sign-in screens, rendered on the server (svelte/server): each says what happened and
// what to do for its case. Opened from HighLevel's agency view, the panel says to open Tandem inside
// a sub-account, not "contact support"; a sub-account Tandem was never installed on is not told to
// install it "again" (QA).
import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import { NOT_INSTALLED } from '../../server/auth/session.ts';
import { NEVER_INSTALLED, NO_SUB_ACCOUNT } from '../../server/routes/panel-api.ts';
import NotInstalled from '../../web/lib/NotInstalled.svelte';
import SignInFailed from '../../web/lib/SignInFailed.svelte';

const nothing = async () => {};
/** The rendered text, tags and comments dropped, white space folded. */
const text = (html: string) =>
  html
    .replace(/<!--.*?-->/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

describe('the not-installed screen', () => {
  it('asks to install Tandem, never "again", on a sub-account it was never installed on', () => {
    const { body } = render(NotInstalled, { props: { message: NEVER_INSTALLED.message, code: NEVER_INSTALLED.code, oncheck: nothing } });
    const words = text(body);
    expect(words).toContain('Tandem is not installed on this sub-account.');
    expect(words).toContain('To use Tandem here, an admin of this sub-account or your agency installs it and approves this sub-account');
    expect(words).toContain('Install Tandem (opens in a new tab)');
    // "Check again" is the one "again": it checks again, it does not install again.
    expect(words.replaceAll('Check again', '')).not.toContain('again');
  });

  it('asks to install Tandem again where it was uninstalled', () => {
    const { body } = render(NotInstalled, { props: { message: NOT_INSTALLED.uninstalled, code: NOT_INSTALLED.code, oncheck: nothing } });
    const words = text(body);
    expect(words).toContain('Tandem was uninstalled from this sub-account');
    expect(words).toContain('To use Tandem here again, an admin of this sub-account or your agency installs it again');
    expect(words).toContain('Install Tandem again (opens in a new tab)');
  });
});

describe('the sign-in screens', () => {
  it('says to open Tandem inside a sub-account when HighLevel opened it from the agency view, with nothing to retry', () => {
    const { body } = render(SignInFailed, { props: { message: NO_SUB_ACCOUNT.message, code: NO_SUB_ACCOUNT.code, onretry: nothing } });
    const words = text(body);
    expect(body).toContain('data-testid="panel-agency-view"');
    expect(words).toContain('Open Tandem inside a sub-account');
    expect(words).toContain('Switch to the sub-account whose contacts you want to sync, then choose Tandem in its left menu.');
    expect(words).not.toContain('Could not sign you in');
    expect(words).not.toContain('support');
    expect(body).not.toContain('<button');
  });

  it('says a refused sign-in could not sign you in, with Retry', () => {
    const { body } = render(SignInFailed, { props: { message: 'Tandem could not verify your HighLevel sign-in.', code: 'sign_in_failed', onretry: nothing } });
    const words = text(body);
    expect(body).toContain('data-testid="panel-sign-in-failed"');
    expect(words).toContain('Could not sign you in Tandem could not verify your HighLevel sign-in.');
    expect(words).toContain('Retry');
  });
});
