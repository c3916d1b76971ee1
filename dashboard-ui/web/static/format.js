// Formatting of numbers, durations and times for display. Every function
// accepts anything (the /stats answer is data from the network) and returns
// a string; bad input shows as an em dash rather than "NaN".

const DASH = '—';

/** num returns a finite number or null. */
export function num(v) {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

/** rate formats requests per second: one decimal below 100, none above. */
export function rate(v) {
  const n = num(v);
  if (n === null) return DASH;
  return n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US');
}

/** ms formats a duration in milliseconds with a precision that suits it. */
export function ms(v) {
  const n = num(v);
  if (n === null) return DASH;
  if (n === 0) return '0';
  if (n < 1) return n.toFixed(2);
  if (n < 10) return n.toFixed(1);
  return Math.round(n).toLocaleString('en-US');
}

/** percent formats 0..100 with one decimal unless whole. */
export function percent(v) {
  const n = num(v);
  if (n === null) return DASH;
  return (Number.isInteger(n) ? n.toString() : n.toFixed(1)) + '%';
}

/** count formats an integer count. */
export function count(v) {
  const n = num(v);
  return n === null ? DASH : Math.round(n).toLocaleString('en-US');
}

/** parseTime reads an RFC 3339 string or a Unix time in s or ms; null if neither. */
export function parseTime(v) {
  if (typeof v === 'string' && v !== '') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }
  const n = num(v);
  if (n === null || n <= 0) return null;
  return n < 1e12 ? n * 1000 : n; // seconds before ~2001-09 in ms are not plausible
}

/** ago formats an age in milliseconds: "now", "12 s ago", "3 min ago". */
export function ago(ageMs) {
  const n = num(ageMs);
  if (n === null) return DASH;
  const s = Math.max(0, Math.round(n / 1000));
  if (s < 1) return 'now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** duration formats a length of time in milliseconds: "42 s", "3 min 5 s". */
export function duration(ms) {
  const s = Math.max(0, Math.round((num(ms) ?? 0) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** clock formats a time as local HH:MM:SS. */
export function clock(t) {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return DASH;
  return d.toLocaleTimeString('en-GB', { hour12: false });
}
