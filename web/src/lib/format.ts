// How instants and spans read on screen: local time, seconds for short spans.

const TIME = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" } as const;
const thisYear = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", ...TIME });
const otherYear = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", ...TIME });

/** "Dec 4, 21:32:55" (the year only when it is not this one), in the browser's time zone. */
export function formatDateTime(value: string | null | undefined, now: Date = new Date()): string {
  if (!value) return "—";
  const date = new Date(value);
  return (date.getFullYear() === now.getFullYear() ? thisYear : otherYear).format(date);
}

/** 0:07, 12:05, 1:02:03: a running timer's reading. */
export function formatClock(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

/** Seconds between two instants (to now when `end` is null). */
export function secondsBetween(start: string, end: string | null, now: number = Date.now()): number {
  return ((end ? Date.parse(end) : now) - Date.parse(start)) / 1000;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return "—";
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  return formatClock(seconds);
}

export function relativeTime(value: string, now: number = Date.now()): string {
  const seconds = Math.round((now - Date.parse(value)) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  return days < 30 ? `${days} d ago` : formatDateTime(value);
}

/** A JSON value as one line for a table cell. */
export function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}
