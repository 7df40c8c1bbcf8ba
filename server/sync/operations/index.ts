// The one-time operations Tandem offers, by kind: each handler decides what its run reads and
// writes (see types.ts for the contract, runner.ts for the lifecycle they share).
import type { OperationKind } from '../../../db/schema.ts';
import { syncUsersHandler } from './sync-users.ts';
import type { OperationHandler } from './types.ts';
import { pullHandler, pullUndo } from './pull.ts';
import { pushHandler, pushUndo } from './push.ts';
import { undoHandler } from './undo.ts';

export const operationHandlers: Partial<Record<OperationKind, OperationHandler>> = {
  pull: pullHandler,
  push: pushHandler,
  sync_users: syncUsersHandler,
  undo: undoHandler({ push: pushUndo, pull: pullUndo }),
};
