// One Ctrl+C delivered several times stops Tandem once; a press well after the first exits at once.
import { describe, expect, it } from 'vitest';
import { SAME_KEYPRESS_MS, stopSignalListener } from '../../server/signals.ts';

function listener() {
  let now = 0;
  const calls: string[] = [];
  const onSignal = stopSignalListener({ stop: (s) => calls.push(`stop ${s}`), forceExit: (s) => calls.push(`exit ${s}`) }, { now: () => now });
  return { onSignal, calls, advance: (ms: number) => (now += ms) };
}

describe('stop signals', () => {
  it('takes the copies of one keypress (the group, tsx and npm relaying it) as one', () => {
    const { onSignal, calls, advance } = listener();
    onSignal('SIGINT');
    advance(1);
    onSignal('SIGINT');
    advance(60);
    onSignal('SIGINT');
    advance(SAME_KEYPRESS_MS - 62);
    onSignal('SIGTERM');
    expect(calls).toEqual(['stop SIGINT']);
  });

  it('exits at once on a second press once the window has passed, while the stop hangs', () => {
    const { onSignal, calls, advance } = listener();
    onSignal('SIGINT');
    advance(20);
    onSignal('SIGINT');
    advance(SAME_KEYPRESS_MS);
    onSignal('SIGINT');
    expect(calls).toEqual(['stop SIGINT', 'exit SIGINT']);
  });

  it('uses a window short beside a person noticing a hung stop and long beside a relay', () => {
    expect(SAME_KEYPRESS_MS).toBeGreaterThanOrEqual(250);
    expect(SAME_KEYPRESS_MS).toBeLessThanOrEqual(2000);
  });
});
