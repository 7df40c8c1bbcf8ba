// A run's counts, from the items it recorded: exact after any number of resumes, because every
// record is keyed and counted once, in its latest state. And its failed and skipped records grouped
// by reason, for the summary the panel shows once it finished.
import type { Db } from '../../../db/client.ts';
import { itemTally, listItems } from '../../../db/operations.ts';
import { emptyCounts, REASON_GROUPS, type Counts, type ReasonGroup, type SideCounts } from './types.ts';

export function tallyItems(db: Db, operationId: string): { counts: Counts; users: Record<string, number> } {
  const counts = emptyCounts();
  const users: Record<string, number> = {};
  for (const row of itemTally(db, operationId)) {
    if (row.state !== 'done') continue;
    if (row.entity === 'user') {
      users[row.action] = (users[row.action] ?? 0) + row.n;
      continue;
    }
    const side = counts[row.side as keyof Counts];
    if (side && row.action in side) side[row.action as keyof SideCounts] += row.n;
  }
  return { counts, users };
}

/** Items read per query while grouping (a large run reads its failures a page at a time). */
const PAGE = 1000;

/**
 * The run's records of one outcome grouped by reason, the largest groups first (ties: the group met
 * first); REASON_GROUPS at most. A group of one record keeps its name, so the panel can say whose.
 */
export function reasonGroups(db: Db, operationId: string, action: 'failed' | 'skipped'): ReasonGroup[] {
  const groups = new Map<string, ReasonGroup>();
  let after = 0;
  for (;;) {
    const rows = listItems(db, operationId, { afterSeq: after, limit: PAGE, actions: [action], state: 'done' });
    for (const row of rows) {
      const entity = row.entity === 'user' ? 'user' : 'contact';
      const reason = row.reason?.trim() || 'no reason recorded';
      const key = `${entity}\u0000${reason}`;
      const group = groups.get(key);
      if (group) group.count++;
      else groups.set(key, { reason, count: 1, entity, label: row.label ?? row.key });
    }
    if (rows.length < PAGE) break;
    after = rows.at(-1)!.seq;
  }
  return [...groups.values()]
    .sort((a, b) => b.count - a.count)
    .slice(0, REASON_GROUPS)
    .map((g) => (g.count === 1 ? g : { ...g, label: null }));
}

/** Both outcomes' groups, as a finished run's progress keeps them. */
export function reasonsOf(db: Db, operationId: string): Record<'failed' | 'skipped', ReasonGroup[]> {
  return { failed: reasonGroups(db, operationId, 'failed'), skipped: reasonGroups(db, operationId, 'skipped') };
}
