// SIGINT/SIGTERM for `npm start`: the first signal stops Tandem gracefully; a deliberate second one
// (Ctrl+C again while a slow stop hangs) exits at once. One keypress delivered twice is not a second.

/**
 * Signals this soon after the first count as the same keypress. A terminal's Ctrl+C goes to the
 * whole foreground process group, and the processes above Tandem relay it as well: tsx's CLI sends
 * it on to Tandem unless it hears within 30 ms that Tandem got it (a race it often loses), npm
 * forwards it to its child. So one press can reach Tandem two or three times, tens of milliseconds
 * apart (more when the machine is busy). A person presses again only after seeing the stop hang,
 * well over a second later; a quick double press just gets the graceful stop, which is the safe
 * side. (Node does not tell a handler who sent a signal, so the interval is what tells them apart.)
 * Timed on the monotonic clock: a wall-clock step (NTP, a suspended laptop) must not merge or split
 * presses. Our own event loop being busy cannot split them either: both handlers then run late,
 * back to back.
 */
export const SAME_KEYPRESS_MS = 1000;

export interface StopSignalHandlers {
  /** The first signal: begin a graceful stop. */
  stop(signal: NodeJS.Signals): void;
  /** A later signal, outside the window: exit now. */
  forceExit(signal: NodeJS.Signals): void;
}

/** A listener for process.on('SIGINT' | 'SIGTERM', …) that tells a second signal from a duplicate. */
export function stopSignalListener(
  handlers: StopSignalHandlers,
  options: { now?: () => number; sameKeypressMs?: number } = {},
): (signal: NodeJS.Signals) => void {
  const now = options.now ?? (() => performance.now());
  const windowMs = options.sameKeypressMs ?? SAME_KEYPRESS_MS;
  let first: number | undefined;
  return (signal) => {
    const at = now();
    if (first === undefined) {
      first = at;
      handlers.stop(signal);
    } else if (at - first >= windowMs) {
      handlers.forceExit(signal);
    }
    // Otherwise the same keypress, relayed: the stop under way goes on.
  };
}
