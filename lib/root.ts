import { type AwsClients, createAwsClients } from './adapters/aws-clients.ts';
import { systemClock } from './adapters/clock.ts';
import { loadRuntimeConfig, type RuntimeConfig } from './config/runtime.ts';
import type { Clock } from './core/clock.ts';

/**
 * The composition root: the one place handlers get their configuration, clients and services from.
 * Built once per Lambda container (on first use, not at import, so cold starts pay only for what a
 * function touches) and reused by every invocation.
 */
export interface Runtime {
  config: RuntimeConfig;
  clock: Clock;
  /** Clients of this region's services. */
  aws: AwsClients;
  /** Clients of another region's services (cross-region copy); created on first use, then kept. */
  awsFor(region: string): AwsClients;
}

let current: Runtime | undefined;

export function runtime(): Runtime {
  current ??= buildRuntime(loadRuntimeConfig(process.env));
  return current;
}

export function buildRuntime(config: RuntimeConfig, clock: Clock = systemClock): Runtime {
  const byRegion = new Map<string, AwsClients>();
  const awsFor = (region: string): AwsClients => {
    let clients = byRegion.get(region);
    if (!clients) {
      clients = createAwsClients(config.registry.get(region));
      byRegion.set(region, clients);
    }
    return clients;
  };
  return {
    config,
    clock,
    get aws() {
      return awsFor(config.region.name);
    },
    awsFor,
  };
}
