// Timestamps as the panel shows them: in the viewer's own time zone with its abbreviation
// ("Jul 10, 2024, 6:38 PM PDT"), plus relative time ("3 min ago") as secondary text or, inside a
// sentence, in brackets; and the UTC times the server writes into its messages, in the viewer's zone.
// Always in English, whatever the browser's language: the panel's sentences are English, and a
// German "7. Dez." or "vor 2 Std." inside them would read as a mix.

/** The panel's language for dates and relative times (its copy is English); the zone stays the viewer's. */
export const PANEL_LOCALE = 'en-US';

export interface TimestampOptions {
  /** For tests; the panel always writes PANEL_LOCALE. */
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
  return new Intl.DateTimeFormat(options.locale ?? PANEL_LOCALE, {
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

/** `style`: 'short' ("in 11 hr.") where it stands alone as secondary text, 'long' ("in 11 hours") inside a sentence. */
export function formatRelative(iso: string, now: number = Date.now(), locale: string = PANEL_LOCALE, style: 'short' | 'long' = 'short'): string {
  const diff = Date.parse(iso) - now;
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style });
  for (const [unit, ms] of UNITS) {
    if (Math.abs(diff) >= ms) return rtf.format(Math.round(diff / ms), unit);
  }
  // The panel's words are English; "this minute" reads oddly for something that just happened.
  return 'just now';
}

/**
 * A moment inside a sentence: in the viewer's zone, the year only when it is not this year, and
 * how far it is from `now` ("Dec 7, 4:00 PM PST (in 11 hours)").
 */
export function formatMoment(iso: string, now: number, options: Omit<TimestampOptions, 'omitYearIn'> = {}): string {
  const diff = Date.parse(iso) - now;
  const relative = Math.abs(diff) < 60_000 ? (diff > 0 ? 'in less than a minute' : 'just now') : formatRelative(iso, now, options.locale, 'long');
  return `${formatTimestamp(iso, { ...options, omitYearIn: now })} (${relative})`;
}

/** "2026-12-08 00:00 UTC", as the server writes a moment into the text it sends (it has no viewer). */
const UTC_MOMENT = /\b(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}) UTC\b/g;

/**
 * `text` from the server with each "YYYY-MM-DD HH:MM UTC" in it written as formatMoment writes it,
 * in the viewer's zone: a status message stays the server's words, its times become the viewer's.
 */
export function localizeUtcTimes(text: string, now: number, options: Omit<TimestampOptions, 'omitYearIn'> = {}): string {
  return text.replace(UTC_MOMENT, (_, y: string, mo: string, d: string, h: string, mi: string) =>
    formatMoment(new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi))).toISOString(), now, options),
  );
}
