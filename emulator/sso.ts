// Custom-page SSO (CONTRACT §7): the user context HighLevel hands a custom page, encrypted the way
// CryptoJS.AES.encrypt(text, passphrase) does (OpenSSL "Salted__" format), with node:crypto only.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Emulator } from './emulator.ts';
import type { User } from './state.ts';
import { applyDueUserDeletes, userHasLocation } from './users-model.ts';

export interface SsoUserData {
  userId: string;
  companyId: string;
  role: 'admin' | 'user';
  /** 'agency' for agency users, 'location' for sub-account users (see CONTRACT §7 caveat). */
  type: 'agency' | 'location';
  /** The location whose page asked; present only in location context. */
  activeLocation?: string;
  userName: string;
  email: string;
}

const MAGIC = Buffer.from('Salted__');

/** OpenSSL's EVP_BytesToKey with MD5 and one iteration: D_i = MD5(D_{i-1} || pass || salt). */
export function evpBytesToKey(passphrase: Buffer, salt: Buffer, keyLen = 32, ivLen = 16): { key: Buffer; iv: Buffer } {
  const blocks: Buffer[] = [];
  let total = 0;
  let prev: Buffer = Buffer.alloc(0);
  while (total < keyLen + ivLen) {
    prev = createHash('md5').update(Buffer.concat([prev, passphrase, salt])).digest();
    blocks.push(prev);
    total += prev.length;
  }
  const all = Buffer.concat(blocks);
  return { key: all.subarray(0, keyLen), iv: all.subarray(keyLen, keyLen + ivLen) };
}

/** base64("Salted__" + 8-byte salt + AES-256-CBC/PKCS#7 ciphertext), as CryptoJS produces. */
export function encryptWithPassphrase(plaintext: string, passphrase: string, salt: Buffer = randomBytes(8)): string {
  const { key, iv } = evpBytesToKey(Buffer.from(passphrase, 'utf8'), salt);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([MAGIC, salt, ciphertext]).toString('base64');
}

/** The inverse of encryptWithPassphrase; throws on a wrong passphrase or a malformed payload. */
export function decryptWithPassphrase(payload: string, passphrase: string): string {
  const raw = Buffer.from(payload, 'base64');
  if (raw.length < 32 || !raw.subarray(0, 8).equals(MAGIC)) throw new Error('not an OpenSSL salted payload');
  const salt = raw.subarray(8, 16);
  const { key, iv } = evpBytesToKey(Buffer.from(passphrase, 'utf8'), salt);
  const decipher = createDecipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([decipher.update(raw.subarray(16)), decipher.final()]).toString('utf8');
}

export function encryptUserData(data: SsoUserData, sharedSecret: string): string {
  return encryptWithPassphrase(JSON.stringify(data), sharedSecret);
}

export function decryptUserData(payload: string, sharedSecret: string): SsoUserData {
  return JSON.parse(decryptWithPassphrase(payload, sharedSecret)) as SsoUserData;
}

/**
 * Whether HighLevel would show this location to the user (the users model's rule: assigned
 * locations, or every location for an agency user assigned none). Deleted and deactivated users
 * see nothing: they cannot sign in.
 */
export function canSeeLocation(emu: Emulator, user: User, locationId: string): boolean {
  const location = emu.world.locations[locationId];
  if (!location || user.deleted || user.deactivated || user.companyId !== location.companyId) return false;
  return userHasLocation(user, locationId);
}

/** The users who may open a location, agency users first, then by name. */
export function usersOfLocation(emu: Emulator, locationId: string): User[] {
  applyDueUserDeletes(emu);
  return Object.values(emu.world.users)
    .filter((u) => canSeeLocation(emu, u, locationId))
    .sort(
      (a, b) =>
        (a.roles.type === b.roles.type ? 0 : a.roles.type === 'agency' ? -1 : 1) ||
        (a.roles.role === b.roles.role ? 0 : a.roles.role === 'admin' ? -1 : 1) ||
        fullName(a).localeCompare(fullName(b)),
    );
}

export function fullName(user: User): string {
  return `${user.firstName} ${user.lastName}`.trim();
}

/** The user context for a custom page opened inside a location. */
export function userDataFor(user: User, locationId: string): SsoUserData {
  return {
    userId: user.id,
    companyId: user.companyId,
    role: user.roles.role,
    type: user.roles.type === 'agency' ? 'agency' : 'location',
    activeLocation: locationId,
    userName: fullName(user),
    email: user.email,
  };
}
