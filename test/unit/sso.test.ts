// The emulator's custom-page SSO encryption must be what CryptoJS.AES.decrypt(payload, secret)
// reads: OpenSSL's salted format with an MD5 EVP_BytesToKey. OpenSSL's own CLI is the referee.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decryptUserData,
  decryptWithPassphrase,
  encryptUserData,
  encryptWithPassphrase,
  evpBytesToKey,
  type SsoUserData,
} from '../../emulator/sso.ts';

const user: SsoUserData = {
  userId: 'u1AbCdEfGhIjKlMnOpQr',
  companyId: 'c1AbCdEfGhIjKlMnOpQr',
  role: 'admin',
  type: 'location',
  activeLocation: 'l1AbCdEfGhIjKlMnOpQr',
  userName: 'Zoë Ñandú',
  email: 'zoe@example.com',
};

function opensslDecrypt(payload: string, secret: string): string {
  return execFileSync('openssl', ['enc', '-d', '-aes-256-cbc', '-md', 'md5', '-a', '-A', '-pass', `pass:${secret}`], {
    input: payload,
  }).toString('utf8');
}

function opensslEncrypt(plaintext: string, secret: string): string {
  return execFileSync('openssl', ['enc', '-e', '-aes-256-cbc', '-md', 'md5', '-a', '-A', '-pass', `pass:${secret}`], {
    input: plaintext,
  })
    .toString('utf8')
    .trim();
}

describe('SSO payload encryption', () => {
  it('round-trips the user data', () => {
    const payload = encryptUserData(user, 'shared-secret');
    expect(decryptUserData(payload, 'shared-secret')).toEqual(user);
  });

  it('uses a fresh salt each time and the OpenSSL "Salted__" header', () => {
    const a = encryptUserData(user, 's');
    const b = encryptUserData(user, 's');
    expect(a).not.toBe(b);
    const raw = Buffer.from(a, 'base64');
    expect(raw.subarray(0, 8).toString('latin1')).toBe('Salted__');
    expect((raw.length - 16) % 16).toBe(0);
  });

  it('is decrypted by openssl enc -aes-256-cbc -md md5 (the format CryptoJS reads)', () => {
    const secret = 'a1b2c3d4-e5f6-4711-8888-0123456789ab';
    const payload = encryptUserData(user, secret);
    expect(JSON.parse(opensslDecrypt(payload, secret))).toEqual(user);
  });

  it('decrypts what openssl encrypts', () => {
    const text = JSON.stringify(user);
    expect(decryptWithPassphrase(opensslEncrypt(text, 'p@ss word'), 'p@ss word')).toBe(text);
  });

  it('derives key and IV as EVP_BytesToKey(MD5, 1 iteration) does', () => {
    const pass = Buffer.from('secret');
    const salt = Buffer.from('0011223344556677', 'hex');
    const d1 = createHash('md5').update(Buffer.concat([pass, salt])).digest();
    const d2 = createHash('md5').update(Buffer.concat([d1, pass, salt])).digest();
    const d3 = createHash('md5').update(Buffer.concat([d2, pass, salt])).digest();
    const { key, iv } = evpBytesToKey(pass, salt);
    expect(key.toString('hex')).toBe(Buffer.concat([d1, d2]).toString('hex'));
    expect(iv.toString('hex')).toBe(d3.toString('hex'));
    // A fixed salt gives a fixed ciphertext, which openssl reproduces with the same salt
    // (OpenSSL 3 omits the "Salted__" header when the salt is given with -S).
    const payload = Buffer.from(encryptWithPassphrase('hello', 'secret', salt), 'base64');
    expect(payload.subarray(8, 16).equals(salt)).toBe(true);
    const fromOpenssl = execFileSync('openssl', ['enc', '-e', '-aes-256-cbc', '-md', 'md5', '-a', '-A', '-S', '0011223344556677', '-pass', 'pass:secret'], {
      input: 'hello',
    })
      .toString('utf8')
      .trim();
    expect(payload.subarray(16).toString('base64')).toBe(fromOpenssl);
  });

  it('fails with the wrong secret', () => {
    const payload = encryptUserData(user, 'right');
    expect(() => decryptUserData(payload, 'wrong')).toThrow();
  });
});
