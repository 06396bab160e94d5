// Every emulator the integration setup starts listens on loopback only (issue 14, point 7): DynamoDB
// Local used to listen on every interface, so anyone who could reach the host could read its tables.
import { describe, expect, inject, it } from 'vitest';
import { nonLoopbackIPv4, reachability } from '../support/loopback.ts';

describe('the integration emulators', () => {
  it('refuse connections through a non-loopback address of this host and answer on 127.0.0.1', async () => {
    const ports = [inject('s3Endpoint'), inject('dynamodbEndpoint')].map((e) => Number(new URL(e).port));
    const other = nonLoopbackIPv4();
    if (!other) console.log('This host has no non-loopback IPv4 address: only loopback is checked.');
    const seen = await reachability(ports, other ?? '127.0.0.1');
    for (const port of ports) {
      expect(seen[port]?.loopback).toBe('connected');
      if (other) expect(seen[port]?.other, `port ${port} through ${other}`).toBe('ECONNREFUSED');
    }
  });
});
