import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerlessSpec } from '../../scripts/local-cloud/serverless-spec.ts';
import { listeningPorts, nonLoopbackIPv4, reachability } from '../support/loopback.ts';
import {
  cli,
  descendants,
  describeProcess,
  isAlive,
  ROOT,
  type StartedCloud,
  startCloudProcess,
} from '../support/processes.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'volsnap-e2e-'));
const configPath = join(dataDir, 'config.json');
let cloud: StartedCloud;

beforeAll(async () => {
  cloud = await startCloudProcess(['--fresh', '--port-base', 'auto', '--data-dir', dataDir]);
});

afterAll(() => {
  if (cloud?.process.exitCode === null) cloud.process.kill('SIGKILL');
});

describe('npm start: the local two-region cloud', () => {
  it('prints each region, the demo accounts and where the CLI config is', () => {
    const output = cloud.output();
    expect(output).toMatch(/eu-west-1\s+API http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/us-east-1\s+API http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/account demo\s+acct-\w+\s+key vsk_/);
    expect(output).toContain(configPath);
    // The functions run as deployed: the bundles, on the Lambda runtime's Node major.
    expect(output).toMatch(/functions: the deployment's bundles \(.+\) on Node v22\.\d+\.\d+/);
  });

  it('answers `volsnap health` in each region with that region, from a function on Node 22', async () => {
    for (const region of ['eu-west-1', 'us-east-1']) {
      const result = await cli(['--config', configPath, '--region', region, '--json', 'health']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ region, status: 'ok' });
      // Answered by the health function's bundle, on Node 22, while the CLI runs on this machine's Node.
      expect(JSON.parse(result.stdout).runtime.node).toMatch(/^v22\./);
    }
  });

  it('serves every route serverless.yml declares, and only those, in every region', async () => {
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    const spec = await loadServerlessSpec(join(ROOT, 'serverless.yml'));
    for (const { endpoint } of Object.values(config.regions) as { endpoint: string }[]) {
      for (const route of spec.functions.flatMap((f) => f.routes)) {
        const path = route.path.replace(/\{[^}]+\}/g, 'x');
        const response = await fetch(`${endpoint}${path}`, { method: route.method });
        const body = await response.text();
        expect(body, `${route.method} ${route.path}`).not.toContain('route.notFound');
      }
      // …and nothing it does not declare.
      const undeclared = await fetch(`${endpoint}/v1/undeclared`);
      expect(undeclared.status).toBe(404);
      expect(((await undeclared.json()) as { error: string }).error).toBe('route.notFound');
    }
  });

  it('explains a CLI call to a region that is not there', async () => {
    const result = await cli(['--config', configPath, '--region', 'ap-south-1', 'health']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("No endpoint for region 'ap-south-1'");
  });

  it('refuses to start a second cloud on ports that are taken, saying which', async () => {
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    const port = Number(new URL(config.regions['eu-west-1'].endpoint).port);
    const failed = (await startCloudProcess([
      '--port-base',
      String(port),
      '--data-dir',
      join(dataDir, 'second'),
    ]).catch((e) => e)) as {
      output: () => string;
      exited: Promise<number>;
    };
    expect(await failed.exited).toBe(1);
    expect(failed.output()).toContain(`Port ${port}`);
    expect(failed.output()).toContain('already in use');
  });

  it('listens on loopback only: every port of the cloud and its children refuses other addresses', async () => {
    const pid = cloud.process.pid ?? 0;
    const ports = listeningPorts([pid, ...descendants(pid)]);
    // Per region at least the API, S3, DynamoDB and the queue.
    expect(ports.length).toBeGreaterThanOrEqual(8);
    const other = nonLoopbackIPv4();
    if (!other) console.log('This host has no non-loopback IPv4 address: only loopback is checked.');
    const seen = await reachability(ports, other ?? '127.0.0.1');
    for (const port of ports) {
      expect(seen[port]?.loopback, `port ${port} on 127.0.0.1`).toBe('connected');
      if (other) expect(seen[port]?.other, `port ${port} through ${other}`).toBe('ECONNREFUSED');
    }
  });

  it('authenticates in each region from its own identity replica: a key issued through one region works in both, and once revoked stops in both', async () => {
    const as = (token: string | undefined, region: string, ...args: string[]) =>
      cli(
        [
          '--config',
          configPath,
          '--region',
          region,
          ...(token ? [] : ['--account', 'demo']),
          '--json',
          ...args,
        ],
        token ? { ...process.env, VOLSNAP_API_KEY: token } : process.env,
      );
    const created = await as(
      undefined,
      'us-east-1',
      'admin',
      'user',
      'create',
      'replicated',
      '--role',
      'admin',
    );
    expect(created.code, created.stderr).toBe(0);
    // Issued through the region that does not hold identity: the write goes to the identity region.
    const issued = await as(undefined, 'us-east-1', 'admin', 'key', 'create', '--user', 'replicated');
    expect(issued.code, issued.stderr).toBe(0);
    const { token, keyId } = JSON.parse(issued.stdout) as { token: string; keyId: string };
    for (const region of ['eu-west-1', 'us-east-1']) {
      const shown = await as(token, region, 'account', 'show');
      expect(shown.code, `${region}: ${shown.stderr}`).toBe(0);
      expect(JSON.parse(shown.stdout)).toMatchObject({ user: { userName: 'replicated' } });
    }
    const revoked = await as(undefined, 'eu-west-1', 'admin', 'key', 'revoke', keyId);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await as(token, 'eu-west-1', 'account', 'show')).code).toBe(1); // at once where it was revoked
    // In the other region once the revocation has replicated (a global table's delay; here ≤ ~1 s).
    await expect
      .poll(async () => (await as(token, 'us-east-1', 'account', 'show')).stderr, { timeout: 15_000 })
      .toContain('auth.unauthorized');
  });

  it('stops on Ctrl-C (SIGINT) and leaves no process behind', async () => {
    const pid = cloud.process.pid ?? 0;
    const children = descendants(pid);
    // s3rver and DynamoDB Local (plus its JVM) for each region, and each region's functions.
    expect(children.length).toBeGreaterThanOrEqual(8);
    cloud.process.kill('SIGINT');
    expect(await cloud.exited).toBe(0);
    // Exit is reported once the supervisor has reaped its children; allow their own children a moment.
    for (let i = 0; i < 50 && children.some(isAlive); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(children.filter(isAlive).map(describeProcess)).toEqual([]);
  });
});

describe('npm start without Java', () => {
  it('says that Java 17 is needed and how to install it', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'volsnap-nojava-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin/local-cloud.js'), '--port-base', 'auto', '--data-dir', join(dataDir, 'nojava')],
      {
        cwd: ROOT,
        env: { ...process.env, PATH: bin },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(output).toMatch(/Java is missing: DynamoDB Local needs Java 17/);
    expect(output).toContain('apt-get install');
  });

  it('says that a JDK is needed when Java is only a runtime without the compiler', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'volsnap-jre-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    // A stand-in `java` that is version 17 but lists no jdk.compiler module, as a bare JRE does.
    writeFileSync(
      join(bin, 'java'),
      '#!/bin/sh\ncase "$1" in -version) echo \'openjdk version "17.0.15"\' >&2 ;; --list-modules) echo java.base@17.0.15 ;; esac\n',
      { mode: 0o755 },
    );
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin/local-cloud.js'), '--port-base', 'auto', '--data-dir', join(dataDir, 'jre')],
      { cwd: ROOT, env: { ...process.env, PATH: bin }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(output).toMatch(/without the compiler module \(jdk\.compiler\)/);
    expect(output).toContain('openjdk-17-jdk-headless');
  });
});
