// The panel's HighLevel handshake (web/lib/highlevel-context.svelte.ts) against stand-in windows.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HighLevelContext, REQUEST_MESSAGE } from '../../web/lib/highlevel-context.svelte.ts';

/** A parent frame that records what the panel posts to it. */
function frames() {
  const parent = { posted: [] as unknown[], postMessage(data: unknown) { this.posted.push(data); } };
  const child = Object.assign(new EventTarget(), { parent, top: parent });
  const answer = (data: unknown, source: unknown = parent) =>
    child.dispatchEvent(Object.assign(new Event('message'), { data, source }));
  return { parent, child: child as unknown as Window, answer };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('HighLevelContext', () => {
  it('is outside HighLevel at once when not framed', () => {
    const self = new EventTarget() as unknown as Window;
    Object.assign(self, { parent: self, top: self });
    const context = new HighLevelContext();
    context.start(self);
    expect(context.state).toBe('outside');
  });

  it('asks the parent for user data and keeps the encrypted answer', () => {
    const { parent, child, answer } = frames();
    const context = new HighLevelContext();
    context.start(child);
    expect(context.state).toBe('waiting');
    expect(parent.posted).toEqual([REQUEST_MESSAGE]);
    answer({ message: 'SOMETHING_ELSE', payload: 'x' });
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 42 });
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'from-elsewhere' }, {});
    expect(context.state).toBe('waiting');
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'U2FsdGVkX1+abc' });
    expect(context.state).toBe('received');
    expect(context.payload).toBe('U2FsdGVkX1+abc');
    // Stops asking and ignores later answers.
    vi.advanceTimersByTime(10_000);
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'later' });
    expect(context.payload).toBe('U2FsdGVkX1+abc');
    expect(parent.posted).toHaveLength(1);
  });

  it('asks again on request, for fresh user data before the session expires', async () => {
    const { parent, child, answer } = frames();
    const context = new HighLevelContext();
    context.start(child);
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'first' });
    const fresh = context.requestUserData();
    expect(parent.posted).toEqual([REQUEST_MESSAGE, REQUEST_MESSAGE]);
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'second' });
    await expect(fresh).resolves.toBe('second');
    expect(context.payload).toBe('second');
    expect(context.state).toBe('received');
    // No answer in time: it gives up, and the payload it had stays.
    const unanswered = context.requestUserData({ timeoutMs: 3000 });
    vi.advanceTimersByTime(3000);
    await expect(unanswered).rejects.toThrow('HighLevel did not answer');
    expect(context.payload).toBe('second');
  });

  it('repeats the request until HighLevel answers, and gives up after 5 seconds', () => {
    const { parent, child } = frames();
    const context = new HighLevelContext();
    context.start(child);
    vi.advanceTimersByTime(4_999);
    expect(context.state).toBe('waiting');
    expect(parent.posted.length).toBeGreaterThanOrEqual(4);
    vi.advanceTimersByTime(1);
    expect(context.state).toBe('outside');
    const asked = parent.posted.length;
    vi.advanceTimersByTime(5_000);
    expect(parent.posted).toHaveLength(asked);
  });

  it('keeps listening after giving up: an answer that comes late still signs in', () => {
    // QA: HighLevel answering after 5 s left the panel on "Open Tandem from HighLevel" for good.
    const { child, answer } = frames();
    const context = new HighLevelContext();
    context.start(child);
    vi.advanceTimersByTime(5_000);
    expect(context.state).toBe('outside');
    expect(context.canAskAgain).toBe(true);
    vi.advanceTimersByTime(60_000);
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'late' });
    expect(context.state).toBe('received');
    expect(context.payload).toBe('late');
  });

  it('asks again on Try again, and gives up again after another 5 seconds without an answer', () => {
    const { parent, child, answer } = frames();
    const context = new HighLevelContext();
    context.start(child);
    vi.advanceTimersByTime(5_000);
    expect(context.state).toBe('outside');
    const asked = parent.posted.length;
    context.askAgain();
    expect(context.state).toBe('waiting');
    expect(parent.posted).toHaveLength(asked + 1);
    vi.advanceTimersByTime(2_000);
    expect(parent.posted.length).toBeGreaterThan(asked + 1);
    vi.advanceTimersByTime(3_000);
    expect(context.state).toBe('outside');
    context.askAgain();
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'after-retry' });
    expect(context.state).toBe('received');
    expect(context.payload).toBe('after-retry');
    // Answered: no more asking, and Try again has nothing left to do.
    const total = parent.posted.length;
    vi.advanceTimersByTime(10_000);
    context.askAgain();
    expect(parent.posted).toHaveLength(total);
    expect(context.state).toBe('received');
  });

  it('stops listening once the panel closes, answered or not', () => {
    const { parent, child, answer } = frames();
    const context = new HighLevelContext();
    const stop = context.start(child);
    vi.advanceTimersByTime(5_000);
    stop();
    answer({ message: 'REQUEST_USER_DATA_RESPONSE', payload: 'too-late' });
    expect(context.state).toBe('outside');
    expect(context.payload).toBeUndefined();
    const asked = parent.posted.length;
    vi.advanceTimersByTime(10_000);
    expect(parent.posted).toHaveLength(asked);
  });

  it('offers no Try again when the panel is not framed at all', () => {
    const self = new EventTarget() as unknown as Window;
    Object.assign(self, { parent: self, top: self });
    const context = new HighLevelContext();
    context.start(self);
    expect(context.canAskAgain).toBe(false);
  });
});
