// The sandbox's demo world: one agency, two locations with their custom fields, their users and
// ~60 contacts, generated from a fixed seed so every reset produces the same people (only
// HighLevel's ids differ). Addresses use reserved names (.example domains, 555-01xx phone
// numbers) so nothing is real.

export interface DemoLocation {
  key: 'dental' | 'roofing';
  name: string;
  timezone: string;
  city: string;
  state: string;
  postalCode: string;
  areaCode: string;
  contacts: number;
  /** Made in the emulated HighLevel before the contacts, as a location's owner sets them up. */
  customFields: DemoCustomField[];
  /** What the Notes field may say about a contact. */
  notes: string[];
}

/** A custom field definition in the terms of the emulator's control API (HighLevel's CustomFieldSchema). */
export interface DemoCustomField {
  name: string;
  /** Given, so contacts can name the field by key before HighLevel has an id for it. */
  fieldKey: string;
  dataType: 'NUMERICAL' | 'SINGLE_OPTIONS' | 'MULTIPLE_OPTIONS' | 'LARGE_TEXT' | 'MONETORY';
  model?: 'contact' | 'opportunity';
  placeholder?: string;
  position: number;
  picklistOptions?: string[];
}

const LEAD_SCORE: DemoCustomField = { name: 'Lead score', fieldKey: 'contact.lead_score', dataType: 'NUMERICAL', placeholder: '0-100', position: 0 };
const CONTACT_TIME: DemoCustomField = {
  name: 'Preferred contact time',
  fieldKey: 'contact.preferred_contact_time',
  dataType: 'SINGLE_OPTIONS',
  position: 50,
  picklistOptions: ['Morning', 'Afternoon', 'Evening'],
};
const NOTES: DemoCustomField = { name: 'Notes', fieldKey: 'contact.notes', dataType: 'LARGE_TEXT', placeholder: 'Anything worth knowing', position: 150 };

function interests(options: string[]): DemoCustomField {
  return { name: 'Interests', fieldKey: 'contact.interests', dataType: 'MULTIPLE_OPTIONS', position: 100, picklistOptions: options };
}

/** An opportunity field, so the location's list differs with `?model=`. */
function jobValue(name: string, fieldKey: string): DemoCustomField {
  return { name, fieldKey, dataType: 'MONETORY', model: 'opportunity', position: 0 };
}

export interface DemoUser {
  firstName: string;
  lastName: string;
  email: string;
  phone: string;
  type: 'agency' | 'account';
  role: 'admin' | 'user';
  /** Location keys; agency users see every location. */
  locations: DemoLocation['key'][];
  deactivated?: boolean;
}

export const DEMO_AGENCY = { name: 'Bluebird Growth Agency', domain: 'bluebirdgrowth.example' };

export const DEMO_LOCATIONS: DemoLocation[] = [
  {
    key: 'dental',
    name: 'Cedar Dental Studio',
    timezone: 'America/Los_Angeles',
    city: 'Portland',
    state: 'OR',
    postalCode: '97205',
    areaCode: '503',
    contacts: 50,
    customFields: [
      LEAD_SCORE,
      CONTACT_TIME,
      interests(['Cleaning', 'Whitening', 'Invisalign', 'Implants']),
      NOTES,
      jobValue('Treatment value', 'opportunity.treatment_value'),
    ],
    notes: [
      'Prefers early appointments before work.',
      'Nervous about injections; take it slowly.',
      'Asked about payment plans.',
      'Referred by a coworker.',
      'Wants a reminder text the day before.',
    ],
  },
  {
    key: 'roofing',
    name: 'Summit Roofing & Gutters',
    timezone: 'America/Denver',
    city: 'Denver',
    state: 'CO',
    postalCode: '80202',
    areaCode: '720',
    contacts: 12,
    customFields: [
      LEAD_SCORE,
      CONTACT_TIME,
      interests(['Roof repair', 'Roof replacement', 'Gutters', 'Inspection']),
      NOTES,
      jobValue('Job value', 'opportunity.job_value'),
    ],
    notes: [
      'Hail damage on the north side.',
      'Wants a quote before the rainy season.',
      'Gate code needed for access.',
      'Asked about seamless gutters.',
    ],
  },
];

export const DEMO_USERS: DemoUser[] = [
  user('Maya', 'Chen', DEMO_AGENCY.domain, '5035550100', 'agency', 'admin', ['dental', 'roofing']),
  user('Priya', 'Raman', 'cedardental.example', '5035550101', 'account', 'admin', ['dental']),
  user('Tom', 'Becker', 'cedardental.example', '5035550102', 'account', 'user', ['dental']),
  { ...user('Lena', 'Ortiz', 'cedardental.example', '5035550103', 'account', 'user', ['dental']), deactivated: true },
  user('Marcus', 'Hale', 'summitroofing.example', '7205550101', 'account', 'admin', ['roofing']),
  user('Grace', 'Kim', 'summitroofing.example', '7205550102', 'account', 'user', ['roofing']),
];

function user(
  firstName: string,
  lastName: string,
  domain: string,
  phone: string,
  type: DemoUser['type'],
  role: DemoUser['role'],
  locations: DemoLocation['key'][],
): DemoUser {
  return { firstName, lastName, email: `${firstName}.${lastName}@${domain}`.toLowerCase(), phone: `+1${phone}`, type, role, locations };
}

/** The body of `POST /contacts/` without locationId and assignedTo. */
export interface DemoContact {
  firstName: string;
  lastName: string;
  email: string;
  phone?: string;
  companyName?: string;
  address1?: string;
  city: string;
  state: string;
  postalCode: string;
  country: 'US';
  source: string;
  tags: string[];
  /** Values of the location's contact custom fields, named by key as a client may write them. */
  customFields?: { key: string; field_value: string | number | string[] }[];
}

