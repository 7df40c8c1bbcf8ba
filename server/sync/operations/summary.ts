// A run's counts, from the items it recorded: exact after any number of resumes, because every
// record is keyed and counted once, in its latest state.
import type { Db } from '../../../db/client.ts';
import { itemTally } from '../../../db/operations.ts';
import { emptyCounts, type Counts, type SideCounts } from './types.ts';

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
