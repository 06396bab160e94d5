import { backoffMs, GATEWAY_FAILURE, isRetryable } from './retry.ts';

/** An error the API answered with (`{error, message, requestId}`), or a failure to reach it. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
    readonly details?: Record<string, unknown>,
    /** What the answer's `Retry-After` said, in seconds. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/**
 * Whether a failed request is worth sending again later: the service unreachable, too slow, reset
 * (status 0), throttling (429) or failing for now (5xx). For a request that changes something, such
 * a failure leaves open whether it took effect: ask the service before sending it again.
 */
export function isTransient(error: unknown): error is ApiError {
  return error instanceof ApiError && (error.status === 0 || error.status === 429 || error.status >= 500);
}

export interface ApiClientOptions {
  endpoint: string;
  apiKey?: string;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Injected for tests; how the client waits between two tries. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * For how long a request safe to repeat is sent again while the service fails for now
   * ({@link isRetryable}), in ms; 0: never. Default {@link DEFAULT_RETRY_FOR_MS}.
   */
  retryForMs?: number;
  /** Hears of each failure tried again, and the wait before the next try (a note on stderr). */
  onRetry?: (error: ApiError, waitMs: number) => void;
}

/** Long enough to outlast a restart of the service's table or a region's process (30–70 s seen locally). */
export const DEFAULT_RETRY_FOR_MS = 120_000;
/** How long a refused connection is tried again: a local region process is replaced in 4–8 s. */
export const REFUSED_RETRY_FOR_MS = 10_000;

/** What a resource's method says of its request: whether sending it twice does what sending it once does. */
export interface RequestOptions {
  idempotent?: boolean;
  /**
   * The POST changes nothing (it issues a URL): one whose answer was lost is sent again, as a GET
   * would be, since asking again is the only way to read what it answers.
   */
  readsOnly?: boolean;
}

type Init = { method: string; headers: Record<string, string>; body?: string };

/**
 * One request of the volsnap HTTP API, JSON in and out: the core every resource's methods
 * (`ApiClient`) are built on. A non-2xx answer becomes an {@link ApiError} carrying the API's
 * code (API Gateway's bare 5xx: {@link GATEWAY_FAILURE}); an unreachable endpoint becomes
 * `client.unreachable` with what to check. A request safe to repeat (a GET, a POST with a
 * `clientToken`, one its method marks idempotent) that fails for now ({@link isRetryable}) is sent
 * again with backoff (or after its `Retry-After`) for up to `retryForMs`, but for a POST only when
 * the service answered or the connection was refused (a POST whose answer was lost may have taken
 * effect: the caller asks first, `settle`), unless it only reads; any other request is sent once.
 */
export class ApiTransport {
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #options: ApiClientOptions;
  constructor(options: ApiClientOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Waits `ms` (the injected sleep in tests): what polls and retries built on this client wait with. */
  wait(ms: number): Promise<void> {
    return this.#sleep(ms);
  }

  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const repeatable = method === 'GET' || options.idempotent === true || hasClientToken(body);
    const budget = repeatable ? (this.#options.retryForMs ?? DEFAULT_RETRY_FOR_MS) : 0;
    const started = Date.now();
    let waited = 0;
    for (let failures = 1; ; failures++) {
      try {
        return await this.#requestOnce<T>(method, path, body);
      } catch (error) {
        if (!(error instanceof ApiError) || !isRetryable(error)) throw error;
        // A request that changes something and got no answer may have taken effect: the caller
        // asks the service what happened before sending it again (`settle`), not this loop. Not
        // so a request that only reads, nor a refused connection (nothing received it).
        if (method !== 'GET' && error.status === 0 && !options.readsOnly && !error.details?.refused)
          throw error;
        const wait = backoffMs(error, failures);
        // Nothing listening is a wrong endpoint, or a local region process being replaced (seconds):
        // not worth the whole budget.
        const limit = error.details?.refused ? Math.min(budget, REFUSED_RETRY_FOR_MS) : budget;
        // Time spent, whichever clock moved: the real one, or only the waits (an injected sleep).
        if (Math.max(Date.now() - started, waited) + wait > limit) throw error;
        this.#options.onRetry?.(error, wait);
        waited += wait;
        await this.#sleep(wait);
      }
    }
  }

  async #requestOnce<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.#options.endpoint);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#options.apiKey) headers.authorization = `Bearer ${this.#options.apiKey}`;
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    const response = await this.#send(url, init);
    let text: string;
    try {
      text = await response.text();
    } catch (cause) {
      // The connection dropped (or timed out) after the answer began: whether it took effect is open.
      throw new ApiError(
        0,
        'client.unreachable',
        `The connection to ${url.origin} dropped while it answered ${method} ${path} (${reasonOf(cause)}). Run the command again.`,
      );
    }
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!response.ok) throw errorOf(response, data, `${method} ${path}`);
    return data as T;
  }

  /** Sends a request once: its answer, or an ApiError with status 0 when none came. */
  async #send(url: URL, init: Init): Promise<Response> {
    try {
      return await this.#fetch(url, {
        ...init,
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
      });
    } catch (cause) {
      if ((cause as Error).name === 'TimeoutError') {
        const seconds = Math.round((this.#options.timeoutMs ?? 30_000) / 1000);
        throw new ApiError(
          0,
          'client.timeout',
          `${init.method} ${url.pathname} got no answer from ${url.origin} within ${seconds} s.`,
        );
      }
      const reason = reasonOf(cause);
      throw new ApiError(
        0,
        'client.unreachable',
        `Cannot reach ${url.origin} (${reason}). Is the local cloud running (npm start), or is --endpoint right?`,
        undefined,
        reason === 'ECONNREFUSED' ? { refused: true } : undefined,
      );
    }
  }
}

