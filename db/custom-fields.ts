// The location's contact custom fields as HighLevel last listed them, and why the latest listing
// failed when it did. The only code that touches custom_field_definitions; a listing that defines
// new fields also queues, in its transaction, the contacts holding values for them
// (db/outbox.ts enqueueHoldingValues).
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from './client.ts';
import { transaction } from './prepared.ts';
import { enqueueHoldingValues } from './outbox.ts';
import { customFieldDefinitions } from './schema.ts';

export const customFieldDefinitionSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  fieldKey: z.string().nullable(),
  dataType: z.string().nullable(),
  options: z.array(z.string()),
  position: z.number().nullable(),
});
export type CustomFieldDefinition = z.infer<typeof customFieldDefinitionSchema>;

export interface CustomFieldList {
  definitions: CustomFieldDefinition[];
  /** When HighLevel last listed them; null: never (the definitions are then unknown, not none). */
  listedAt: number | null;
  /** Why the latest listing failed, in plain words; null when it succeeded. */
  problem: string | null;
  /** When the latest listing failed (null: it did not). */
  problemAt: number | null;
  /** That failure was HighLevel refusing the token (the scope): it lasts until a new token. */
  problemRefused: boolean;
}

const NEVER_LISTED: CustomFieldList = { definitions: [], listedAt: null, problem: null, problemAt: null, problemRefused: false };

export function customFieldList(db: Db, locationId: string): CustomFieldList {
  const row = db.select().from(customFieldDefinitions).where(eq(customFieldDefinitions.locationId, locationId)).get();
  if (!row) return NEVER_LISTED;
  // Written only by saveCustomFieldDefinitions below: a row that does not parse is a bug, not input.
  const definitions = z.array(customFieldDefinitionSchema).parse(JSON.parse(row.definitions));
  return { definitions, listedAt: row.listedAt, problem: row.problem, problemAt: row.problemAt, problemRefused: row.problemRefused };
}

/**
 * The ids of the location's fields as HighLevel last listed them, without parsing each definition
 * (the outbound pass asks for them every pass); null when they have never been listed (unknown, not none).
 */
export function listedCustomFieldIds(db: Db, locationId: string): ReadonlySet<string> | null {
  const row = db
    .select({
      listedAt: customFieldDefinitions.listedAt,
      ids: sql<string>`(select json_group_array(json_extract(value, '$.id')) from json_each(${customFieldDefinitions.definitions}))`,
    })
    .from(customFieldDefinitions)
    .where(eq(customFieldDefinitions.locationId, locationId))
    .get();
  if (!row || row.listedAt === null) return null;
  return new Set(z.array(z.string()).parse(JSON.parse(row.ids)));
}

/**
 * Why the latest listing failed, without reading the definitions (the panel's status strip asks
 * every few seconds); null when it did not.
 */
export function customFieldsProblem(db: Db, locationId: string): { message: string; at: number; refused: boolean } | null {
  const row = db
    .select({ message: customFieldDefinitions.problem, at: customFieldDefinitions.problemAt, refused: customFieldDefinitions.problemRefused })
    .from(customFieldDefinitions)
    .where(eq(customFieldDefinitions.locationId, locationId))
    .get();
  return row?.message ? { message: row.message, at: row.at ?? 0, refused: row.refused } : null;
}

/**
 * Records a successful listing: the definitions replace the stored ones, and the problem goes.
 * A field the previous listing did not hold (made in HighLevel since, or deleted and made again
 * under the same id) may have values in Tandem that were held back while it was undefined
 * (server/sync/merge.ts Sendable); nothing else would send them before the contact's next change.
 * The contacts holding one are queued in the same transaction, and the loop sends them as Contact
 * update allows. Before a first listing nothing was held back. Returns how many were queued.
 */
export function saveCustomFieldDefinitions(db: Db, locationId: string, definitions: readonly CustomFieldDefinition[], now: number): number {
  const parsed = z.array(customFieldDefinitionSchema).parse(definitions);
  const values = { definitions: JSON.stringify(parsed), listedAt: now, problem: null, problemAt: null, problemRefused: false, updatedAt: now };
  return transaction(db, () => {
    const before = listedCustomFieldIds(db, locationId);
    db.insert(customFieldDefinitions)
      .values({ locationId, ...values })
      .onConflictDoUpdate({ target: customFieldDefinitions.locationId, set: values })
      .run();
    if (!before) return 0;
    return enqueueHoldingValues(db, locationId, [...new Set(parsed.map((d) => d.id))].filter((id) => !before.has(id)), now);
  });
}

/** Records why a listing failed (`refused`: HighLevel refused the token); the definitions listed before (if any) stay in use. */
export function recordCustomFieldsProblem(db: Db, locationId: string, problem: string, refused: boolean, now: number): void {
  const values = { problem, problemAt: now, problemRefused: refused, updatedAt: now };
  db.insert(customFieldDefinitions)
    .values({ locationId, ...values })
    .onConflictDoUpdate({ target: customFieldDefinitions.locationId, set: values })
    .run();
}
