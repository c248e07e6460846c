import { constants } from 'node:os';

/**
 * Until the returned function is called, SIGINT or SIGTERM runs `cleanup` and then ends the process
 * with 128 + the signal's number, as a shell reports it. For what a bench run owns and must not leave
 * behind when stopped: its embedded broker process and data dir, the disk scenario's files. Repeats
 * while it cleans up are ignored: a Ctrl-C reaches a relaunched bench twice (from the terminal, and
 * forwarded by its parent; see heap-floor.ts).
 */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  let cleaning = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (cleaning) return;
    cleaning = true;
    void cleanup()
      .catch(() => undefined)
      .finally(() => process.exit(128 + constants.signals[signal]));
  };
  const remove = (): void => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return remove;
}
