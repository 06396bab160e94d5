// The IAM check: every call the local cloud recorded (./aws-calls.ts) held against the statements of
// the role in the CloudFormation template `osls package` writes for the caller's region, with the
// template's references resolved to the ARNs the local cloud's resources would have on AWS. A call
// no statement allows is what AWS would refuse; a grant no call used is reported.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localResourceNames } from '../../infra/resources.ts';
import { LOCAL_ACCOUNT_ID, type RecordedCall, readRecordedCalls } from './aws-calls.ts';
import type { RecordedCloud } from './cloud.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** An IAM policy statement as a template holds it (Resource still CloudFormation). */
export interface TemplateStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  Resource?: unknown;
  NotAction?: unknown;
  NotResource?: unknown;
  Condition?: unknown;
}

/** A statement with its resources resolved to ARN patterns. */
export interface ResolvedStatement {
  /** `#3` (its place in the role's policy) or its Sid. */
  label: string;
  effect: 'Allow' | 'Deny';
  actions: string[];
  resources: string[];
}

/** What a template reference stands for: `Ref` and `Fn::GetAtt [Id, Arn]` of a logical id. */
export interface ResourceValues {
  ref: string;
  arn: string;
}

/** The values of a template's pseudo parameters and resources, for one region of the local cloud. */
export interface TemplateValues {
  region: string;
  accountId: string;
  partition: string;
  resources: Record<string, ResourceValues>;
}

/** The stack's resources as the local cloud names them in `region` (infra/resources.ts). */
export function localTemplateValues(region: string): TemplateValues {
  const names = localResourceNames(region);
  const queue = (name: string) => ({
    ref: `https://sqs.${region}.amazonaws.com/${LOCAL_ACCOUNT_ID}/${name}`,
    arn: `arn:aws:sqs:${region}:${LOCAL_ACCOUNT_ID}:${name}`,
  });
  return {
    region,
    accountId: LOCAL_ACCOUNT_ID,
    partition: 'aws',
    resources: {
      Table: { ref: names.table, arn: `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT_ID}:table/${names.table}` },
      DataBucket: { ref: names.bucket, arn: `arn:aws:s3:::${names.bucket}` },
      WorkQueue: queue(names.queue),
      WorkDeadLetterQueue: queue(`${names.queue}-dead-letter`),
      // The local cloud reads its token key from a file: this KMS key is only granted, never called.
      TokenKey: {
        ref: `volsnap-local-${region}-token-key`,
        arn: `arn:aws:kms:${region}:${LOCAL_ACCOUNT_ID}:key/volsnap-local-${region}-token-key`,
      },
    },
  };
}

/** Resolves `Ref`, `Fn::GetAtt … Arn`, `Fn::Join` and `Fn::Sub` (string form) to a string. */
export function resolveIntrinsic(value: unknown, values: TemplateValues): string {
  if (typeof value === 'string') return value;
  const node = value as Record<string, unknown>;
  const pseudo: Record<string, string> = {
    'AWS::Region': values.region,
    'AWS::AccountId': values.accountId,
    'AWS::Partition': values.partition,
  };
  const lookup = (id: string, attribute?: string): string => {
    const found = pseudo[id] ?? (attribute ? values.resources[id]?.arn : values.resources[id]?.ref);
    if (found === undefined || (attribute !== undefined && attribute !== 'Arn')) {
      throw new Error(
        `The IAM check cannot resolve ${attribute ? `${id}.${attribute}` : id} in ${JSON.stringify(value)}.`,
      );
    }
    return found;
  };
  if (node && typeof node.Ref === 'string') return lookup(node.Ref);
  const getAtt = node?.['Fn::GetAtt'];
  if (Array.isArray(getAtt)) return lookup(String(getAtt[0]), String(getAtt[1]));
  const join = node?.['Fn::Join'];
  if (Array.isArray(join)) {
    const [separator, parts] = join as [string, unknown[]];
    return parts.map((part) => resolveIntrinsic(part, values)).join(separator);
  }
  const sub = node?.['Fn::Sub'];
  if (typeof sub === 'string') {
    return sub.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      const [id = '', attribute] = name.split('.');
      return lookup(id, attribute);
    });
  }
  throw new Error(`The IAM check cannot resolve ${JSON.stringify(value)}.`);
}

/** The statements of the functions' role (`IamRoleLambdaExecution`) in a packaged template. */
export function roleStatements(template: { Resources?: Record<string, unknown> }): TemplateStatement[] {
  const role = template.Resources?.IamRoleLambdaExecution as
    | { Properties?: { Policies?: { PolicyDocument?: { Statement?: TemplateStatement[] } }[] } }
    | undefined;
  if (!role)
    throw new Error('The template has no IamRoleLambdaExecution: where do the functions get their role?');
  return (role.Properties?.Policies ?? []).flatMap((policy) => policy.PolicyDocument?.Statement ?? []);
}

