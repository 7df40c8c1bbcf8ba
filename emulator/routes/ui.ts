// The emulated HighLevel UI: an index of the world, a location's custom page (the app's URL in an
// iframe, answering the REQUEST_USER_DATA handshake of CONTRACT §7), the contacts list and a contact
// page whose form saves through the API's own write path (same validation, same webhooks).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { RouteContext } from '../server.ts';
import type { Emulator } from '../emulator.ts';
import { fullName, usersOfLocation } from '../sso.ts';
import type { ContactDoc, Location, User } from '../state.ts';
import { SWITCHER_SCRIPT, esc, locationShell, page, scriptJson, type SidebarLink } from '../ui-html.ts';
import { isoAt } from '../state.ts';
import { HttpFailure } from '../http.ts';
import { parseContactWrite } from '../contact-validate.ts';
import { createContactWrite, updateContactWrite } from '../contact-writes.ts';
import { CONTACT_FORM_CSS, contactForm, errorMessages, readForm, valuesOf, writeBody, type FormValues } from '../ui-contact-page.ts';

const MENU = [
  'Launchpad',
  'Dashboard',
  'Conversations',
  'Calendars',
  'Contacts',
  'Opportunities',
  'Payments',
  'AI Agents',
  'Marketing',
  'Automation',
  'Sites',
  'Memberships',
  'Media Storage',
  'Reputation',
  'Reporting',
  'App Marketplace',
];

interface LocationQuery {
  Params: { locationId: string; appId?: string; contactId?: string };
  Querystring: { userId?: string; saved?: string };
}

