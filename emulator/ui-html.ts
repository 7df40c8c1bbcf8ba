// HTML building blocks of the emulated HighLevel UI: escaping, the location shell (dark sidebar,
// header with user switcher) and its stylesheet. Self-contained: no external assets.

export function esc(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON safe to place inside a <script> element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export function page(title: string, body: string, extraCss = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${BASE_CSS}${extraCss}</style>
</head>
<body>
${body}
</body>
</html>`;
}

export interface ShellUser {
  id: string;
  label: string;
}

export interface SidebarLink {
  label: string;
  href?: string;
  active?: boolean;
  testId?: string;
}

export interface ShellInput {
  title: string;
  companyName: string;
  locationName: string;
  locationId: string;
  users: ShellUser[];
  selectedUserId?: string;
  /** HighLevel's built-in menu with the installed apps' custom pages among it. */
  menu: SidebarLink[];
  main: string;
  script?: string;
  /** Page-specific styles added after the shell's. */
  css?: string;
}

/** HighLevel's location view: a dark left menu, a header and the main area. */
export function locationShell(input: ShellInput): string {
  const link = (l: SidebarLink) =>
    `<li><a class="nav${l.active ? ' active' : ''}"${l.href ? ` href="${esc(l.href)}"` : ''}${l.testId ? ` data-testid="${esc(l.testId)}"` : ''}${l.active ? ' aria-current="page"' : ''}>${esc(l.label)}</a></li>`;
  const options = input.users
    .map((u) => `<option value="${esc(u.id)}"${u.id === input.selectedUserId ? ' selected' : ''}>${esc(u.label)}</option>`)
    .join('');
  const switcher = input.users.length
    ? `<label class="switch">Signed in as <select data-testid="user-switcher" aria-label="Signed-in user">${options}</select></label>`
    : `<span class="switch muted" data-testid="user-switcher">No user can open this location (create one with POST /__emulator/users)</span>`;
  const body = `
<div class="layout">
  <nav class="sidebar" data-testid="sidebar" aria-label="Main menu">
    <div class="brand"><a href="/">HighLevel <small>emulator</small></a></div>
    <div class="account"><div class="account-name">${esc(input.locationName)}</div><div class="muted">${esc(input.companyName)}</div></div>
    <ul>${input.menu.map(link).join('')}</ul>
  </nav>
  <div class="content">
    <header class="header" data-testid="header">
      <div><span class="location-name">${esc(input.locationName)}</span> <span class="muted">${esc(input.locationId)}</span></div>
      ${switcher}
    </header>
    <main class="main">${input.main}</main>
  </div>
</div>
${input.script ? `<script>${input.script}</script>` : ''}`;
  return page(input.title, body, SHELL_CSS + (input.css ?? ''));
}

/** Reloads the page with ?userId= when the switcher changes. */
export const SWITCHER_SCRIPT = `
(function () {
  var select = document.querySelector('select[data-testid="user-switcher"]');
  if (!select) return;
  select.addEventListener('change', function () {
    var url = new URL(window.location.href);
    url.searchParams.set('userId', select.value);
    window.location.href = url.toString();
  });
})();`;

const BASE_CSS = `
*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#f3f4f6}
a{color:#155eef}
.muted{color:#6b7280}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{font-weight:600;background:#f9fafb}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef2ff;padding:1px 4px;border-radius:4px;word-break:break-all}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;margin:0 0 16px}
.pad{padding:20px}
.tag{display:inline-block;background:#e0e7ff;color:#3730a3;border-radius:10px;padding:0 8px;margin:0 4px 2px 0;font-size:12px}
`;

const SHELL_CSS = `
.layout{display:flex;height:100vh}
.sidebar{width:230px;flex:none;background:#101828;color:#d0d5dd;overflow-y:auto;padding:12px 8px}
.sidebar ul{list-style:none;margin:0;padding:0}
.brand a{display:block;color:#fff;font-weight:700;font-size:16px;text-decoration:none;padding:4px 10px 12px}
.brand small{font-weight:400;color:#98a2b3}
.account{background:#1d2939;border-radius:6px;padding:8px 10px;margin:0 0 12px}
.account-name{color:#fff;font-weight:600}
.nav{display:block;padding:5px 10px;border-radius:6px;color:#d0d5dd;text-decoration:none}
a.nav[href]:hover{background:#1d2939;color:#fff}
.nav.active{background:#155eef;color:#fff}
.content{flex:1;display:flex;flex-direction:column;min-width:0}
.header{height:56px;flex:none;display:flex;align-items:center;justify-content:space-between;padding:0 20px;background:#fff;border-bottom:1px solid #e5e7eb}
.location-name{font-weight:600}
.switch select{margin-left:6px;padding:4px 6px;font:inherit}
.main{flex:1;min-height:0;overflow:auto}
.app-frame{display:block;width:100%;height:100%;border:0;background:#fff}
.notice{margin:40px auto;max-width:560px;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:24px}
`;
