// Timestamps as the panel shows them: in the viewer's own time zone with its abbreviation
// ("Jul 10, 2024, 6:38 PM PDT"), plus relative time ("3 min ago") as secondary text.

export interface TimestampOptions {
  locale?: string;
  timeZone?: string;
  /**
   * Epoch ms of "now": a moment in the same year (in the zone) is written without its year
   * ("Dec 6, 1:49 PM UTC"), as dense tables show dates. Without it the year is always written.
   */
  omitYearIn?: number;
}

export function formatTimestamp(iso: string, options: TimestampOptions = {}): string {
  const zone = options.timeZone ? { timeZone: options.timeZone } : {};
  const date = new Date(iso);
  const yearOf = (d: Date) => new Intl.DateTimeFormat('en-US', { year: 'numeric', ...zone }).format(d);
  const sameYear = options.omitYearIn !== undefined && yearOf(date) === yearOf(new Date(options.omitYearIn));
  return new Intl.DateTimeFormat(options.locale, {
    month: 'short',
    day: 'numeric',
    ...(sameYear ? {} : { year: 'numeric' }),
    hour: 'numeric',
    minute: '2-digit',
    timeZoneName: 'short',
    ...zone,
  }).format(date);
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600_000],
  ['month', 30 * 24 * 3600_000],
  ['week', 7 * 24 * 3600_000],
  ['day', 24 * 3600_000],
  ['hour', 3600_000],
  ['minute', 60_000],
];

export function formatRelative(iso: string, now: number = Date.now(), locale?: string): string {
  const diff = Date.parse(iso) - now;
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style: 'short' });
  for (const [unit, ms] of UNITS) {
    if (Math.abs(diff) >= ms) return rtf.format(Math.round(diff / ms), unit);
  }
  // The panel's words are English; "this minute" reads oddly for something that just happened.
  return 'just now';
}