export function registerUiRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { emu } = ctx;

  app.get('/', async (_req, reply) => html(reply, 200, indexPage(emu)));
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).send());

  app.get<LocationQuery>('/v2/location/:locationId/custom-page/:appId', async (req, reply) => {
    const view = locationView(emu, req.params.locationId, req.query.userId);
    if ('error' in view) return html(reply, view.status, errorPage(view.error));
    const found = emu.world.apps[req.params.appId!];
    if (!found) return html(reply, 404, errorPage(`No app ${req.params.appId}.`));
    const installed = emu.appsInstalledOn(view.location.id).some((a) => a.appId === found.appId);

    let main: string;
    let script = SWITCHER_SCRIPT;
    if (!installed) {
      main = notice(`${found.name} is not installed on this location.`, 'Install it with POST /__emulator/installs or the OAuth flow.');
    } else if (!found.customPageUrl) {
      main = notice(`${found.name} has no custom page URL.`, 'Set customPageUrl with PATCH /__emulator/apps/:appId.');
    } else {
      main = `<iframe class="app-frame" data-testid="app-frame" title="${esc(found.name)}" src="${esc(found.customPageUrl)}"></iframe>`;
      script += handshakeScript({
        appId: found.appId,
        userId: view.user?.id ?? null,
        locationId: view.location.id,
        frameOrigin: originOf(found.customPageUrl),
      });
    }
    return html(
      reply,
      200,
      locationShell({
        ...shellBase(emu, view),
        title: `${found.name} – ${view.location.name}`,
        menu: menuLinks(emu, view, 'none', found.appId),
        main,
        script,
      }),
    );
  });

  app.get<LocationQuery>('/v2/location/:locationId/contacts', async (req, reply) => {
    const view = locationView(emu, req.params.locationId, req.query.userId);
    if ('error' in view) return html(reply, view.status, errorPage(view.error));
    return html(
      reply,
      200,
      locationShell({
        ...shellBase(emu, view),
        title: `Contacts – ${view.location.name}`,
        menu: menuLinks(emu, view, 'Contacts', undefined),
        main: contactsTable(emu, view),
        script: SWITCHER_SCRIPT,
        css: CONTACT_FORM_CSS,
      }),
    );
  });

  /** The contact page (or the new-contact form) in the location shell. */
  const contactPage = (
    reply: FastifyReply,
    view: LocationView,
    status: number,
    opts: { contactId?: string; values: FormValues; errors: string[]; saved: boolean; title: string; meta?: string },
  ) => {
    const base = `/v2/location/${view.location.id}/contacts`;
    const action = withUser(opts.contactId ? `${base}/${opts.contactId}` : `${base}/new`, view);
    return html(
      reply,
      status,
      locationShell({
        ...shellBase(emu, view),
        title: `${opts.title} – ${view.location.name}`,
        menu: menuLinks(emu, view, 'Contacts', undefined),
        main: contactForm({ action, backHref: withUser(base, view), title: opts.title, values: opts.values, errors: opts.errors, saved: opts.saved, ...(opts.meta ? { meta: opts.meta } : {}) }),
        script: SWITCHER_SCRIPT,
        css: CONTACT_FORM_CSS,
      }),
    );
  };

  /** createdBy of a write made in the UI: the signed-in web user (as HighLevel records its own UI's writes). */
  const webUser = (view: LocationView) => ({ source: 'WEB_USER', channel: 'APP', sourceId: view.user?.id ?? null, timestamp: isoAt(emu.now()) });

  /** Runs a write; a HighLevel-shaped refusal becomes the form's error list. */
  const attempt = (fn: () => string): { id: string } | { status: number; errors: string[] } => {
    try {
      return { id: fn() };
    } catch (err) {
      if (err instanceof HttpFailure) return { status: err.status, errors: errorMessages(err.body) };
      throw err;
    }
  };

  app.get<LocationQuery>('/v2/location/:locationId/contacts/new', async (req, reply) => {
    const view = locationView(emu, req.params.locationId, req.query.userId);
    if ('error' in view) return html(reply, view.status, errorPage(view.error));
    return contactPage(reply, view, 200, { values: {}, errors: [], saved: false, title: 'New contact' });
  });

  app.post<LocationQuery>('/v2/location/:locationId/contacts/new', async (req, reply) => {
    const view = locationView(emu, req.params.locationId, req.query.userId);
    if ('error' in view) return html(reply, view.status, errorPage(view.error));
    const values = readForm(req.body);
    const result = attempt(() => {
      const input = parseContactWrite({ ...writeBody(values, 'create', { country: view.location.country }), locationId: view.location.id }, 'create');
      return createContactWrite(emu, view.location.id, input, webUser(view)).id;
    });
    if ('errors' in result) return contactPage(reply, view, result.status, { values, errors: result.errors, saved: false, title: 'New contact' });
    return reply.redirect(savedUrl(view, result.id), 303);
  });

  app.get<LocationQuery>('/v2/location/:locationId/contacts/:contactId', async (req, reply) => {
    const view = locationView(emu, req.params.locationId, req.query.userId);
    if ('error' in view) return html(reply, view.status, errorPage(view.error));
    const doc = emu.contact(req.params.contactId!);
    if (!doc || doc.locationId !== view.location.id) return html(reply, 404, errorPage(`No contact ${req.params.contactId} in ${view.location.name}.`));
    return contactPage(reply, view, 200, { contactId: doc.id, values: valuesOf(doc), errors: [], saved: req.query.saved === '1', title: titleOf(doc), meta: metaOf(doc) });
  });

  app.post<LocationQuery>('/v2/location/:locationId/contacts/:contactId', async (req, reply) => {
    const view = locationView(emu, req.params.locationId, req.query.userId);
    if ('error' in view) return html(reply, view.status, errorPage(view.error));
    const before = emu.contact(req.params.contactId!);
    if (!before || before.locationId !== view.location.id) return html(reply, 404, errorPage(`No contact ${req.params.contactId} in ${view.location.name}.`));
    const values = readForm(req.body);
    const result = attempt(() => updateContactWrite(emu, before, parseContactWrite(writeBody(values, 'update', { country: view.location.country }), 'update')).id);
    if ('errors' in result) {
      return contactPage(reply, view, result.status, { contactId: before.id, values, errors: result.errors, saved: false, title: titleOf(before), meta: metaOf(before) });
    }
    return reply.redirect(savedUrl(view, result.id), 303);
  });
}

function savedUrl(view: LocationView, contactId: string): string {
  const query = new URLSearchParams({ ...(view.user ? { userId: view.user.id } : {}), saved: '1' });
  return `/v2/location/${view.location.id}/contacts/${contactId}?${query}`;
}

function titleOf(doc: ContactDoc): string {
  return contactName(doc) || 'Unnamed contact';
}

function metaOf(doc: ContactDoc): string {
  return `<code data-testid="contact-id">${esc(doc.id)}</code> · updated <span data-testid="contact-updated">${esc(doc.dateUpdated)}</span>`;
}

function contactName(c: ContactDoc): string {
  return [c.firstName, c.lastName].filter(Boolean).join(' ') || (c.contactName as string | undefined) || (c.name as string | undefined) || '';
}

interface LocationView {
  location: Location;
  users: User[];
  /** The signed-in user: ?userId=, else the first user who can open the location. */
  user?: User;
}

