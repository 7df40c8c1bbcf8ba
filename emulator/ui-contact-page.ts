// The emulated HighLevel contact page: a form for one contact (or a new one) and how its
// urlencoded answer becomes the same write body the public API validates.
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import type { ContactDoc } from './state.ts';
import { esc } from './ui-html.ts';

export const FORM_FIELDS = [
  { key: 'firstName', label: 'First name', type: 'text' },
  { key: 'lastName', label: 'Last name', type: 'text' },
  { key: 'email', label: 'Email', type: 'email' },
  { key: 'phone', label: 'Phone', type: 'tel' },
  { key: 'companyName', label: 'Business name', type: 'text' },
  { key: 'tags', label: 'Tags (comma separated)', type: 'text' },
] as const;

export type FormValues = Partial<Record<(typeof FORM_FIELDS)[number]['key'], string>>;

/** The form's values for a stored contact. */
export function valuesOf(doc: ContactDoc): FormValues {
  const s = (v: unknown) => (typeof v === 'string' ? v : '');
  return {
    firstName: s(doc.firstName),
    lastName: s(doc.lastName),
    email: s(doc.email),
    phone: s(doc.phone),
    companyName: s(doc.companyName),
    tags: Array.isArray(doc.tags) ? doc.tags.join(', ') : '',
  };
}

/** The posted form, as strings (anything else the browser sent is ignored). */
export function readForm(raw: unknown): FormValues {
  const body = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const out: FormValues = {};
  for (const { key } of FORM_FIELDS) if (typeof body[key] === 'string') out[key] = body[key];
  return out;
}

/**
 * The API write body for the form: on update an emptied field is cleared (null), on create it is
 * left out, as HighLevel's own contact form does (guess). A phone the form can read in the
 * location's country is saved in E.164, as HighLevel's contact form does: a contact made in its CRM
 * UI reads back `+18887772222` (highlevel-api-docs issue #289); what the API stores is not
 * established, so the API path keeps a phone as sent.
 */
export function writeBody(values: FormValues, kind: 'create' | 'update', opts: { country?: string } = {}): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const { key } of FORM_FIELDS) {
    const value = values[key];
    if (value === undefined) continue;
    if (key === 'tags') {
      body.tags = value.split(',').map((t) => t.trim()).filter(Boolean);
      continue;
    }
    const trimmed = value.trim();
    if (trimmed) body[key] = key === 'phone' ? asE164(trimmed, opts.country) : trimmed;
    else if (kind === 'update') body[key] = null;
  }
  return body;
}

export function contactForm(input: {
  action: string;
  backHref: string;
  title: string;
  values: FormValues;
  errors: string[];
  saved: boolean;
  meta?: string;
}): string {
  const errors = input.errors.length
    ? `<div class="form-errors" role="alert" data-testid="form-errors"><strong>The contact was not saved.</strong><ul>${input.errors.map((e) => `<li>${esc(e)}</li>`).join('')}</ul></div>`
    : '';
  const saved = input.saved ? `<div class="form-saved" role="status" data-testid="saved-notice">Contact saved.</div>` : '';
  const fields = FORM_FIELDS.map(
    (f) =>
      `<label class="field"><span>${esc(f.label)}</span><input type="${f.type}" name="${f.key}" value="${esc(input.values[f.key] ?? '')}" data-testid="contact-${f.key}"></label>`,
  ).join('');
  return `<div class="pad">
<p><a href="${esc(input.backHref)}" data-testid="back-to-contacts">← Contacts</a></p>
<div class="card contact-card">
<h2 data-testid="contact-title">${esc(input.title)}</h2>
${input.meta ? `<p class="muted">${input.meta}</p>` : ''}
${saved}${errors}
<form method="post" action="${esc(input.action)}" data-testid="contact-form">
<div class="fields">${fields}</div>
<div class="actions"><button type="submit" class="primary" data-testid="contact-save">Save</button> <a class="secondary" href="${esc(input.backHref)}">Cancel</a></div>
</form>
</div>
</div>`;
}

/** Messages of a HighLevel-shaped error body (422 has an array). */
export function errorMessages(body: Record<string, unknown>): string[] {
  const m = body.message;
  return Array.isArray(m) ? m.map(String) : [String(m ?? 'The contact could not be saved.')];
}

export const CONTACT_FORM_CSS = `
.contact-card{max-width:640px}
.contact-card h2{margin:0 0 4px}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:12px 16px;margin:16px 0}
.field{display:flex;flex-direction:column;gap:4px;font-weight:500}
.field input{font:inherit;padding:7px 10px;border:1px solid #d0d5dd;border-radius:6px;font-weight:400}
.field input:focus{outline:2px solid #155eef;outline-offset:0;border-color:#155eef}
.actions{display:flex;gap:8px;align-items:center}
button.primary,a.button{font:inherit;font-weight:600;background:#155eef;color:#fff;border:0;border-radius:6px;padding:8px 16px;cursor:pointer;text-decoration:none}
a.secondary{font:inherit;background:#fff;color:#344054;border:1px solid #d0d5dd;border-radius:6px;padding:7px 14px;text-decoration:none}
.form-errors{background:#fef3f2;border:1px solid #fecdca;color:#b42318;border-radius:6px;padding:8px 12px;margin:12px 0}
.form-errors ul{margin:4px 0 0;padding-left:18px}
.form-saved{background:#ecfdf3;border:1px solid #abefc6;color:#067647;border-radius:6px;padding:8px 12px;margin:12px 0}
.list-head{display:flex;justify-content:space-between;align-items:center}
`;

/**
 * The phone in E.164 when it reads as a possible number (in `country` when it has no +; a number a
 * phone field would take, such as a 555 exchange), else as typed; with an extension too, as
 * E.164 has no place for it and how HighLevel keeps one is not known.
 */
function asE164(phone: string, country = 'US'): string {
  const parsed = parsePhoneNumberFromString(phone, country as CountryCode);
  return parsed?.isPossible() && !parsed.ext ? parsed.number : phone;
}