const FIRST = [
  'Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Elijah', 'Sophia', 'James', 'Isabella', 'Lucas', 'Mia', 'Mateo',
  'Amelia', 'Ethan', 'Harper', 'Aiden', 'Evelyn', 'Daniel', 'Aaliyah', 'Samuel', 'Chloe', 'Omar', 'Zoe', 'Hiro',
  'Nora', 'Diego', 'Leah', 'Kwame', 'Ingrid', 'Rafael', 'Sana', 'Owen', 'Fatima', 'Caleb', 'Yuki', 'Julian',
];
const LAST = [
  'Nguyen', 'Garcia', 'Smith', 'Johnson', 'Patel', 'Williams', 'Brown', 'Kowalski', 'Okafor', 'Martinez',
  'Anderson', 'Silva', 'Thompson', 'Müller', "O'Brien", 'Rossi', 'Haddad', 'Larsen', 'Kim', 'Walker',
  'Delgado', 'Bennett', 'Sato', 'Fischer', 'Moreau', 'Reyes', 'Campbell', 'Novak', 'Ibrahim', 'Foster',
];
const COMPANIES = [
  'Riverbend Coffee Roasters', 'Alder & Finch Architects', 'Pioneer Logistics', 'Hawthorne Bakery',
  'Granite Peak Outfitters', 'Lumen Software', 'Willow Creek Vet Clinic', 'Northgate Realty',
  'Copperline Electric', 'Bright Path Tutoring', 'Harbor Light Yoga', 'Evergreen Landscaping',
  'Atlas Fitness', 'Blue Heron Books', 'Keystone Accounting',
];
const STREETS = ['NW Flanders St', 'SE Hawthorne Blvd', 'Larimer St', 'Colfax Ave', 'Alberta St', 'Pearl St', 'Division St'];
const SOURCES = ['Website form', 'Referral', 'Facebook ad', 'Google Ads', 'Walk-in', 'Phone call'];
const TAGS = ['new patient', 'returning', 'vip', 'newsletter', 'referral', 'follow-up', 'quote sent', 'insurance'];

/** mulberry32: tiny, fast and good enough for demo data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The same contacts for the same location on every run; phones and emails unique across locations. */
export function demoContacts(location: DemoLocation, firstPhoneIndex: number): DemoContact[] {
  const random = prng(location.key === 'dental' ? 20_240_710 : 20_240_711);
  // Custom field values draw from a sequence of their own, so the people stay those of earlier
  // sandboxes (same names, emails and phones) now that some carry values.
  const fieldRandom = prng(location.key === 'dental' ? 20_250_310 : 20_250_311);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const emails = new Set<string>();
  const contacts: DemoContact[] = [];
  for (let i = 0; i < location.contacts; i++) {
    const firstName = pick(FIRST);
    const lastName = pick(LAST);
    const companyName = random() < 0.75 ? pick(COMPANIES) : undefined;
    const local = `${firstName}.${lastName}`.toLowerCase().normalize('NFD').replace(/[^a-z.]/g, '');
    const domain = companyName ? `${companyName.toLowerCase().replace(/[^a-z]+/g, '')}.example` : 'mail.example';
    let email = `${local}@${domain}`;
    for (let n = 2; emails.has(email); n++) email = `${local}${n}@${domain}`;
    emails.add(email);
    const tags = TAGS.filter(() => random() < 0.2);
    // 555-0100..0199 are the fictional numbers; the index keeps every sandbox phone unique.
    const phoneIndex = String(firstPhoneIndex + i).padStart(2, '0');
    contacts.push({
      firstName,
      lastName,
      email,
      ...(random() < 0.85 ? { phone: `+1${location.areaCode}55501${phoneIndex}` } : {}),
      ...(companyName ? { companyName } : {}),
      ...(random() < 0.6 ? { address1: `${100 + Math.floor(random() * 9800)} ${pick(STREETS)}` } : {}),
      city: location.city,
      state: location.state,
      postalCode: location.postalCode,
      country: 'US',
      source: pick(SOURCES),
      tags,
    });
    const values = customFieldValues(location, fieldRandom);
    if (values.length) contacts[contacts.length - 1]!.customFields = values;
  }
  return contacts;
}

/** Values for some of the location's contact fields (about two contacts in three get any). */
function customFieldValues(location: DemoLocation, random: () => number): NonNullable<DemoContact['customFields']> {
  if (random() >= 0.65) return [];
  const out: NonNullable<DemoContact['customFields']> = [];
  for (const field of location.customFields) {
    if ((field.model ?? 'contact') !== 'contact' || random() >= 0.6) continue;
    const options = field.picklistOptions ?? [];
    switch (field.dataType) {
      case 'NUMERICAL':
        out.push({ key: field.fieldKey, field_value: 1 + Math.floor(random() * 100) });
        break;
      case 'SINGLE_OPTIONS':
        out.push({ key: field.fieldKey, field_value: options[Math.floor(random() * options.length)]! });
        break;
      case 'MULTIPLE_OPTIONS': {
        const chosen = options.filter(() => random() < 0.4);
        out.push({ key: field.fieldKey, field_value: chosen.length ? chosen : [options[0]!] });
        break;
      }
      case 'LARGE_TEXT':
        out.push({ key: field.fieldKey, field_value: location.notes[Math.floor(random() * location.notes.length)]! });
        break;
    }
  }
  return out;
}
