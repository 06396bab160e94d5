/**
 * Structured JSON logs, one line each, as CloudWatch and the local cloud both read them. Fields
 * named like secrets, and secrets inside any string (URL credentials, presigned signatures, API key
 * secrets), are redacted before anything is written.
 */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const SECRET_FIELD = /authorization|api[-_]?key|secret|password|token|signature|credential/i;

/**
 * Secrets that show up inside text (an error message quoting a URL, a stack, a cause): a URL's
 * userinfo, presigned query parameters, and the secret half of an API key (its key id is public).
 */
const SECRETS_IN_TEXT: readonly [RegExp, string][] = [
  [/\/\/[^\s/?#@"'<>]+@/g, '//***@'],
  [
    /([?&;]|\b)(x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig)=[^&#\s"'<>]*/gi,
    '$1$2=***',
  ],
  [/\b(vsk_key-[0-9a-z]{16}_)[A-Za-z0-9_-]+/g, '$1***'],
];

/** `text` with URL credentials, presigned signatures and API key secrets replaced by `***`. */
export function redactText(text: string): string {
  return SECRETS_IN_TEXT.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);
}

/**
 * Replaces the values of secret-looking fields, however deep, with `[redacted]`, and secrets inside
 * every string (see {@link redactText}); errors become their name, message, stack and cause.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) {
    const { name, message, stack } = value;
    const cause = (value as { cause?: unknown }).cause;
    return redact({ name, message, stack, ...(cause !== undefined ? { cause } : {}) }, depth);
  }
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
