// Custom-page SSO: HighLevel's parent frame hands the panel user data encrypted with the app's
// Shared Secret in CryptoJS passphrase format (CONTRACT §7). This decrypts and validates it.
import { createDecipheriv, createHash } from 'node:crypto';
import { z } from 'zod';

export const ssoUserSchema = z.object({
  userId: z.string().min(1).max(64),
  companyId: z.string().min(1).max(64),
  role: z.string().min(1).max(32),
  type: z.enum(['agency', 'location']),
  activeLocation: z.string().min(1).max(64).optional(),
  userName: z.string().max(200).optional(),
  email: z.string().max(320).optional(),
});

export type SsoUser = z.infer<typeof ssoUserSchema>;

/** One error for every way a payload can be wrong, so a caller learns nothing from the failure. */
export class SsoError extends Error {
  constructor() {
    super('invalid user data');
  }
}

const MAX_PAYLOAD = 8192;

/** OpenSSL's EVP_BytesToKey with MD5 and one iteration: 32-byte key and 16-byte IV. */
function deriveKeyAndIv(passphrase: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
  const out: Buffer[] = [];
  let prev: Buffer = Buffer.alloc(0);
  let length = 0;
  while (length < 48) {
    prev = createHash('md5').update(Buffer.concat([prev, passphrase, salt])).digest();
    out.push(prev);
    length += prev.length;
  }
  const all = Buffer.concat(out);
  return { key: all.subarray(0, 32), iv: all.subarray(32, 48) };
}

/** Decrypts `base64("Salted__" + salt + AES-256-CBC ciphertext)` and validates the user data. */
export function decryptSsoPayload(payload: string, sharedSecret: string): SsoUser {
  if (typeof payload !== 'string' || payload.length === 0 || payload.length > MAX_PAYLOAD) throw new SsoError();
  const raw = Buffer.from(payload, 'base64');
  if (raw.length < 32 || raw.subarray(0, 8).toString('latin1') !== 'Salted__') throw new SsoError();
  const { key, iv } = deriveKeyAndIv(Buffer.from(sharedSecret, 'utf8'), raw.subarray(8, 16));
  let plain: string;
  try {
    const decipher = createDecipheriv('aes-256-cbc', key, iv);
    plain = Buffer.concat([decipher.update(raw.subarray(16)), decipher.final()]).toString('utf8');
  } catch {
    throw new SsoError();
  }
  let data: unknown;
  try {
    data = JSON.parse(plain);
  } catch {
    throw new SsoError();
  }
  const parsed = ssoUserSchema.safeParse(data);
  if (!parsed.success) throw new SsoError();
  return parsed.data;
}
