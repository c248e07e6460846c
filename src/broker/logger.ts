export type LogLevel = 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string, context?: Record<string, unknown>) => void;

/** Default broker log: one line per event on stderr, so stdout stays for the "listening" line. */
export const stderrLogger: Logger = (level, message, context) => {
  const ctx = context && Object.keys(context).length > 0 ? ` ${JSON.stringify(context)}` : '';
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${message}${ctx}\n`);
};
