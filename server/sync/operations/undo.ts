// "Undo this run": restores, on the side a push or pull overwrote, the values its items recorded
// before writing (and removes what it created). Each run kind knows how to take itself back; this
// handler only finds the run and hands it over.
import { getOperation, type OperationRow } from '../../../db/operations.ts';
import type { OperationHandler, Preview, PreviewContext, RunContext } from './types.ts';

/** How one kind of run is taken back: preview and run, like any operation, given the target run. */
export interface UndoPart {
  preview(ctx: PreviewContext, target: OperationRow): Promise<Preview>;
  run(ctx: RunContext, target: OperationRow): Promise<void>;
}

export function undoHandler(parts: Partial<Record<OperationRow['kind'], UndoPart>>): OperationHandler {
  function target(ctx: PreviewContext | RunContext): { row: OperationRow; part: UndoPart } {
    const undoOf = ctx.operation.undoOf;
    const row = undoOf ? getOperation(ctx.db, ctx.locationId, undoOf) : undefined;
    if (!row) throw new Error('The run to undo no longer exists.');
    const part = parts[row.kind];
    if (!part) throw new Error(`A ${row.kind} run cannot be undone.`);
    return { row, part };
  }
  return {
    kind: 'undo',
    preview(ctx) {
      const { row, part } = target(ctx);
      return part.preview(ctx, row);
    },
    run(ctx) {
      const { row, part } = target(ctx);
      return part.run(ctx, row);
    },
  };
}
