import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Account, ApiClient, User } from '../../lib/client/api-client.ts';
import type { ConsoleConfig } from './session.ts';

/** What every view of a signed-in console uses. */
export interface ConsoleContext {
  config: ConsoleConfig;
  /** The region the console shows. */
  region: string;
  /** A client of the shown region's API. */
  api: ApiClient;
  /** A client of another region's API (a copy runs in its destination region). */
  apiIn: (region: string) => ApiClient;
  /** Shows another region, at a route of it. */
  switchRegion: (region: string, route?: string) => void;
  whoami: { account: Account; user: User; keyId: string };
}

export const Console = createContext<ConsoleContext | undefined>(undefined);

export function useConsole(): ConsoleContext {
  const value = useContext(Console);
  if (!value) throw new Error('useConsole outside a signed-in console');
  return value;
}

/** The route in the location's hash (`#/snapshot/snap-…` → `/snapshot/snap-…`). */
export function currentRoute(): string {
  return location.hash.replace(/^#/, '') || '/snapshots';
}

export function navigate(route: string): void {
  location.hash = route;
}
