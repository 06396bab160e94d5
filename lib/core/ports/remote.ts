/** An object read with ranged GETs from a URL. */
export interface RemoteObject {
  size: number;
  /**
   * Bytes [start, end); fails unless exactly those come back. With `into` of at least `end - start`
   * bytes, they are read into it (the answer is then a view of it), as ObjectStore.getRange's.
   */
  range(start: number, end: number, into?: Uint8Array): Promise<Uint8Array>;
}

/**
 * Opens a URL for reading. Refuses, with `import.sourceForbidden`, what the deployment may not fetch
 * (private, loopback or link-local addresses unless allowed: server-side request forgery), and with
 * `import.sourceUnreadable` a URL that answers an error or serves no byte ranges.
 */
export type RemoteOpener = (url: string) => Promise<RemoteObject>;
