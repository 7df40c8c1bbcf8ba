// Identifier shapes HighLevel uses (CONTRACT §3.3): 20-char alphanumeric ids for records,
// 24-hex ObjectIds for apps and versions, UUID trace ids.
import { randomBytes, randomInt, randomUUID } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function recordId(): string {
  let s = '';
  for (let i = 0; i < 20; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

export function objectId(): string {
  return randomBytes(12).toString('hex');
}

export function hexToken(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

export function traceId(): string {
  return randomUUID();
}

/** `<24-hex appId>-<8 lowercase alnum>` (CONTRACT §1.1). */
export function clientIdFor(appId: string): string {
  const lower = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let suffix = '';
  for (let i = 0; i < 8; i++) suffix += lower[randomInt(lower.length)];
  return `${appId}-${suffix}`;
}
