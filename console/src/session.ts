import { ApiClient } from '../../lib/client/api-client.ts';

/** A region the console can switch to, from the serving region's `console/config.json`. */
export interface ConsoleRegion {
  name: string;
  /** Its API's base URL; absent for the serving region on AWS (then: this page's origin). */
  api?: string;
}

export interface ConsoleConfig {
  /** The region whose API served the console. */
  region: string;
  regions: ConsoleRegion[];
}

/** Who is signed in, in this tab: kept in sessionStorage (gone with the tab), never in a URL. */
export interface Session {
  apiKey: string;
  region: string;
}

const SESSION_KEY = 'volsnap.console.session';

export function loadSession(): Session | undefined {
  try {
    const parsed = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null') as Session | null;
    return parsed && typeof parsed.apiKey === 'string' && typeof parsed.region === 'string'
      ? parsed
      : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session | undefined): void {
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

export async function loadConfig(): Promise<ConsoleConfig> {
  // Relative to the page (`/console`): the serving region's own config.
  const response = await fetch('console/config.json', { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`The console's configuration did not load (${response.status}).`);
  return (await response.json()) as ConsoleConfig;
}

/** The API base URL of a region: its registry entry's, or this page's origin for the serving region. */
export function endpointOf(config: ConsoleConfig, region: string): string {
  const found = config.regions.find((r) => r.name === region);
  return found?.api ?? (region === config.region ? location.origin : '');
}

/** A client of a region's API with the session's key. */
export function clientFor(config: ConsoleConfig, apiKey: string, region: string): ApiClient {
  return new ApiClient({
    endpoint: endpointOf(config, region),
    apiKey,
    timeoutMs: 30_000,
    // The window's fetch, called as a function: a browser refuses it called as the client's method.
    fetch: (input, init) => fetch(input, init),
  });
}
