// Installations (one per HighLevel location) and agency companies: the only code that touches
// these tables.
import { eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { preparedOnce } from './prepared.ts';
import { companies, installations, type CompanyStatus, type InstallationStatus } from './schema.ts';

export type Installation = typeof installations.$inferSelect;
export type Company = typeof companies.$inferSelect;

// Prepared once per connection: the inbox looks installations up for every webhook event, and each
// wake of the sync loops lists them, under a stream of webhooks hundreds of times a second
// (building and preparing the queries was most of that).
const byLocation = preparedOnce((db) => db.select().from(installations).where(eq(installations.locationId, sql.placeholder('locationId'))).prepare());
const allInstallations = preparedOnce((db) => db.select().from(installations).orderBy(installations.companyId, installations.locationId).prepare());

export function getInstallation(db: Db, locationId: string): Installation | undefined {
  return byLocation(db).get({ locationId });
}

const statusByLocation = preparedOnce((db) =>
  db.select({ status: installations.status }).from(installations).where(eq(installations.locationId, sql.placeholder('locationId'))).prepare(),
);

/** The installation's status alone (the webhook receiver asks for every contact event; the whole row costs more). */
export function installationStatus(db: Db, locationId: string): InstallationStatus | undefined {
  return statusByLocation(db).get({ locationId })?.status;
}

export function listInstallations(db: Db): Installation[] {
  return allInstallations(db).all();
}

export function installationsOfCompany(db: Db, companyId: string): Installation[] {
  return db.select().from(installations).where(eq(installations.companyId, companyId)).all();
}

/** Creates or reactivates an installation; keeps its original installedAt across reinstalls. */
export function upsertInstallation(
  db: Db,
  row: { locationId: string; companyId: string; now: number; locationName?: string | null; whitelabelDomain?: string | null },
): Installation {
  const values = {
    locationId: row.locationId,
    companyId: row.companyId,
    status: 'active' as const,
    installedAt: row.now,
    updatedAt: row.now,
    statusReason: null,
    uninstalledAt: null,
    ...(row.locationName !== undefined ? { locationName: row.locationName } : {}),
    ...(row.whitelabelDomain !== undefined ? { whitelabelDomain: row.whitelabelDomain } : {}),
  };
  const { installedAt: _keep, locationId: _id, ...update } = values;
  db.insert(installations).values(values).onConflictDoUpdate({ target: installations.locationId, set: update }).run();
  return getInstallation(db, row.locationId)!;
}

/**
 * `uninstalledAt` (status uninstalled only): when HighLevel uninstalled it, the UNINSTALL's own
 * timestamp, against which a late INSTALL is judged (server/installs/installs.ts); `now` without one.
 */
export function setInstallationStatus(
  db: Db,
  locationId: string,
  status: InstallationStatus,
  now: number,
  reason: string | null = null,
  uninstalledAt = now,
): void {
  db.update(installations)
    .set({ status, statusReason: reason, updatedAt: now, ...(status === 'uninstalled' ? { uninstalledAt } : {}) })
    .where(eq(installations.locationId, locationId))
    .run();
}

export function setLocationName(db: Db, locationId: string, name: string, now: number): void {
  db.update(installations).set({ locationName: name, updatedAt: now }).where(eq(installations.locationId, locationId)).run();
}

export function setWhitelabelDomain(db: Db, companyId: string, domain: string | null, now: number): void {
  db.update(installations).set({ whitelabelDomain: domain, updatedAt: now }).where(eq(installations.companyId, companyId)).run();
  db.update(companies).set({ whitelabelDomain: domain, updatedAt: now }).where(eq(companies.companyId, companyId)).run();
}

/** White-label domains of every active installation, for the panel's frame-ancestors. */
export function activeWhitelabelDomains(db: Db): string[] {
  const rows = db
    .selectDistinct({ domain: installations.whitelabelDomain })
    .from(installations)
    .where(inArray(installations.status, ['active', 'needs_reauth', 'paused']))
    .all();
  return rows.map((r) => r.domain).filter((d): d is string => !!d);
}

export function getCompany(db: Db, companyId: string): Company | undefined {
  return db.select().from(companies).where(eq(companies.companyId, companyId)).get();
}

export function listCompanies(db: Db): Company[] {
  return db.select().from(companies).orderBy(companies.companyId).all();
}

export function upsertCompany(
  db: Db,
  row: { companyId: string; installToFutureLocations: boolean; now: number; whitelabelDomain?: string | null },
): Company {
  const values = {
    companyId: row.companyId,
    status: 'active' as const,
    installToFutureLocations: row.installToFutureLocations,
    installedAt: row.now,
    updatedAt: row.now,
    ...(row.whitelabelDomain !== undefined ? { whitelabelDomain: row.whitelabelDomain } : {}),
  };
  const { installedAt: _keep, companyId: _id, ...update } = values;
  db.insert(companies).values(values).onConflictDoUpdate({ target: companies.companyId, set: update }).run();
  return getCompany(db, row.companyId)!;
}

export function setCompanyStatus(db: Db, companyId: string, status: CompanyStatus, now: number): void {
  db.update(companies).set({ status, updatedAt: now }).where(eq(companies.companyId, companyId)).run();
}