export function resolveStatements(
  statements: TemplateStatement[],
  values: TemplateValues,
): ResolvedStatement[] {
  // KMS is not called in the local cloud (it seals with a key file): its statements are not checked.
  const checked = statements.filter((s) => {
    const actions = [s.Action ?? []].flat();
    return actions.length === 0 || !actions.every((a) => a.startsWith('kms:'));
  });
  return checked.map((statement, index) => {
    const label = statement.Sid ?? `#${index + 1}`;
    for (const unsupported of ['NotAction', 'NotResource', 'Condition'] as const) {
      if (statement[unsupported] !== undefined) {
        throw new Error(`Statement ${label} has ${unsupported}, which the IAM check does not evaluate.`);
      }
    }
    return {
      label,
      effect: statement.Effect,
      actions: [statement.Action ?? []].flat(),
      resources: [statement.Resource ?? []].flat().map((resource) => resolveIntrinsic(resource, values)),
    };
  });
}

/** IAM's wildcards: `*` any run of characters, `?` any one; actions compare without case. */
function wildcard(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '').test(value);
}

const covers = (statement: ResolvedStatement, call: RecordedCall) =>
  statement.actions.some((action) => wildcard(action, call.action, true)) &&
  statement.resources.some((resource) => wildcard(resource, call.resource, false));

/** Whether the statements allow a call: one Allow covers it and no Deny does. */
export function allows(statements: ResolvedStatement[], call: RecordedCall): boolean {
  const matching = statements.filter((statement) => covers(statement, call));
  return matching.some((s) => s.effect === 'Allow') && !matching.some((s) => s.effect === 'Deny');
}

/** What of an Allow statement no recorded call used: actions none used on any of its resources, resources none touched. */
export interface UnusedGrant {
  role: string;
  statement: string;
  /** The statement's resources, to tell which statement it is. */
  on: string[];
  actions: string[];
  resources: string[];
}

export interface IamCheckResult {
  /** Distinct calls checked. */
  checked: number;
  /** Calls AWS would refuse (no statement of their role allows them). */
  denied: RecordedCall[];
  /** Grants no recorded call used. */
  unused: UnusedGrant[];
}

/** Actions the Lambda service itself uses with the role (logging, polling the function's queue): no code calls them. */
const LAMBDA_SERVICE_ACTIONS = /^(logs:|sqs:(ReceiveMessage|DeleteMessage|GetQueueAttributes)$)/;

/** Checks calls against each role's statements (roles by region). A role without statements denies all. */
export function checkCalls(
  calls: RecordedCall[],
  statementsByRole: Map<string, ResolvedStatement[]>,
): IamCheckResult {
  const denied = calls.filter((call) => !allows(statementsByRole.get(call.role) ?? [], call));
  const unused: UnusedGrant[] = [];
  for (const [role, statements] of statementsByRole) {
    const mine = calls.filter((call) => call.role === role);
    for (const statement of statements.filter((s) => s.effect === 'Allow')) {
      const own = statement.actions.filter((action) => !LAMBDA_SERVICE_ACTIONS.test(action));
      if (own.length === 0) continue;
      const used = (action: string, resource: string) =>
        mine.some((c) => wildcard(action, c.action, true) && wildcard(resource, c.resource, false));
      const actions = own.filter((action) => !statement.resources.some((resource) => used(action, resource)));
      const resources = statement.resources.filter(
        (resource) => !own.some((action) => used(action, resource)),
      );
      if (actions.length > 0 || resources.length > 0) {
        unused.push({ role, statement: statement.label, on: statement.resources, actions, resources });
      }
    }
  }
  return { checked: calls.length, denied, unused };
}

/** `arn:aws:s3:::bucket/segments/acc-1/seg-2` → `arn:aws:s3:::bucket/segments/*`. */
const foldKey = (resource: string) => resource.replace(/^(arn:aws:s3:::[^/]+\/[^/]+\/).*$/, '$1*');

/** Calls grouped as `role action resource-pattern` lines (object keys folded to their prefix). */
export function summarizeCalls(calls: RecordedCall[]): string[] {
  const lines = new Set<string>();
  for (const call of calls) {
    lines.add(
      `${call.role.padEnd(10)} ${call.action.padEnd(30)} ${foldKey(call.resource)}${call.why ? '  (404)' : ''}`,
    );
  }
  return [...lines].sort();
}

