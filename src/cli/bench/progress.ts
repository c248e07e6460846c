/**
 * A one-line progress bar on stderr, redrawn at most every 200 ms, only when stderr is a terminal
 * (so piped or --json output stays clean).
 */
export interface Progress {
  /** `label` names the phase (e.g. "fill", "produce"); `done`/`total` in messages */
  update(label: string, done: number, total: number): void;
  done(): void;
}

export const silentProgress: Progress = { update: () => undefined, done: () => undefined };

const WIDTH = 30;

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return silentProgress;
  let last = 0;
  let phaseStart = performance.now();
  let phase = '';
  let drawn = false;
  return {
    update(label, done, total) {
      const now = performance.now();
      if (label !== phase) {
        phase = label;
        phaseStart = now;
      }
      if (now - last < 200 && done < total) return;
      last = now;
      const ratio = total > 0 ? Math.min(1, done / total) : 0;
      const filled = Math.round(ratio * WIDTH);
      const rate = done / Math.max(0.001, (now - phaseStart) / 1000);
      stream.write(`\r${label.padEnd(8)} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%  ${done}/${total}  ${Math.round(rate)} msgs/s   `);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r' + ' '.repeat(100) + '\r');
      drawn = false;
    },
  };
}
