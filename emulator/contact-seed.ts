// Writes realistic contacts straight into the emulator's world (no HTTP, no webhooks), for
// benchmarks, large-paging tests and the sandbox.
import type { Emulator } from './emulator.ts';
import type { ContactDoc } from './state.ts';
import { isoAt } from './state.ts';
import { finishDoc } from './contact-model.ts';
import { recordId } from './ids.ts';

const FIRST = ['Ava', 'Liam', 'Noah', 'Emma', 'Olivia', 'Mateo', 'Sofia', 'Lucas', 'Amara', 'Kenji', 'Priya', 'Omar', 'Chloe', 'Diego', 'Hana', 'Ivan'];
const LAST = ['Smith', 'Garcia', 'Nguyen', 'Okafor', 'Müller', 'Rossi', 'Kowalski', 'Patel', 'Kim', 'Silva', 'Dubois', 'Haddad', 'Jensen', 'Tanaka'];
/** City, state and one of its area codes. */
const CITIES: [string, string, string][] = [['Austin', 'TX', '512'], ['Denver', 'CO', '303'], ['Portland', 'OR', '503'], ['Miami', 'FL', '305'], ['Boston', 'MA', '617'], ['Chicago', 'IL', '312']];
const TAGS = ['customer', 'newsletter', 'vip', 'webinar', 'trial', 'partner'];
const COMPANIES = ['Acme Corp', 'Globex', 'Initech', 'Umbrella', 'Hooli'];

/**
 * Seeds `n` contacts into a location. dateAdded values are spread one minute apart going back
 * from now, two contacts per minute so the id tiebreak of sorted listings gets exercised.
 * Every contact has a unique email and phone, also across seeds of one location. Returns the
 * stored documents, oldest first.
 */
export function seedContacts(emu: Emulator, locationId: string, n: number): ContactDoc[] {
  const now = emu.now();
  const out: ContactDoc[] = [];
  // The numbers' exchange digits start at an offset of the location's own: two locations (two
  // benchmarks in one process) do not seed the same numbers, which a Tandem that has read the one
  // would recognise from its memo of parsed numbers (server/sync/contact-model.ts).
  const exchangeOffset = [...locationId].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 800, 0);
  // A second seed of the same location goes on from the contacts it holds: new emails and numbers.
  const from = [...emu.contactIds(locationId)].length;
  for (let i = 0; i < n; i++) {
    const k = from + i;
    const first = FIRST[k % FIRST.length]!;
    const last = LAST[(k * 7) % LAST.length]!;
    const [city, state, area] = CITIES[k % CITIES.length]!;
    const added = isoAt(now - Math.ceil((n - i) / 2) * 60_000);
    const doc = finishDoc({
      id: recordId(),
      locationId,
      firstName: first,
      lastName: last,
      email: `${first}.${last}.${k}@example.com`.toLowerCase(),
      // A number of the city's area code, as people give them: not the fictional 555 range, which
      // libphonenumber checks against every country sharing +1 (about four times the work).
      phone: `+1${area}${200 + ((exchangeOffset + Math.floor(k / 10_000)) % 800)}${String(k % 10_000).padStart(4, '0')}`,
      ...(k % 3 === 0 ? { companyName: COMPANIES[k % COMPANIES.length] } : {}),
      city,
      state,
      country: 'US',
      type: 'lead',
      source: 'seed',
      tags: TAGS.filter((_, t) => (k >> t) % 3 === 0).slice(0, 3),
      customFields: [],
      createdBy: { source: 'WEB_USER', channel: 'APP', sourceId: 'seed', timestamp: added },
      dateAdded: added,
      dateUpdated: added,
    });
    emu.writeContact(doc.id, locationId, doc);
    out.push(doc);
  }
  return out;
}
