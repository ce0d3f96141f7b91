/**
 * Event timestamps: ISO 8601 date and time, `T` or a space between them, optional fraction, and an
 * optional offset. A timestamp without an offset is taken as UTC and stored with `Z`, so the
 * same text always means the same instant whatever the server's time zone. Anything PostgreSQL
 * could refuse (year 0, 31 February, hour 24…) is refused here, before it is queued.
 *
 * Two forms ISO 8601 allows are valid but not supported, and are refused with that reason rather
 * than as "not ISO 8601": a leap second (`23:59:60`: PostgreSQL would store the next second, so
 * the event would read back a second late and sort after events that followed it) and a decimal
 * comma (`12:00:00,5`, which PostgreSQL does not read).
 */

/** The syntax, with a fraction after a point or a comma (the comma is then refused by name). */
const PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})([.,]\d{1,9})?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/** Why a timestamp that is not ISO 8601 in the supported forms is refused. */
export const NOT_ISO_8601 =
  'must be an ISO 8601 date and time, e.g. 2024-05-01T12:00:00Z (no offset means UTC)';

/** 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in epoch milliseconds. */
const FIRST_INSTANT = -62_135_596_800_000;
const END_INSTANT = 253_402_300_800_000;

/** Days in each month of a common year. */
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * Days from 1970-01-01 to the given date of the proleptic Gregorian calendar (as Date uses):
 * whole 400-year eras of 146,097 days, then the day within the era, counted from 1 March so
 * that the leap day is the last of its year.
 */
function daysSinceEpoch(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  const dayOfEra =
    yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** Checks a timestamp as publish does for every event: integer arithmetic, no Date, no text. */
export function isValidTimestamp(text: string): boolean {
  return typeof parseTimestamp(text) !== 'string';
}

/**
 * Why `text` is refused as an event timestamp, in words a client can act on (e.g. "is a leap
 * second…", "2024-02-31 is not a date"), or undefined when it is valid.
 */
export function timestampProblem(text: string): string | undefined {
  const parsed = parseTimestamp(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** Returns the timestamp in the form stored (explicit offset), or undefined if it is not valid. */
export function normalizeTimestamp(text: string): string | undefined {
  const m = parseTimestamp(text);
  if (typeof m === 'string') return undefined;
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = m;
  const offset = zulu === undefined && sign !== undefined ? `${sign}${oh}:${om ?? '00'}` : 'Z';
  return `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${fraction ?? ''}${offset}`;
}

/** The pattern's groups for a timestamp PostgreSQL stores as written, else why it is refused. */
function parseTimestamp(text: string): RegExpExecArray | string {
  const m = PATTERN.exec(text);
  if (m === null) return NOT_ISO_8601;
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (fraction !== undefined && fraction.startsWith(',')) {
    return `writes the fraction of a second with a decimal comma, which is not supported: use a point (${h}:${mi}:${s}.${fraction.slice(1)})`;
  }
  if (year < 1) return 'has year 0000; years 0001 to 9999 are supported';
  const monthDays = month === 2 && isLeapYear(year) ? 29 : (MONTH_DAYS[month - 1] ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > monthDays) return `${y}-${mo}-${d} is not a date`;
  if (second === 60 && hour <= 23 && minute <= 59) {
    return `is a leap second (${h}:${mi}:60), which is not supported: PostgreSQL would store the next second; send ${h}:${mi}:59.999999`;
  }
  if (hour > 23 || minute > 59 || second > 59) {
    return `${h}:${mi}${s === undefined ? '' : `:${s}`} is not a time of day (00:00:00 to 23:59:59)`;
  }
  let offsetMinutes = 0;
  if (zulu === undefined && sign !== undefined) {
    const hours = Number(oh);
    const minutes = om === undefined ? 0 : Number(om);
    if (hours > 15 || minutes > 59) {
      return `has the offset ${sign}${oh}:${om ?? '00'}; offsets from -15:59 to +15:59 are supported`;
    }
    offsetMinutes = (sign === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  // An offset, or a fraction the database rounds to microseconds, can push the instant out of
  // years 1–9999 (UTC), which clients could not read back.
  const instant =
    daysSinceEpoch(year, month, day) * 86_400_000 +
    ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 +
    (roundsUpToNextSecond(fraction) ? 1000 : 0);
  if (!(instant >= FIRST_INSTANT && instant < END_INSTANT)) {
    return 'is outside years 0001 to 9999 in UTC (after its offset, and rounding to microseconds)';
  }
  return m;
}

/** True for a fraction such as `.9999996` that PostgreSQL rounds to microseconds as a whole second. */
function roundsUpToNextSecond(fraction: string | undefined): boolean {
  return (
    fraction !== undefined && Math.round(Number(fraction.slice(1, 8).padEnd(7, '0')) / 10) >= 1e6
  );
}
