// The panel's timestamps (web/lib/time.ts): the viewer's zone with its abbreviation, plus relative
// time; and the UTC times inside the server's messages, written in the viewer's zone.
import { afterEach, describe, expect, it } from 'vitest';
import { formatMoment, formatRelative, formatTimestamp, localizeUtcTimes } from '../../web/lib/time.ts';

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

describe('a moment inside a sentence', () => {
  const la = { locale: 'en-US', timeZone: 'America/Los_Angeles' };
  const now = Date.parse('2026-12-07T12:32:00.000Z');

  it('is in the zone, with how far it is in whole words', () => {
    expect(formatMoment('2026-12-08T00:00:00.000Z', now, la)).toBe('Dec 7, 4:00 PM PST (in 11 hours)');
    expect(formatMoment('2026-12-07T12:27:00.000Z', now, la)).toBe('Dec 7, 4:27 AM PST (5 minutes ago)');
    expect(formatMoment('2026-12-07T12:32:20.000Z', now, la)).toBe('Dec 7, 4:32 AM PST (in less than a minute)');
    expect(formatMoment('2027-01-02T00:00:00.000Z', now, la)).toBe('Jan 1, 2027, 4:00 PM PST (in 4 weeks)');
    expect(formatRelative('2026-12-08T00:00:00.000Z', now, 'en-US', 'long')).toBe('in 11 hours');
  });

  it('takes each "YYYY-MM-DD HH:MM UTC" of a server message into the viewer’s zone (QA: the status strip said UTC)', () => {
    const text =
      'HighLevel has been refusing Tandem’s requests as too many since 2026-12-07 12:27 UTC; changes wait, and Tandem tries again at 2026-12-08 00:00 UTC.';
    expect(localizeUtcTimes(text, now, la)).toBe(
      'HighLevel has been refusing Tandem’s requests as too many since Dec 7, 4:27 AM PST (5 minutes ago); changes wait, and Tandem tries again at Dec 7, 4:00 PM PST (in 11 hours).',
    );
    expect(localizeUtcTimes('2026-12-08 00:00 UTC', now, { locale: 'en-US', timeZone: 'Europe/Berlin' })).toBe('Dec 8, 1:00 AM GMT+1 (in 11 hours)');
    // Anything else is left as it is.
    expect(localizeUtcTimes('Tandem could not reach HighLevel.', now, la)).toBe('Tandem could not reach HighLevel.');
  });
});

describe('in a browser set to another language', () => {
  const { DateTimeFormat, RelativeTimeFormat } = Intl;
  const intl = Intl as unknown as Record<'DateTimeFormat' | 'RelativeTimeFormat', unknown>;
  afterEach(() => {
    intl.DateTimeFormat = DateTimeFormat;
    intl.RelativeTimeFormat = RelativeTimeFormat;
  });
  /** As a browser whose language is German formats when it is given no locale. */
  function germanByDefault(): void {
    // Called with `new`, as the panel's code calls them: function expressions, not arrows.
    intl.DateTimeFormat = function (locale?: Intl.LocalesArgument, options?: Intl.DateTimeFormatOptions) {
      return new DateTimeFormat(locale ?? 'de-DE', options);
    };
    intl.RelativeTimeFormat = function (locale?: Intl.LocalesArgument, options?: Intl.RelativeTimeFormatOptions) {
      return new RelativeTimeFormat(locale ?? 'de-DE', options);
    };
  }

  it('still writes times in English, as the panel’s sentences are, in the viewer’s zone, not “7. Dez. 2026, 15:03 MEZ” or “vor 2 Std.”', () => {
    germanByDefault();
    const now = Date.parse('2026-12-07T16:03:00.000Z');
    expect(formatTimestamp('2026-12-07T14:03:00.000Z', { timeZone: 'Europe/Berlin' })).toBe('Dec 7, 2026, 3:03 PM GMT+1');
    expect(formatRelative('2026-12-07T14:03:00.000Z', now)).toBe('2 hr. ago');
    expect(formatMoment('2026-12-07T18:03:00.000Z', now, { timeZone: 'Europe/Berlin' })).toBe('Dec 7, 7:03 PM GMT+1 (in 2 hours)');
  });
});