function locationView(emu: Emulator, locationId: string, userId: string | undefined): LocationView | { status: number; error: string } {
  const location = emu.world.locations[locationId];
  if (!location) return { status: 404, error: `No location ${locationId}.` };
  const users = usersOfLocation(emu, location.id);
  const user = userId ? users.find((u) => u.id === userId) : users[0];
  if (userId && !user) return { status: 403, error: `User ${userId} cannot open location ${location.name}.` };
  return { location, users, ...(user ? { user } : {}) };
}

function shellBase(emu: Emulator, view: LocationView) {
  return {
    companyName: emu.world.companies[view.location.companyId]?.name ?? '',
    locationName: view.location.name,
    locationId: view.location.id,
    users: view.users.map((u) => ({ id: u.id, label: userLabel(u) })),
    ...(view.user ? { selectedUserId: view.user.id } : {}),
  };
}

function userLabel(user: User): string {
  const type = user.roles.type === 'agency' ? 'agency' : 'location';
  return `${fullName(user) || user.email} (${type} ${user.roles.role})`;
}

function withUser(path: string, view: LocationView): string {
  return view.user ? `${path}?userId=${encodeURIComponent(view.user.id)}` : path;
}

/** Built-in items, then the custom pages (as HighLevel lists them after its own), then Settings. */
function menuLinks(emu: Emulator, view: LocationView, active: string, activeAppId: string | undefined): SidebarLink[] {
  const builtIn = MENU.map((label) => ({
    label,
    ...(label === 'Contacts' ? { href: withUser(`/v2/location/${view.location.id}/contacts`, view) } : {}),
    ...(label === active ? { active: true } : {}),
  }));
  return [...builtIn, ...appLinks(emu, view, activeAppId), { label: 'Settings' }];
}

/** The custom pages of the apps installed on the location. */
function appLinks(emu: Emulator, view: LocationView, activeAppId: string | undefined): SidebarLink[] {
  const apps = emu.appsInstalledOn(view.location.id).filter((a) => a.customPageUrl || a.appId === activeAppId);
  if (activeAppId && !apps.some((a) => a.appId === activeAppId)) {
    const current = emu.world.apps[activeAppId];
    if (current) apps.push(current);
  }
  return apps.map((a) => ({
    label: a.name,
    href: withUser(`/v2/location/${view.location.id}/custom-page/${a.appId}`, view),
    testId: 'custom-page-link',
    ...(a.appId === activeAppId ? { active: true } : {}),
  }));
}

function originOf(url: string): string {
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? '*' : origin;
  } catch {
    return '*';
  }
}

/**
 * Answers the custom page's REQUEST_USER_DATA with the encrypted user context, and offers
 * window.exposeSessionDetails(appId) as HighLevel's custom JS does (CONTRACT §7). Only messages
 * from the app's own frame are answered, and only to the app's origin.
 */
function handshakeScript(ctx: { appId: string; userId: string | null; locationId: string; frameOrigin: string }): string {
  return `
(function () {
  var ctx = ${scriptJson(ctx)};
  var frame = document.querySelector('iframe[data-testid="app-frame"]');
  function sessionDetails(appId) {
    if (!ctx.userId) return Promise.reject(new Error('no signed-in user'));
    var query = new URLSearchParams({ appId: appId, userId: ctx.userId, locationId: ctx.locationId });
    return fetch('/__emulator/sso?' + query.toString())
      .then(function (res) {
        if (!res.ok) throw new Error('SSO request failed: HTTP ' + res.status);
        return res.json();
      })
      .then(function (body) { return body.payload; });
  }
  window.exposeSessionDetails = sessionDetails;
  window.addEventListener('message', function (event) {
    if (!frame || event.source !== frame.contentWindow) return;
    var data = event.data;
    if (typeof data === 'string') {
      try { data = JSON.parse(data); } catch (e) { return; }
    }
    if (!data || data.message !== 'REQUEST_USER_DATA') return;
    sessionDetails(ctx.appId)
      .then(function (payload) {
        frame.contentWindow.postMessage({ message: 'REQUEST_USER_DATA_RESPONSE', payload: payload }, ctx.frameOrigin);
      })
      .catch(function (err) { console.error(err); });
  });
})();`;
}