/** One call of each kind (role, operation, action, resource with object keys folded): a sample to keep. */
export function sampleCalls(calls: RecordedCall[]): RecordedCall[] {
  const kinds = new Map<string, RecordedCall>();
  for (const call of calls) {
    const kind = JSON.stringify([call.role, call.operation, call.action, foldKey(call.resource), call.why]);
    if (!kinds.has(kind)) kinds.set(kind, call);
  }
  return [...kinds.values()].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Denied calls listed one by one, up to this many. */
const MAX_DENIED_LINES = 30;

export function formatReport(result: IamCheckResult): string {
  const lines = [`IAM check: ${result.checked} distinct calls against the packaged role's statements.`];
  if (result.denied.length > 0) {
    lines.push(`${result.denied.length} call(s) no statement allows (AWS would refuse them):`);
    for (const call of result.denied.slice(0, MAX_DENIED_LINES)) {
      lines.push(
        `  DENIED ${call.role}: ${call.action} on ${call.resource} (${call.service} ${call.operation}${call.why ? `: ${call.why}` : ''})`,
      );
    }
    if (result.denied.length > MAX_DENIED_LINES)
      lines.push(`  … and ${result.denied.length - MAX_DENIED_LINES} more`);
  }
  if (result.unused.length > 0) {
    lines.push(`${result.unused.length} statement(s) with grants no recorded call used:`);
    for (const grant of result.unused) {
      const what = grant.resources.length > 0 ? `nothing used ${grant.resources.join(', ')}` : '';
      const actions = grant.actions.length > 0 ? `unused ${grant.actions.join(', ')}` : '';
      lines.push(
        `  ${grant.role} statement ${grant.statement} on ${grant.on.join(', ')}: ${[actions, what].filter(Boolean).join('; ')}`,
      );
    }
  }
  lines.push(
    result.denied.length === 0
      ? 'Every recorded call is allowed.'
      : `IAM check failed: ${result.denied.length} recorded call(s) no statement of the packaged template allows.`,
  );
  return lines.join('\n');
}

/**
 * Packages the stack for `region` with `osls package` into a temporary folder (so that the
 * checkout's .serverless/ stays as the operator left it) and returns its CloudFormation template.
 * The registry and identity region are given as the functions would read them.
 */
export async function packageTemplate(
  region: string,
  registry: Record<string, unknown>,
  identityRegion: string,
): Promise<{ Resources?: Record<string, unknown> }> {
  const out = mkdtempSync(join(tmpdir(), 'volsnap-iam-template-'));
  try {
    const result = await run(
      'npx',
      ['--no-install', 'osls', 'package', '--stage', 'local', '--region', region, '--package', out],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          TMPDIR: out,
          VOLSNAP_REGIONS: JSON.stringify(registry),
          VOLSNAP_IDENTITY_REGION: identityRegion,
          SLS_TELEMETRY_DISABLED: '1',
          SLS_NOTIFICATIONS_MODE: 'off',
          SLS_DEPRECATION_DISABLE: '*',
        },
      },
    );
    if (result.code !== 0) {
      throw new Error(`osls package --region ${region} failed:\n${result.stdout}\n${result.stderr}`);
    }
    return JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Runs a command to its end (without blocking the event loop: the test runner keeps its workers). */
function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The local registry of `regions` (their resource names; queue URLs carry the local account id). */
export function localRegistry(
  regions: string[],
): Record<string, { bucket: string; table: string; queueUrl: string }> {
  return Object.fromEntries(
    regions.map((name) => {
      const names = localResourceNames(name);
      return [
        name,
        {
          bucket: names.bucket,
          table: names.table,
          queueUrl: `http://127.0.0.1/${LOCAL_ACCOUNT_ID}/${names.queue}`,
        },
      ];
    }),
  );
}

/** The clouds that recorded into `dir` (their regions and identity region), merged. */
export function recordedClouds(dir: string): RecordedCloud {
  const clouds = readdirSync(dir)
    .filter((name) => /^cloud-\d+\.json$/.test(name))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as RecordedCloud);
  const identity = new Set(clouds.map((cloud) => cloud.identityRegion));
  if (identity.size > 1)
    throw new Error(`The recorded clouds disagree on the identity region: ${[...identity].join(', ')}.`);
  return {
    regions: [...new Set(clouds.flatMap((cloud) => cloud.regions))].sort(),
    identityRegion: [...identity][0] ?? '',
  };
}

/**
 * Checks every call recorded in `dir` against the template packaged for its role's region (with
 * the registry of every region the recorded clouds ran). Nothing recorded: nothing to check.
 */
export async function checkRecordedCalls(dir: string): Promise<IamCheckResult & { calls: RecordedCall[] }> {
  const calls = readRecordedCalls(dir);
  if (calls.length === 0) return { checked: 0, denied: [], unused: [], calls };
  const cloud = recordedClouds(dir);
  const registry = localRegistry(cloud.regions);
  const statementsByRole = new Map<string, ResolvedStatement[]>();
  for (const role of [...new Set(calls.map((call) => call.role))].sort()) {
    const template = await packageTemplate(role, registry, cloud.identityRegion);
    statementsByRole.set(role, resolveStatements(roleStatements(template), localTemplateValues(role)));
  }
  return { ...checkCalls(calls, statementsByRole), calls };
}