/** The ApiError of a non-2xx answer: volsnap's error shape, or API Gateway's own bare answer. */
function errorOf(response: Response, data: unknown, request: string): ApiError {
  const err = (data ?? {}) as {
    error?: string;
    message?: string;
    requestId?: string;
    details?: Record<string, unknown>;
  };
  const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN);
  const requestId = err.requestId ?? response.headers.get('x-request-id') ?? undefined;
  const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined;
  if (typeof err.error !== 'string' && GATEWAY_STATUSES.has(response.status)) {
    const said = err.message ?? response.statusText;
    return new ApiError(
      response.status,
      GATEWAY_FAILURE,
      `${request} answered ${response.status} ${said}: the service failed to answer for now (its function failed or timed out, as while it restarts). Run the command again later.`,
      requestId,
      undefined,
      retryAfterSeconds,
    );
  }
  return new ApiError(
    response.status,
    err.error ?? `http.${response.status}`,
    err.message ?? `${request} answered ${response.status} ${response.statusText}`,
    requestId,
    err.details,
    retryAfterSeconds,
  );
}

/** API Gateway's own answers when what is behind a route failed (an authorizer, an integration, a timeout). */
const GATEWAY_STATUSES = new Set([500, 502, 503, 504]);

/** A body carrying a client token: the service answers a second send with what the first one made. */
function hasClientToken(body: unknown): boolean {
  return typeof (body as { clientToken?: unknown } | undefined)?.clientToken === 'string';
}

/** Why a request failed below HTTP: the system's code (ECONNRESET) or the message. */
function reasonOf(cause: unknown): string {
  return (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
}

/**
 * What a resource's methods are mixed into: a class that can send requests. (TypeScript's mixin
 * pattern asks for a constructor taking `any[]`.)
 */
// biome-ignore lint/suspicious/noExplicitAny: the mixin pattern's constructor type must take any[].
export type Requester = new (...args: any[]) => ApiTransport;

/** `/v1/things` with the query string of a list call, if it has one. */
export function withQuery(path: string, query: string): string {
  return query ? `${path}?${query}` : path;
}

/** The query string of a list call: plain parameters, and tag filters as `tag:KEY=VALUE`. */
export function listQuery(
  params: Record<string, string | number | undefined>,
  tags: Record<string, string> = {},
): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params))
    if (value !== undefined && value !== '') query.set(key, String(value));
  for (const [key, value] of Object.entries(tags)) query.set(`tag:${key}`, value);
  return query.toString();
}

/** Yields the items of every page, following next tokens until there are none. */
export async function* everyPage<T>(
  fetchPage: (nextToken?: string) => Promise<{ items: T[]; nextToken?: string }>,
): AsyncGenerator<T> {
  let nextToken: string | undefined;
  do {
    const page = await fetchPage(nextToken);
    yield* page.items;
    nextToken = page.nextToken;
  } while (nextToken);
}

/**
 * Every item of a listing, following next tokens: `list` asks for one page, whose items are under
 * `key` (`volumes`, `policies`…).
 */
export function allPages<K extends string, T>(
  key: K,
  list: (page: { nextToken?: string }) => Promise<Record<K, T[]> & { nextToken?: string }>,
): AsyncGenerator<T> {
  return everyPage(async (nextToken) => {
    const page = await list({ nextToken });
    return { items: page[key], nextToken: page.nextToken };
  });
}

/** A page of a list call (the listings that filter by nothing else). */
export type PageRequest = { limit?: number; nextToken?: string };
