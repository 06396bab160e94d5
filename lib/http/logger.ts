/**
 * Structured JSON logs, one line each, as CloudWatch and the local cloud both read them. Fields
 * named like secrets are redacted before anything is written.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const SECRET_FIELD = /authorization|api[-_]?key|secret|password|token|signature|credential/i;

/** Replaces the values of secret-looking fields, however deep, with `[redacted]`. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key,
      SECRET_FIELD.test(key) ? '[redacted]' : redact(v, depth + 1),
    ]),
  );
}

type Sink = (line: string) => void;

export function createLogger(
  base: Record<string, unknown> = {},
  sink: Sink = (line) => console.log(line),
): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    sink(JSON.stringify(redact({ level, message, ...base, ...fields })));
  };
  return {
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
    child: (fields) => createLogger({ ...base, ...fields }, sink),
  };
}

export const logger: Logger = createLogger();
