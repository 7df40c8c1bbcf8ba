// The operator's view of installations (`npm run tandem -- installations`): rows from the database
// joined with token expiry — read without opening any token — rendered as a table or JSON.
import type { Db } from '../../db/client.ts';
import { listInstallations } from '../../db/installations.ts';
import type { InstallationStatus } from '../../db/schema.ts';
import { tokenExpiries } from '../../db/tokens.ts';

export interface InstallationRow {
  locationId: string;
  name: string | null;
  companyId: string;
  status: InstallationStatus;
  statusReason: string | null;
  /** Expiry of the location's own access token; null when Tandem holds none. */
  tokenExpiresAt: number | null;
  installedAt: number;
  updatedAt: number;
  uninstalledAt: number | null;
  whitelabelDomain: string | null;
}

export function installationRows(db: Db): InstallationRow[] {
  const expiry = new Map(tokenExpiries(db).filter((t) => t.owner.type === 'location').map((t) => [t.owner.id, t.expiresAt]));
  return listInstallations(db).map((i) => ({
    locationId: i.locationId,
    name: i.locationName,
    companyId: i.companyId,
    status: i.status,
    statusReason: i.statusReason,
    tokenExpiresAt: expiry.get(i.locationId) ?? null,
    installedAt: i.installedAt,
    updatedAt: i.updatedAt,
    uninstalledAt: i.uninstalledAt,
    whitelabelDomain: i.whitelabelDomain,
  }));
}

export const STATUS_LABELS: Record<InstallationStatus, string> = {
  active: 'active',
  needs_reauth: 'needs re-auth',
  paused: 'paused',
  uninstalled: 'uninstalled',
};

const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

/** "in 23h 59m", "5m ago", "just now". */
export function relative(ms: number, now: number): string {
  const diff = ms - now;
  const abs = Math.abs(diff);
  if (abs < 60_000) return 'just now';
  const minutes = Math.floor(abs / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  const span = days > 0 ? `${days}d ${hours}h` : hours > 0 ? `${hours}h ${mins}m` : `${mins}m`;
  return diff > 0 ? `in ${span}` : `${span} ago`;
}

export function installationsTable(rows: InstallationRow[], now: number): string {
  const withReason = rows.some((r) => r.statusReason);
  const header = ['LOCATION ID', 'NAME', 'COMPANY', 'STATUS', 'TOKEN EXPIRES', 'UPDATED', ...(withReason ? ['REASON'] : [])];
  const body = rows.map((r) => [
    r.locationId,
    r.name ?? '-',
    r.companyId,
    STATUS_LABELS[r.status],
    r.tokenExpiresAt === null ? '-' : `${r.tokenExpiresAt <= now ? 'expired ' : ''}${relative(r.tokenExpiresAt, now)} (${iso(r.tokenExpiresAt)})`,
    `${relative(r.updatedAt, now)} (${iso(r.updatedAt)})`,
    ...(withReason ? [r.statusReason ?? ''] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}

/** JSON for scripts: times as ISO strings, no token material. */
export function installationsJson(rows: InstallationRow[]): string {
  const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return JSON.stringify(
    rows.map((r) => ({
      locationId: r.locationId,
      name: r.name,
      companyId: r.companyId,
      status: r.status,
      statusReason: r.statusReason,
      tokenExpiresAt: at(r.tokenExpiresAt),
      installedAt: at(r.installedAt),
      updatedAt: at(r.updatedAt),
      uninstalledAt: at(r.uninstalledAt),
      whitelabelDomain: r.whitelabelDomain,
    })),
    null,
    2,
  );
}