function contactsTable(emu: Emulator, view: LocationView): string {
  const base = `/v2/location/${view.location.id}/contacts`;
  const contacts = [...emu.contactIds(view.location.id)]
    .map((id) => emu.contact(id))
    .filter((c) => c !== null)
    .sort((a, b) => b.dateUpdated.localeCompare(a.dateUpdated));
  const rows = contacts
    .map((c) => {
      const name = contactName(c) || 'Unnamed contact';
      const tags = Array.isArray(c.tags) ? c.tags.map((t) => `<span class="tag">${esc(t)}</span>`).join('') : '';
      const link = `<a href="${esc(withUser(`${base}/${c.id}`, view))}" data-testid="contact-link">${esc(name)}</a>`;
      return `<tr data-contact-id="${esc(c.id)}"><td>${link}</td><td>${esc(c.email)}</td><td>${esc(c.phone)}</td><td>${tags}</td><td>${esc(c.dateUpdated)}</td></tr>`;
    })
    .join('');
  return `<div class="pad"><div class="list-head"><h2>Contacts <span class="muted">(${contacts.length})</span></h2><a class="button" href="${esc(withUser(`${base}/new`, view))}" data-testid="new-contact">+ Add contact</a></div>
<table data-testid="contacts-table"><thead><tr><th>Name</th><th>Email</th><th>Phone</th><th>Tags</th><th>Updated</th></tr></thead>
<tbody>${rows || '<tr><td colspan="5" class="muted">No contacts yet.</td></tr>'}</tbody></table></div>`;
}

function notice(title: string, hint: string): string {
  return `<div class="notice" data-testid="notice"><h2>${esc(title)}</h2><p class="muted">${esc(hint)}</p></div>`;
}

function errorPage(message: string): string {
  return page('HighLevel emulator', `<div class="notice"><h2>${esc(message)}</h2><p><a href="/">Back to the index</a></p></div>`);
}

function indexPage(emu: Emulator): string {
  const { companies, locations, users, apps } = emu.world;
  const companyCards = Object.values(companies)
    .map((company) => {
      const rows = Object.values(locations)
        .filter((l) => l.companyId === company.id)
        .map((l) => {
          const pages = emu
            .appsInstalledOn(l.id)
            .map((a) => `<a href="/v2/location/${esc(l.id)}/custom-page/${esc(a.appId)}">${esc(a.name)}</a>`)
            .join(', ');
          return `<tr><td><a href="/v2/location/${esc(l.id)}/contacts">${esc(l.name)}</a>${l.active ? '' : ' <span class="muted">(inactive)</span>'}</td><td><code>${esc(l.id)}</code></td><td><code>${esc(l.privateToken)}</code></td><td>${pages || '<span class="muted">none</span>'}</td></tr>`;
        })
        .join('');
      const userCount = Object.values(users).filter((u) => u.companyId === company.id && !u.deleted).length;
      return `<div class="card"><h3>${esc(company.name)} <span class="muted"><code>${esc(company.id)}</code> · ${userCount} user(s)</span></h3>
<table><thead><tr><th>Location</th><th>Id</th><th>Private token</th><th>Installed apps</th></tr></thead><tbody>${rows || '<tr><td colspan="4" class="muted">No locations.</td></tr>'}</tbody></table></div>`;
    })
    .join('');
  const appRows = Object.values(apps)
    .map((a) => {
      const install = `/oauth/chooselocation?${new URLSearchParams({
        response_type: 'code',
        client_id: a.clientId,
        redirect_uri: a.redirectUris[0] ?? '',
        scope: a.scopes.join(' '),
      })}`;
      return `<tr><td>${esc(a.name)}</td><td><code>${esc(a.appId)}</code><br><code>${esc(a.clientId)}</code></td><td>${esc(a.webhookUrl ?? '—')}</td><td>${esc(a.customPageUrl ?? '—')}</td><td>${esc(a.distribution)}</td><td><a href="${esc(install)}">Install (OAuth)</a></td></tr>`;
    })
    .join('');
  const body = `<div class="pad">
<h1>HighLevel emulator</h1>
<p class="muted">Control API under <code>/__emulator</code>; webhook public key at <a href="/__emulator/info">/__emulator/info</a>.</p>
<h2>Companies and locations</h2>
${companyCards || '<p class="muted">No companies yet (POST /__emulator/locations creates one).</p>'}
<h2>Apps</h2>
<table><thead><tr><th>Name</th><th>App id / client id</th><th>Webhook URL</th><th>Custom page URL</th><th>Distribution</th><th></th></tr></thead>
<tbody>${appRows || '<tr><td colspan="6" class="muted">No apps yet (POST /__emulator/apps).</td></tr>'}</tbody></table>
</div>`;
  return page('HighLevel emulator', body);
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}
