/**
 * Waits `ms` between an input's attempts: true when the time is up, false
 * when the input was closed meanwhile (it calls every function in `wakers`),
 * and rejects with the signal's reason when aborted.
 */
export function sleepUnlessClosed(ms: number, signal: AbortSignal, wakers: Set<() => void>): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const finish = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      wakers.delete(onClose);
    };
    const timer = setTimeout(() => {
      finish();
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      finish();
      reject(signal.reason);
    };
    const onClose = (): void => {
      finish();
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    wakers.add(onClose);
  });
}
