// Tandem's reading of HighLevel's custom-page user data (server/highlevel/sso.ts). The payload is
// AES-CBC with no integrity check, so whoever holds their own payload can splice ciphertext blocks
// without the Shared Secret: each seam decrypts to 16 bytes of garbage, and the block after it to
// text of their choosing. Strict reading (UTF-8 that must be valid, no repeated keys, ids of id
// characters only) is what leaves such a splice unreadable; names keep whatever JSON allows.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encryptWithPassphrase } from '../../emulator/sso.ts';
import { SsoError, decryptSsoPayload } from '../../server/highlevel/sso.ts';

const SECRET = 'the-apps-shared-secret';
const B = 16;

const plainUser = {
  userId: 'tB7kQm2xVn9pLr4sWc8d',
  companyId: 'cQ3nV8rT1yU6iO0pA5sD',
  role: 'user',
  type: 'location',
  activeLocation: 'lZ9xC4vB7nM2qW5eR8tY',
  userName: 'Tom Becker of the Night Shift at Cedars',
  email: 'tom.becker@example.com',
};

/** A salt per attempt, as each page load gets a fresh payload from HighLevel. */
const saltOf = (i: number) => createHash('sha256').update(`salt-${i}`).digest().subarray(0, 8);

/**
 * The splice: block j of the user's own plaintext (the end of their name and its closing quote,
 * followed by `,"email"…`) is replaced by a garbage block and then `","role":"admin"`. Needs only
 * the user's own payload and plaintext.
 */
function forge(payload: string, plain: string): string | undefined {
  const raw = Buffer.from(payload, 'base64');
  const head = raw.subarray(0, 16); // "Salted__" + salt
  const c = raw.subarray(16);
  const blocks = (buf: Buffer) => Array.from({ length: buf.length / B }, (_, i) => buf.subarray(i * B, (i + 1) * B));
  const cb = blocks(c);
  const p = Buffer.from(plain, 'utf8');
  const nameEnd = plain.indexOf('","email"'); // the name's closing quote
  const j = Math.floor(nameEnd / B);
  // Block j must end with that quote and start inside the name, with a block before it.
  if ((nameEnd + 1) % B !== 0 || j < 1 || nameEnd + 1 - B <= plain.indexOf('"userName":"') + 12) return undefined;
  const x = Buffer.from('","role":"admin"');
  const pj = p.subarray(j * B, (j + 1) * B);
  const spliced = Buffer.alloc(B);
  for (let i = 0; i < B; i++) spliced[i] = cb[j - 1]![i]! ^ pj[i]! ^ x[i]!;
  return Buffer.concat([head, ...cb.slice(0, j), spliced, ...cb.slice(j)]).toString('base64');
}

describe('HighLevel user data', () => {
  it('reads genuine payloads, names in any script included', () => {
    const user = { ...plainUser, userName: 'Zoë Ñandú 山田 🙂', role: 'admin' };
    expect(decryptSsoPayload(encryptWithPassphrase(JSON.stringify(user), SECRET), SECRET)).toEqual(user);
    // What JSON.stringify leaves unescaped: DEL, C1 controls, U+FFFD (a name from a bad import).
    const odd = { ...plainUser, userName: 'Del\u007f C1\u0085 Rep\uFFFD "quoted" back\\slash\ttab' };
    expect(decryptSsoPayload(encryptWithPassphrase(JSON.stringify(odd), SECRET), SECRET)).toEqual(odd);
    expect(decryptSsoPayload(encryptWithPassphrase(JSON.stringify(plainUser), SECRET), SECRET)).toEqual(plainUser);
  });

  it('never reads a spliced payload of a plain user as an admin', () => {
    const plain = JSON.stringify(plainUser);
    let forged = 0;
    const accepted: string[] = [];
    for (let i = 0; i < 300; i++) {
      const payload = encryptWithPassphrase(plain, SECRET, saltOf(i));
      const attempt = forge(payload, plain);
      if (!attempt) continue;
      forged++;
      try {
        accepted.push(decryptSsoPayload(attempt, SECRET).role);
      } catch (err) {
        expect(err).toBeInstanceOf(SsoError);
      }
    }
    expect(forged).toBe(300);
    // Read leniently (invalid bytes as U+FFFD, the last of two keys winning), about one in ten of
    // these came out as an admin.
    expect(accepted).toEqual([]);
  });

  it('refuses repeated keys, raw control characters and ids that are not ids', () => {
    const enc = (text: string) => encryptWithPassphrase(text, SECRET);
    const json = JSON.stringify(plainUser);
    const refused = [
      json.replace('"role":"user"', '"role":"user","role":"admin"'),
      json.replace('Tom Becker', 'Tom\u0007Becker'),
      json.replace('tB7kQm2xVn9pLr4sWc8d', 'tB7kQm2x"Vn9p'),
      json.replace('tB7kQm2xVn9pLr4sWc8d', 'tB7kQm2x Vn9p'),
      json.replace('"role":"user"', '"role":"ad min"'),
    ];
    for (const text of refused) expect(() => decryptSsoPayload(enc(text), SECRET), text).toThrow(SsoError);
    // Invalid UTF-8 itself.
    const bytes = Buffer.concat([Buffer.from(json.slice(0, 60)), Buffer.from([0xc3, 0x28]), Buffer.from(json.slice(60))]);
    const raw = encryptWithPassphrase(bytes.toString('latin1'), SECRET);
    expect(() => decryptSsoPayload(raw, SECRET)).toThrow(SsoError);
  });
});
