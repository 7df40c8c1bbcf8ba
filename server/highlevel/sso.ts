// Custom-page SSO: HighLevel's parent frame hands the panel user data encrypted with the app's
// Shared Secret in CryptoJS passphrase format (CONTRACT §7). This decrypts and validates it.
//
// The format is AES-CBC with no integrity check: a user holding their own payload can splice its
// ciphertext blocks without the secret. Each seam decrypts to 16 bytes of garbage and the block
// after it to text of their choosing (`","role":"admin"`), so a lenient reader (invalid bytes read as
// U+FFFD, the last of two equal keys winning) took about one splice in ten as an admin. What
// HighLevel encrypts is JSON.stringify of a flat object: valid UTF-8, no raw C0 control characters,
// each key once, ids of letters and digits. Read strictly, a splice must repeat a key (refused), or
// overwrite one and leave its seam's garbage in the value before it, which must then be valid UTF-8
// and JSON (16 random bytes: about one chance in a million) and, in an id, of id characters; and
// sign-ins are rate-limited per address. The role it could reach is checked against HighLevel's
// listing of the location's users too (server/auth/session.ts panelAccess).
import { createDecipheriv, createHash } from 'node:crypto';
import { z } from 'zod';

/** HighLevel's ids: letters and digits (20 or 24 of them in every known case). */
const hlId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

export const ssoUserSchema = z.object({
  userId: hlId,
  companyId: hlId,
  role: z.string().regex(/^[A-Za-z_]{1,32}$/),
  type: z.enum(['agency', 'location']),
  activeLocation: hlId.optional(),
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
    plain = strictUtf8.decode(Buffer.concat([decipher.update(raw.subarray(16)), decipher.final()]));
  } catch {
    throw new SsoError();
  }
  // Raw C0 controls JSON.parse refuses itself; DEL, the C1 controls and U+FFFD JSON.stringify
  // leaves as they are, and real names hold them (U+FFFD after a bad import), so they pass.
  if (hasRepeatedKey(plain)) throw new SsoError();
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

/** Refuses invalid UTF-8 instead of reading it as U+FFFD. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Whether a key appears twice in the same object of this JSON text (JSON.parse keeps the last one,
 * which is what a splice relies on). A scan of strings and brackets; the text is parsed after this.
 */
function hasRepeatedKey(json: string): boolean {
  const keys: Set<string>[] = [];
  let i = 0;
  while (i < json.length) {
    const ch = json[i]!;
    if (ch === '{') keys.push(new Set());
    else if (ch === '}') keys.pop();
    else if (ch === '"') {
      let end = i + 1;
      while (end < json.length && json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      // A string followed by ':' is a key of the innermost open object.
      let next = end + 1;
      while (json[next] === ' ' || json[next] === '\n' || json[next] === '\r' || json[next] === '\t') next++;
      if (json[next] === ':') {
        const key = json.slice(i + 1, end);
        const open = keys.at(-1);
        if (open?.has(key)) return true;
        open?.add(key);
      }
      i = end;
    }
    i++;
  }
  return false;
}
