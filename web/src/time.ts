// Times arrive as RFC 3339 instants; the viewer's zone is the browser's.

export const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const viewerFmt = new Intl.DateTimeFormat(undefined, {
  weekday: "short", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export function inViewerZone(t: string): string {
  return viewerFmt.format(new Date(t));
}

export function clock(t: string): string {
  return clockFmt.format(new Date(t));
}

// duration renders seconds as "1h2m", "3m4s", "5s".
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? (s % 60) + "s" : ""}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? Math.floor((s % 3600) / 60) + "m" : ""}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) ? Math.floor((s % 86400) / 3600) + "h" : ""}`;
}

export function age(t: string, now: number): string {
  return duration((now - Date.parse(t)) / 1000);
}
