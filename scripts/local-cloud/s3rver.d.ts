// The parts of s3rver (which ships no types) the local cloud uses.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  interface S3rverOptions {
    address?: string;
    port?: number;
    directory?: string;
    silent?: boolean;
    vhostBuckets?: boolean;
    key?: Buffer;
    cert?: Buffer;
  }

  export default class S3rver {
    constructor(options: S3rverOptions);
    /** Koa's middleware stack; s3rver composes it when it starts listening. */
    middleware: unknown[];
    // biome-ignore lint/suspicious/noExplicitAny: s3rver's FilesystemStore, typed where it is used
    store: any;
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
