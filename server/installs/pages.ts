// The small HTML pages the install flow shows in the admin's browser: installed, cancelled, failed.
// Plain HighLevel-like cards (UX.md); every dynamic value is escaped; errors never carry a stack.
import type { Direction } from '../../db/schema.ts';
import type { GrantResult, LocationResult } from './installs.ts';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `:root{color-scheme:light}
body{margin:0;background:#f2f4f7;color:#101828;font:14px/1.5 Inter,system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:560px;margin:48px auto;background:#fff;border:1px solid #e4e7ec;border-radius:8px;padding:28px 32px}
h1{font-size:20px;margin:0 0 8px}p{margin:8px 0}.muted{color:#667085}
ul{padding:0;list-style:none;margin:16px 0}li{display:flex;gap:8px;align-items:baseline;padding:8px 0;border-top:1px solid #f2f4f7}
.dot{width:8px;height:8px;border-radius:50%;flex:none;display:inline-block;transform:translateY(-1px)}
.ok{background:#12b76a}.warn{background:#f79009}.bad{background:#f04438}
a.button{display:inline-block;margin-top:16px;padding:9px 16px;border-radius:8px;background:#155eef;color:#fff;text-decoration:none}
a.button:focus-visible{outline:2px solid #101828;outline-offset:2px}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${esc(title)} · Tandem</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

function label(l: LocationResult): string {
  return l.name ? `${esc(l.name)} <span class="muted">(${esc(l.locationId)})</span>` : esc(l.locationId);
}

function statusLine(l: LocationResult): string {
  switch (l.status) {
    case 'active':
      return `<li data-testid="location-${esc(l.locationId)}"><span class="dot ok"></span><span>${label(l)} — connected</span></li>`;
    case 'paused':
      return `<li data-testid="location-${esc(l.locationId)}"><span class="dot warn"></span><span>${label(l)} — paused in HighLevel: HighLevel reports this sub-account as inactive. Tandem connects it by itself once HighLevel reactivates it</span></li>`;
    case 'connecting':
      return `<li data-testid="location-${esc(l.locationId)}"><span class="dot warn"></span><span>${label(l)} — HighLevel is busy; Tandem finishes connecting this location by itself in a few minutes</span></li>`;
    default:
      return `<li data-testid="location-${esc(l.locationId)}"><span class="dot bad"></span><span>${label(l)} — not connected: HighLevel did not give Tandem access. Install again from this location</span></li>`;
  }
}

const WHERE =
  'In HighLevel, open the sub-account and choose <strong>Tandem</strong> in the left menu: that is where its settings live. Admins can change them; other users can look. You can close this tab.';

/** What the location's Sync settings make of it, in words (a reinstall keeps the settings it had). */
function flows(settings: { creationDirection: Direction; updateDirection: Direction }): string {
  const creation =
    settings.creationDirection === 'bidirectional'
      ? 'new contacts go both ways'
      : 'contacts created in HighLevel come into Tandem, while Tandem’s new contacts stay in Tandem';
  const updates =
    settings.updateDirection === 'bidirectional'
      ? 'edits go both ways'
      : 'edits made in HighLevel come into Tandem, while Tandem’s own edits wait (HighLevel is the source of truth)';
  return `${creation}, and ${updates}. Both are Sync settings you can change`;
}

export function installedPage(result: GrantResult, settings?: { creationDirection: Direction; updateDirection: Direction }): string {
  if (result.kind === 'location') {
    const name = result.location.name ?? result.location.locationId;
    const current = settings ?? { creationDirection: 'bidirectional', updateDirection: 'inbound' };
    return page(
      'Installed',
      `<h1 data-testid="installed">Tandem is installed on ${esc(name)}</h1>
<p data-testid="flows">Tandem now keeps this sub-account's contacts and their owners in step with Tandem's contact book: ${flows(current)}.</p>
<p>${WHERE}</p>`,
    );
  }
  const connected = result.locations.filter((l) => l.status === 'active').length;
  const future = result.installToFutureLocations ? '<p>Sub-accounts you add to the agency later get Tandem automatically.</p>' : '';
  return page(
    'Installed',
    `<h1 data-testid="installed">Tandem is installed on ${connected} of ${result.locations.length} sub-account${result.locations.length === 1 ? '' : 's'}</h1>
<ul data-testid="locations">${result.locations.map(statusLine).join('')}</ul>${future}
<p>${WHERE}</p>`,
  );
}

export function cancelledPage(installUrl: string): string {
  return page(
    'Not installed',
    `<h1 data-testid="cancelled">Tandem was not installed</h1>
<p>The installation was cancelled in HighLevel, so nothing changed.</p>
<a class="button" href="${esc(installUrl)}" data-testid="retry">Install Tandem</a>`,
  );
}

export function errorPage(message: string, installUrl: string): string {
  return page(
    'Install failed',
    `<h1 data-testid="error">Tandem could not be installed</h1>
<p data-testid="error-message">${esc(message)}</p>
<a class="button" href="${esc(installUrl)}" data-testid="retry">Try again</a>`,
  );
}
