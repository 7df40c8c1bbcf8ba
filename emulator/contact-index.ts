// Finds current contacts by email or phone without scanning the location, so duplicate checks
// stay cheap in large locations. Kept up to date by the contacts API's own writes; any other
// write (seeding, reset) is noticed through emu.contactWriteSeq and triggers one rebuild.
import type { Emulator } from './emulator.ts';
import type { ContactDoc } from './state.ts';

interface Keys {
  email: Map<string, Set<string>>;
  phone: Map<string, Set<string>>;
}

interface Index {
  /** emu.contactWriteSeq the index reflects. */
  seq: number;
  byLocation: Map<string, Keys>;
}

const indexes = new WeakMap<Emulator, Index>();

export function emailKey(email: unknown): string {
  return typeof email === 'string' ? email.trim().toLowerCase() : '';
}

/** Digits only: "+1 888-888-8888" and "+18888888888" are the same phone. */
export function phoneKey(phone: unknown): string {
  return typeof phone === 'string' ? phone.replace(/\D/g, '') : '';
}

function keysOf(index: Index, locationId: string): Keys {
  let keys = index.byLocation.get(locationId);
  if (!keys) index.byLocation.set(locationId, (keys = { email: new Map(), phone: new Map() }));
  return keys;
}

function put(map: Map<string, Set<string>>, key: string, id: string, add: boolean): void {
  if (!key) return;
  let ids = map.get(key);
  if (add) {
    if (!ids) map.set(key, (ids = new Set()));
    ids.add(id);
  } else if (ids) {
    ids.delete(id);
    if (ids.size === 0) map.delete(key);
  }
}

function apply(index: Index, doc: ContactDoc, add: boolean): void {
  const keys = keysOf(index, doc.locationId);
  put(keys.email, emailKey(doc.email), doc.id, add);
  put(keys.phone, phoneKey(doc.phone), doc.id, add);
}

function current(emu: Emulator): Index {
  const existing = indexes.get(emu);
  if (existing && existing.seq === emu.contactWriteSeq) return existing;
  const index: Index = { seq: emu.contactWriteSeq, byLocation: new Map() };
  for (const id of Object.keys(emu.world.contacts)) {
    const doc = emu.contact(id);
    if (doc) apply(index, doc, true);
  }
  indexes.set(emu, index);
  return index;
}

/** Ids of current contacts of the location with this email / phone (either key may be empty). */
export function lookup(emu: Emulator, locationId: string, email: string, phone: string): { email: string[]; phone: string[] } {
  const keys = current(emu).byLocation.get(locationId);
  return {
    email: email ? [...(keys?.email.get(email) ?? [])] : [],
    phone: phone ? [...(keys?.phone.get(phone) ?? [])] : [],
  };
}

/** Call right after emu.writeContact: updates the index in place when that write was the only one since. */
export function noteWrite(emu: Emulator, before: ContactDoc | null, after: ContactDoc | null): void {
  const index = indexes.get(emu);
  if (!index) return;
  if (index.seq !== emu.contactWriteSeq - 1) {
    indexes.delete(emu);
    return;
  }
  if (before) apply(index, before, false);
  if (after) apply(index, after, true);
  index.seq = emu.contactWriteSeq;
}
