// Installs Tandem the way an agency admin's browser does, for the sandbox and the tests: Tandem's
// /oauth/install → HighLevel's consent page → its approve form → Tandem's /oauth/callback, following
// each redirect by hand and carrying Tandem's state cookie. It fills the emulator's consent form
// (one <form id="approve"> with stable field names, emulator/routes/oauth-consent.ts).

export interface ConsentChoice {
  /** The installing admin (default: whoever the consent page preselects for the target). */
  userId?: string;
  /** A location id, or 'agency' for a bulk install. */
  target: string;
  /** Agency installs: the locations to approve (default: all the page offers). */
  locationIds?: string[];
  installToFutureLocations?: boolean;
  action?: 'approve' | 'cancel';
}

export interface BrowserInstall {
  /** Tandem's answer at /oauth/callback. */
  status: number;
  html: string;
  /** The consent URL Tandem redirected to (absent for marketplace-started installs). */
  consentUrl?: string;
  /** The callback URL HighLevel redirected to, with code and state. */
  callbackUrl: string;
}

/** An install started from Tandem: GET /oauth/install, then the consent and the callback. */
export async function installThroughBrowser(tandemUrl: string, choice: ConsentChoice): Promise<BrowserInstall> {
  const start = await fetch(`${tandemUrl}/oauth/install`, { redirect: 'manual' });
  const consentUrl = start.headers.get('location');
  if (start.status !== 302 || !consentUrl) throw new Error(`GET /oauth/install answered ${start.status} without a redirect`);
  const cookie = start.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  return { ...(await followConsent(consentUrl, choice, cookie)), consentUrl };
}

/**
 * From a consent URL (Tandem's redirect, or a marketplace install link without our state) to
 * Tandem's answer at the callback. `cookie` is what the browser holds for Tandem.
 */
export async function followConsent(consentUrl: string, choice: ConsentChoice, cookie = ''): Promise<BrowserInstall> {
  const page = await fetch(consentUrl, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}: ${html.slice(0, 300)}`);
  const form = new URLSearchParams();
  for (const [name, value] of hiddenInputs(html)) form.set(name, value);
  const action = /<form id="approve" method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error('consent page has no approve form');
  if (choice.userId) form.set('userId', choice.userId);
  form.set('target', choice.target);
  for (const id of choice.locationIds ?? []) form.append('locationIds', id);
  if (choice.installToFutureLocations) form.set('installToFutureLocations', 'true');
  form.set('action', choice.action ?? 'approve');

  const approved = await fetch(new URL(decodeEntities(action), consentUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redirect: 'manual',
  });
  const callbackUrl = approved.headers.get('location');
  if (approved.status !== 302 || !callbackUrl) throw new Error(`consent approve answered ${approved.status}: ${(await approved.text()).slice(0, 300)}`);

  const callback = await fetch(callbackUrl, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: callback.status, html: await callback.text(), callbackUrl };
}

function hiddenInputs(html: string): [string, string][] {
  return [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [decodeEntities(m[1]!), decodeEntities(m[2]!)]);
}

function decodeEntities(s: string): string {
  return s.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/&amp;/g, '&');
}
