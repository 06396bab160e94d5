import { systemClock } from './adapters/clock.ts';
import { loadRuntimeConfig, type RuntimeConfig } from './config/runtime.ts';
import type { Clock } from './core/shared/clock.ts';
import { Cloud, type Factory, type Region, type RegionPorts, type RegionSettings } from './wiring/region.ts';

/**
 * The composition root: the one place handlers get their configuration and services from. Built
 * once per Lambda container (one bundle's module state) and reused by every invocation.
 *
 * A function's bundle carries only what its handler module imports: the lib/wiring factories of the
 * services its routes use, and the port sets (lib/aws) those services' adapters come from. A port
 * nobody provided fails on first use, saying which; everything is made on first use, not at import,
 * so a cold start pays only for the clients and services it touches.
 */

/** What a port maker builds a region's adapter from. */
export interface PortContext {
  readonly config: RuntimeConfig;
  readonly clock: Clock;
  /** The region whose port is made (this one, or another for copies and copy rules). */
  readonly name: string;
  /** That region's ports: a maker may build on another port (identity lookups on identity). */
  readonly ports: RegionPorts;
  /** One value per container for `key` (an SDK client per region): made on first ask, then kept. */
  shared<T>(key: string, make: () => T): T;
}

type MadePorts = Exclude<keyof RegionPorts, 'settings' | 'clock'>;

/** Makers of some of a region's ports over AWS (lib/aws): a function provides those its services use. */
export type PortSet = { readonly [K in MadePorts]?: (context: PortContext) => RegionPorts[K] };

/** Every port the root makes: a port added to RegionPorts and not here fails to compile. */
const EVERY_PORT: { readonly [K in MadePorts]-?: true } = {
  identity: true,
  identityLookups: true,
  audit: true,
  requests: true,
  volumes: true,
  snapshots: true,
  exports: true,
  policies: true,
  instances: true,
  images: true,
  uploads: true,
  objects: true,
  objectsIn: true,
  queue: true,
  compressor: true,
  openRemote: true,
  secrets: true,
  tokenKey: true,
};
const PORT_NAMES = Object.keys(EVERY_PORT) as MadePorts[];

/** The container's root: its configuration, and this region's services over the port sets provided. */
export interface Root {
  readonly config: RuntimeConfig;
  readonly clock: Clock;
  /** This region, wired over the ports provided so far. */
  readonly region: Region;
  /** The service `factory` makes for this region: made once per container, on first use. */
  service<T>(factory: Factory<T>): T;
  /** Adds port sets to those the root makes ports from (a port already made stays as it is). */
  provide(...sets: PortSet[]): Root;
}

/** A root over the given configuration and port sets (the container's is {@link provide}d). */
export function buildRoot(config: RuntimeConfig, sets: readonly PortSet[], clock: Clock = systemClock): Root {
  const makers: PortSet = Object.assign({}, ...sets);
  const shared = new Map<string, unknown>();
  const sharedValue = <T>(key: string, make: () => T): T => {
    if (!shared.has(key)) shared.set(key, make());
    return shared.get(key) as T;
  };
  const cloud = new Cloud((name) => {
    const ports = portsOf(settingsOf(config, name), clock, (port, self) => {
      const maker = makers[port] as ((context: PortContext) => unknown) | undefined;
      if (!maker)
        throw new Error(
          `This function provides no ${port} port: its handler module must pass the lib/aws port set that makes it.`,
        );
      return maker({ config, clock, name, ports: self, shared: sharedValue });
    });
    return ports;
  });
  const root: Root = {
    config,
    clock,
    get region() {
      return cloud.region(config.region.name);
    },
    service: (factory) => cloud.region(config.region.name).get(factory),
    provide: (...more) => {
      Object.assign(makers, ...more);
      return root;
    },
  };
  return root;
}

/** A region's ports, each made on first read by `make`, then kept. */
function portsOf(
  settings: RegionSettings,
  clock: Clock,
  make: (port: MadePorts, ports: RegionPorts) => unknown,
): RegionPorts {
  const ports = {} as Record<string, unknown>;
  Object.defineProperty(ports, 'settings', { enumerable: true, value: settings });
  Object.defineProperty(ports, 'clock', { enumerable: true, value: clock });
  for (const port of PORT_NAMES) {
    let value: unknown;
    let done = false;
    Object.defineProperty(ports, port, {
      enumerable: true,
      get: () => {
        if (!done) {
          value = make(port, ports as unknown as RegionPorts);
          done = true;
        }
        return value;
      },
    });
  }
  return ports as unknown as RegionPorts;
}

/** What a region's services know of it: this region's from its configuration, another's from the registry. */
function settingsOf(config: RuntimeConfig, name: string): RegionSettings {
  const entry = config.registry.get(name);
  const here = name === config.region.name;
  return {
    name,
    bucket: entry.bucket,
    imageBuckets: here ? config.imageBuckets : [],
    exportBuckets: here ? config.exportBuckets : [],
    knownRegions: config.registry.names(),
    defaultQuota: config.defaultQuota,
    ...(here && config.gcGraceMs !== undefined
      ? { tuning: { maintenance: { gcGraceMs: config.gcGraceMs } } }
      : {}),
  };
}

let container: Root | undefined;

/**
 * The container's root, with `sets` added to the ports it provides (every module of a bundle that
 * needs ports provides its own; they add up). The configuration is read from the environment on
 * first call, not at import.
 */
export function provide(...sets: PortSet[]): Root {
  container ??= buildRoot(loadRuntimeConfig(process.env), []);
  return container.provide(...sets);
}

/**
 * The services of one function's routes: `service(factory)` over the container's root with `sets`
 * provided, the root made (and the environment read) on first call, not at import.
 */
export function servicesOver(...sets: PortSet[]): <T>(factory: Factory<T>) => T {
  let root: Root | undefined;
  return (factory) => {
    root ??= provide(...sets);
    return root.service(factory);
  };
}

/** The container's root as is (its configuration: the health check and the console need no port). */
export function runtime(): Root {
  return provide();
}
