// An in-process mutex per key: install work for one location (callback, INSTALL, UNINSTALL) runs
// one piece at a time, so a slow token mint cannot land after an uninstall that started later.
export type KeyedLock = <T>(key: string, work: () => Promise<T>) => Promise<T>;

export function keyedLock(): KeyedLock {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const before = tails.get(key) ?? Promise.resolve();
    const run = before.then(work, work);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      // Forget the key once nothing is queued behind this run.
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}
