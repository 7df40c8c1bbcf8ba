// The marketplace consent page (CONTRACT §1.1): GET /oauth/chooselocation (and /v2/...) shows
// "Logged in as" with a user picker and the places the app can be installed; the form POSTs to
// /oauth/chooselocation/approve, which installs, mints a single-use code and redirects back.
// The emulator has no login, so any active admin can be picked. The form is meant to be filled
// by scripts too: one <form id="approve">, stable `name`s and `data-testid`s.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Emulator } from '../emulator.ts';
import { defaultInstaller, install } from '../installs.ts';
import { createAuthCode } from '../tokens.ts';
import { userHasLocation } from '../users-model.ts';
import type { Location, MarketplaceApp, User } from '../state.ts';
import type { RouteContext } from '../server.ts';

type Params = Record<string, unknown>;

interface Consent {
  app: MarketplaceApp;
  redirectUri: string;
  scopes: string[];
  state?: string;
}

class ConsentError extends Error {}

function str(v: unknown): string | undefined {
  if (Array.isArray(v)) return str(v[0]);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function strs(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string' && x !== '');
  return typeof v === 'string' && v !== '' ? [v] : [];
}

// Guess: HighLevel's texts for these errors are undocumented (CONTRACT §10).
function readConsent(emu: Emulator, p: Params, checkResponseType: boolean): Consent {
  const clientId = str(p.client_id);
  if (checkResponseType && str(p.response_type) !== 'code') throw new ConsentError('Unsupported response_type: only "code" is supported.');
  const app = clientId ? Object.values(emu.world.apps).find((a) => a.clientId === clientId) : undefined;
  if (!app) throw new ConsentError('Invalid client_id: no marketplace app has this client id.');
  const redirectUri = str(p.redirect_uri);
  if (!redirectUri || !app.redirectUris.includes(redirectUri)) {
    throw new ConsentError('Invalid redirect_uri: it must be one of the redirect URLs registered for this app.');
  }
  const requested = (str(p.scope) ?? '').split(/[\s+]+/).filter(Boolean);
  const unknown = requested.filter((s) => !app.scopes.includes(s));
  if (unknown.length) throw new ConsentError(`Invalid scope: ${unknown.join(' ')} is not allowed for this app.`);
  // Guess: no scope parameter means every scope the app registered.
  const scopes = requested.length ? [...new Set(requested)] : [...app.scopes];
  return { app, redirectUri, scopes, ...(str(p.state) ? { state: str(p.state) } : {}) };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f2f4f7;color:#101828;margin:0}
header{background:#fff;border-bottom:1px solid #e4e7ec;padding:14px 24px;font-weight:700;color:#155eef}
main{max-width:560px;margin:32px auto;background:#fff;border:1px solid #e4e7ec;border-radius:12px;padding:28px}
h1{font-size:20px;margin:0 0 4px}.muted{color:#667085;font-size:14px}ul.scopes{font-size:13px;color:#475467}
label.choice{display:flex;gap:10px;align-items:center;padding:10px 12px;border:1px solid #e4e7ec;border-radius:8px;margin:8px 0}
.bulk{margin:4px 0 8px 32px;font-size:14px}.bulk label{display:block;margin:4px 0}
.actions{display:flex;flex-direction:row-reverse;gap:8px;margin-top:20px}
button{padding:9px 16px;border-radius:8px;border:1px solid #d0d5dd;background:#fff;font-size:14px;cursor:pointer}
button.primary{background:#155eef;border-color:#155eef;color:#fff}select{padding:6px;border-radius:6px}
.error{color:#b42318}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${STYLE}</style></head><body><header>HighLevel Marketplace</header><main>${body}</main></body></html>`;
}

function errorPage(reply: FastifyReply, message: string): FastifyReply {
  return reply
    .code(400)
    .type('text/html; charset=utf-8')
    .send(page('Error', `<h1 class="error" data-testid="error">Something went wrong</h1><p data-testid="error-message">${esc(message)}</p>`));
}

/** Admins who may install: agency admins first, then sub-account admins. */
function installers(emu: Emulator): User[] {
  for (const companyId of new Set(Object.values(emu.world.locations).map((l) => l.companyId))) defaultInstaller(emu, companyId);
  const rank = (u: User) => (u.roles.type === 'agency' ? 0 : 1);
  return Object.values(emu.world.users)
    .filter((u) => u.roles.role === 'admin' && !u.deleted && !u.deactivated)
    .sort((a, b) => rank(a) - rank(b) || a.dateAdded.localeCompare(b.dateAdded));
}

function locationsOf(emu: Emulator, user: User): Location[] {
  return Object.values(emu.world.locations)
    .filter((l) => l.companyId === user.companyId && userHasLocation(user, l.id))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function reaches(emu: Emulator, user: User, locationId: string): boolean {
  const location = emu.world.locations[locationId];
  return Boolean(location && location.companyId === user.companyId && userHasLocation(user, locationId));
}

function canInstallAgency(app: MarketplaceApp, user: User): boolean {
  return app.distribution !== 'location' && user.roles.type === 'agency';
}

function renderConsent(emu: Emulator, consent: Consent, p: Params): string {
  const users = installers(emu);
  const user = users.find((u) => u.id === str(p.userId)) ?? users[0];
  const { app } = consent;
  const hidden = (name: string, value: string | undefined) =>
    value === undefined ? '' : `<input type="hidden" name="${name}" value="${esc(value)}">`;
  const userOptions = users
    .map((u) => {
      const company = emu.world.companies[u.companyId]?.name ?? u.companyId;
      const label = `${u.firstName} ${u.lastName} <${u.email}> — ${company}${u.roles.type === 'agency' ? ' (agency)' : ''}`;
      return `<option value="${u.id}"${u === user ? ' selected' : ''} data-testid="user-${u.id}">${esc(label)}</option>`;
    })
    .join('');
  let choices = '';
  if (user) {
    const locations = app.distribution === 'agency' ? [] : locationsOf(emu, user);
    choices = locations
      .map(
        (l, i) => `<label class="choice"><input type="radio" name="target" value="${l.id}" data-testid="target-${l.id}"${i === 0 ? ' checked' : ''}>
<span>${esc(l.name)} <span class="muted">${l.id}</span></span></label>`,
      )
      .join('');
    if (canInstallAgency(app, user)) {
      const company = emu.world.companies[user.companyId]?.name ?? user.companyId;
      const boxes = locationsOf(emu, user)
        .map(
          (l) => `<label><input type="checkbox" name="locationIds" value="${l.id}" checked data-testid="location-${l.id}"> ${esc(l.name)}</label>`,
        )
        .join('');
      choices += `<label class="choice"><input type="radio" name="target" value="agency" data-testid="target-agency"${locations.length ? '' : ' checked'}>
<span>${esc(company)} (agency — all locations)</span></label>
<div class="bulk" data-testid="bulk-locations">${boxes}
<label><input type="checkbox" name="installToFutureLocations" value="true" data-testid="install-future"> Install to future locations</label></div>`;
    }
    if (!choices) choices = '<p class="muted" data-testid="no-choices">This user has no location this app can be installed on.</p>';
  }
  const scopes = consent.scopes.map((s) => `<li>${esc(s)}</li>`).join('');
  const body = `<h1>Connect ${esc(app.name)}</h1>
<p class="muted">${esc(app.name)} is requesting access to:</p><ul class="scopes" data-testid="scopes">${scopes}</ul>
<form id="approve" method="post" action="/oauth/chooselocation/approve">
${hidden('client_id', app.clientId)}${hidden('redirect_uri', consent.redirectUri)}${hidden('scope', consent.scopes.join(' '))}${hidden('state', consent.state)}
<p>Logged in as <select name="userId" id="userId" data-testid="user-picker">${userOptions}</select></p>
<fieldset style="border:0;padding:0" data-testid="choices"><legend class="muted">Choose where to install</legend>${choices}</fieldset>
<div class="actions"><button type="submit" name="action" value="approve" class="primary" data-testid="approve">Allow &amp; install</button>
<button type="submit" name="action" value="cancel" data-testid="cancel">Cancel</button></div>
</form>
<script>document.getElementById('userId').addEventListener('change',function(){var u=new URL(location.href);u.searchParams.set('userId',this.value);location.href=u.toString();});</script>`;
  return page(`Connect ${app.name}`, body);
}

function redirectWith(reply: FastifyReply, redirectUri: string, params: Record<string, string | undefined>): FastifyReply {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return reply.redirect(url.toString(), 302);
}

/** Validates the chosen target, installs, and returns the authorization code. */
function approve(emu: Emulator, consent: Consent, p: Params): string {
  const { app } = consent;
  const target = str(p.target);
  if (!target) throw new ConsentError('Choose a location (target) to install the app on.');
  const userId = str(p.userId);
  // Without userId (scripts), the first admin who can reach the target installs, as the page would preselect.
  const user = userId
    ? emu.world.users[userId]
    : installers(emu).find((u) => (target === 'agency' ? u.roles.type === 'agency' : reaches(emu, u, target)));
  if (!user || user.deleted || user.deactivated || user.roles.role !== 'admin') throw new ConsentError('Unknown or inactive user: pick an admin.');
  const common = { appId: app.appId, scopes: consent.scopes, redirectUri: consent.redirectUri, userId: user.id };

  if (target === 'agency') {
    if (!canInstallAgency(app, user)) throw new ConsentError('This app cannot be installed at agency level by this user.');
    const allowed = new Set(locationsOf(emu, user).map((l) => l.id));
    const picked = strs(p.locationIds);
    if (picked.some((id) => !allowed.has(id))) throw new ConsentError('One of the chosen locations is not available to this user.');
    const future = ['true', 'on', '1'].includes(str(p.installToFutureLocations) ?? '');
    // Guess: no location ticked means all of them (scripts may omit the list).
    const inst = install(emu, {
      appId: app.appId,
      companyId: user.companyId,
      locationIds: picked.length ? picked : [...allowed],
      installToFutureLocations: future,
      userId: user.id,
    });
    return createAuthCode(emu, {
      ...common,
      userType: 'Company',
      companyId: user.companyId,
      approvedLocations: [...inst.approvedLocations],
      isBulkInstallation: true,
      installToFutureLocations: inst.installToFutureLocations,
      approveAllLocations: inst.approveAllLocations,
    }).code;
  }

  const location = emu.world.locations[target];
  if (!location || !reaches(emu, user, location.id) || app.distribution === 'agency') {
    throw new ConsentError('The chosen location is not available to this user.');
  }
  install(emu, { appId: app.appId, companyId: location.companyId, locationId: location.id, userId: user.id });
  return createAuthCode(emu, {
    ...common,
    userType: 'Location',
    companyId: location.companyId,
    locationId: location.id,
    approvedLocations: [],
    isBulkInstallation: false,
    installToFutureLocations: false,
    approveAllLocations: false,
  }).code;
}

export function registerConsentRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;
  const show = async (req: { query: unknown }, reply: FastifyReply) => {
    const q = (req.query ?? {}) as Params;
    try {
      const consent = readConsent(emu, q, true);
      return reply.type('text/html; charset=utf-8').send(renderConsent(emu, consent, q));
    } catch (err) {
      if (err instanceof ConsentError) return errorPage(reply, err.message);
      throw err;
    }
  };
  app.get('/oauth/chooselocation', show);
  app.get('/v2/oauth/chooselocation', show);

  app.post('/oauth/chooselocation/approve', async (req, reply) => {
    const p = (req.body ?? {}) as Params;
    try {
      const consent = readConsent(emu, p, false);
      // Guess: Cancel sends the browser back with the standard OAuth error.
      if (str(p.action) === 'cancel') return redirectWith(reply, consent.redirectUri, { error: 'access_denied', state: consent.state });
      const code = approve(emu, consent, p);
      return redirectWith(reply, consent.redirectUri, { code, state: consent.state });
    } catch (err) {
      if (err instanceof ConsentError) return errorPage(reply, err.message);
      throw err;
    }
  });
}
