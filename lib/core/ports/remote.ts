/** An object read with ranged GETs from a URL. */
export interface RemoteObject {
  size: number;
  /** Bytes [start, end); fails unless exactly those come back. */
  range(start: number, end: number): Promise<Uint8Array>;
}

/**
 * Opens a URL for reading. Refuses, with `import.sourceForbidden`, what the deployment may not fetch
 * (private, loopback or link-local addresses unless allowed: server-side request forgery), and with
 * `import.sourceUnreadable` a URL that answers an error or serves no byte ranges.
 */
export type RemoteOpener = (url: string) => Promise<RemoteObject>;
