import { httpRemoteOpener } from '../adapters/http/remote.ts';
import { createZstdCompressor } from '../adapters/zstd.ts';
import type { PortSet } from '../root.ts';

/** The block codec (zstd) of whatever reads or writes segments. */
export const codecPorts: PortSet = {
  compressor: () => createZstdCompressor(),
};

/** Opens the URLs imports read from, within the deployment's allow list. */
export const remotePorts: PortSet = {
  openRemote: (context) => httpRemoteOpener({ allow: context.config.importAllow }),
};
