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
  /** Injected for tests; how the client waits out a `Retry-After`. */
  sleep?: (ms: number) => Promise<void>;
}

/** A throttled (429) or busy (503 with Retry-After) GET is tried again this many times, waiting what `Retry-After` says (at most 30 s each). */
const THROTTLE_RETRIES = 3;
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * One request of the volsnap HTTP API, JSON in and out: the core every resource's methods
 * (`ApiClient`) are built on. A non-2xx answer becomes an {@link ApiError} carrying the API's
 * code; an unreachable endpoint becomes `client.unreachable` with what to check. Only a GET is
 * ever sent twice: once again on a connection reset before any answer, and up to
 * {@link THROTTLE_RETRIES} times when throttled with a `Retry-After`.
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

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
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
    if (!response.ok) {
      const err = (data ?? {}) as {
        error?: string;
        message?: string;
        requestId?: string;
        details?: Record<string, unknown>;
      };
      const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN);
      throw new ApiError(
        response.status,
        err.error ?? `http.${response.status}`,
        err.message ?? `${method} ${path} answered ${response.status} ${response.statusText}`,
        err.requestId ?? response.headers.get('x-request-id') ?? undefined,
        err.details,
        Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined,
      );
    }
    return data as T;
  }

  /** Sends a request until it has an answer worth reading, as the class's TSDoc says. */
  async #send(url: URL, init: { method: string; headers: Record<string, string>; body?: string }) {
    let response: Response | undefined;
    // A kept-alive connection the server closed at the moment it was reused fails before any answer:
    // a GET is safe to try again once on a fresh connection. A throttled GET is tried again after
    // the wait the API names; other requests are not repeated (a create may not be idempotent).
    for (let attempt = 0, throttled = 0; !response; attempt++) {
      try {
        response = await this.#fetch(url, {
          ...init,
          signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
        });
      } catch (cause) {
        const reason = reasonOf(cause);
        if ((cause as Error).name === 'TimeoutError') {
          const seconds = Math.round((this.#options.timeoutMs ?? 30_000) / 1000);
          throw new ApiError(
            0,
            'client.timeout',
            `${init.method} ${url.pathname} got no answer from ${url.origin} within ${seconds} s.`,
          );
        }
        if (
          attempt === 0 &&
          init.method === 'GET' &&
          (reason === 'ECONNRESET' || reason === 'UND_ERR_SOCKET')
        )
          continue;
        throw new ApiError(
          0,
          'client.unreachable',
          `Cannot reach ${url.origin} (${reason}). Is the local cloud running (npm start), or is --endpoint right?`,
        );
      }
      // 429 (the account's rate) and a 503 with Retry-After (the table throttling or unavailable,
      // `storage.throttled`/`storage.unavailable`) are both waited out.
      const waitable =
        response.status === 429 || (response.status === 503 && response.headers.has('retry-after'));
      if (waitable && init.method === 'GET' && throttled < THROTTLE_RETRIES) {
        const seconds = Number(response.headers.get('retry-after'));
        if (Number.isFinite(seconds) && seconds >= 0) {
          throttled++;
          await response.body?.cancel();
          response = undefined;
          await this.#sleep(Math.min(seconds * 1000, MAX_RETRY_AFTER_MS));
        }
      }
    }
    return response;
  }
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
