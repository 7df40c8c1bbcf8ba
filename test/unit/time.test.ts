// The panel's timestamps (web/lib/time.ts): the viewer's zone with its abbreviation, plus relative time.
import { describe, expect, it } from 'vitest';
import { formatRelative, formatTimestamp } from '../../web/lib/time.ts';

describe('panel time formatting', () => {
  it('writes a timestamp in the given zone with its abbreviation, as UX.md shows it', () => {
    const iso = '2024-07-11T01:38:00.000Z';
    expect(formatTimestamp(iso, { locale: 'en-US', timeZone: 'America/Los_Angeles' })).toBe('Jul 10, 2024, 6:38 PM PDT');
    expect(formatTimestamp(iso, { locale: 'en-US', timeZone: 'Europe/Berlin' })).toBe('Jul 11, 2024, 3:38 AM GMT+2');
  });

  it('leaves out the year of a moment in the current year, in the zone, when asked (dense tables)', () => {
    const la = { locale: 'en-US', timeZone: 'America/Los_Angeles' };
    const now = Date.parse('2024-12-06T13:49:00.000Z');
    expect(formatTimestamp('2024-07-11T01:38:00.000Z', { ...la, omitYearIn: now })).toBe('Jul 10, 6:38 PM PDT');
    expect(formatTimestamp('2023-07-11T01:38:00.000Z', { ...la, omitYearIn: now })).toBe('Jul 10, 2023, 6:38 PM PDT');
    // New Year's Eve in Los Angeles is already next year in UTC: the zone's year decides.
    const newYearUtc = Date.parse('2025-01-01T02:00:00.000Z');
    expect(formatTimestamp('2024-12-31T20:00:00.000Z', { ...la, omitYearIn: newYearUtc })).toBe('Dec 31, 12:00 PM PST');
    expect(formatTimestamp('2024-12-31T20:00:00.000Z', { locale: 'en-US', timeZone: 'UTC', omitYearIn: newYearUtc })).toBe('Dec 31, 2024, 8:00 PM UTC');
  });

  it('says how long ago, in the largest whole unit', () => {
    const now = Date.parse('2024-07-11T12:00:00.000Z');
    const ago = (ms: number) => formatRelative(new Date(now - ms).toISOString(), now, 'en-US');
    expect(ago(20_000)).toBe('just now');
    expect(ago(3 * 60_000)).toBe('3 min. ago');
    expect(ago(2 * 3600_000)).toBe('2 hr. ago');
    expect(ago(24 * 3600_000)).toBe('yesterday');
    expect(ago(3 * 24 * 3600_000)).toBe('3 days ago');
    expect(formatRelative(new Date(now + 5 * 60_000).toISOString(), now, 'en-US')).toBe('in 5 min.');
  });
});
