// Checks that a service listens on loopback only: connecting through another address of this host
// is refused, through 127.0.0.1 it answers.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';

/** A non-internal IPv4 address of this host, or undefined when it has none. */
export function nonLoopbackIPv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** `connected`, or the error code of the attempt (`ECONNREFUSED`, `ETIMEDOUT`, …). */
export function connectOutcome(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 3000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** The TCP ports the given processes listen on, from /proc (Linux): every socket in state LISTEN. */
export function listeningPorts(pids: number[]): number[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1]) inodes.add(m[1]);
      } catch {
        // closed while we looked
      }
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [, local, , state, , , , , , inode] = fields;
      if (state === '0A' && inode && inodes.has(inode) && local) {
        ports.add(Number.parseInt(local.split(':')[1] ?? '0', 16));
      }
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/**
 * For each port: what a connection through `other` (a non-loopback address of this host) and
 * through 127.0.0.1 gets. Loopback-only services read `{ other: 'ECONNREFUSED', loopback: 'connected' }`.
 */
export async function reachability(
  ports: number[],
  other: string,
): Promise<Record<number, { other: string; loopback: string }>> {
  const result: Record<number, { other: string; loopback: string }> = {};
  for (const port of ports) {
    result[port] = {
      other: await connectOutcome(other, port),
      loopback: await connectOutcome('127.0.0.1', port),
    };
  }
  return result;
}
