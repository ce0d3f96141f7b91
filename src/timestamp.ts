/**
 * Event timestamps: ISO 8601 date and time, `T` or a space between them, optional fraction, and an
 * optional offset. A timestamp without an offset is taken as UTC and stored with `Z`, so the
 * same text always means the same instant whatever the server's time zone. Anything PostgreSQL
 * could refuse (year 0, 31 February, hour 24…) is refused here, before it is queued.
 */

const PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/** 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in epoch milliseconds. */
const FIRST_INSTANT = -62_135_596_800_000;
const END_INSTANT = 253_402_300_800_000;

/** Returns the timestamp in the form stored (explicit offset), or undefined if it is not valid. */
export function normalizeTimestamp(text: string): string | undefined {
  const m = PATTERN.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  // Date.UTC rolls 31 February over to March; a day that changes is not a real date.
  const probe = new Date(Date.UTC(2000, month - 1, day));
  probe.setUTCFullYear(year);
  if (probe.getUTCDate() !== day) return undefined;
  let offset = 'Z';
  if (zulu === undefined && sign !== undefined) {
    const offsetHours = Number(oh);
    const offsetMinutes = om === undefined ? 0 : Number(om);
    if (offsetHours > 15 || offsetMinutes > 59) return undefined;
    offset = `${sign}${oh}:${om ?? '00'}`;
  }
  const normalized = `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${fraction ?? ''}${offset}`;
  // An offset, or a fraction the database rounds to microseconds, can push the instant out of
  // years 1–9999 (UTC), which clients could not read back.
  const wholeSeconds = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${offset}`);
  const instant = wholeSeconds + (roundsUpToNextSecond(fraction) ? 1000 : 0);
  if (!(instant >= FIRST_INSTANT && instant < END_INSTANT)) return undefined;
  return normalized;
}

/** True for a fraction such as `.9999996` that PostgreSQL rounds to microseconds as a whole second. */
function roundsUpToNextSecond(fraction: string | undefined): boolean {
  return (
    fraction !== undefined && Math.round(Number(fraction.slice(1, 8).padEnd(7, '0')) / 10) >= 1e6
  );
}
