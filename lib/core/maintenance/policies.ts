import { CronExpressionParser } from 'cron-parser';
import { type Caller, requirePermission } from '../identity/identity.ts';
import { type Clock, isoTime, parseIsoTime } from '../shared/clock.ts';
import { VolsnapError } from '../shared/errors.ts';
import { isId, newId } from '../shared/ids.ts';
import type { Page } from '../shared/pagination.ts';
import { type Tags, validateTags } from '../shared/tags.ts';
import { requirePrintable } from '../shared/text.ts';
import { DEFAULT_AGENT_TIMEOUT_MS } from '../snapshots/snapshot-access.ts';

/** When a policy runs: every `everyMs` (aligned to multiples of it since the epoch), or on a 5-field cron, in UTC. */
export type PolicySchedule = { everyMs: number } | { cron: string };
/**
 * Which of a policy's completed snapshots of a volume it keeps: the newest `keep`, or those younger
 * than `keepForMs` (and always the newest). Snapshots being written, and their parents, are kept on
 * top; see the policy runner.
 */
export type PolicyRetention = { keep: number } | { keepForMs: number };

/** A copy of every snapshot the policy makes, into another region, with its own retention there. */
export interface CopyRule {
  region: string;
  retention: PolicyRetention;
}

/** What one run of a policy did (ids of snapshots; `errors` are messages). */
export interface PolicyRunReport {
  at: string;
  created: string[];
  deleted: string[];
  copied: string[];
  skipped: string[];
  errors: string[];
}

/**
 * A snapshot policy, as AWS Data Lifecycle Manager has them: on a schedule, snapshot every volume of
 * the account (in the policy's region) carrying all `targetTags`, keep what `retention` says, and
 * copy each new snapshot to the regions of `copyRules`.
 */
export interface Policy {
  policyId: string;
  accountId: string;
  name: string;
  description: string;
  /** The volumes carrying ALL these tags (at least one). */
  targetTags: Tags;
  schedule: PolicySchedule;
  retention: PolicyRetention;
  /** At most 3, each to another region than the policy's. */
  copyRules: CopyRule[];
  /** How long a `queued` snapshot the policy made waits for an agent before it fails. */
  agentTimeoutMs: number;
  enabled: boolean;
  region: string;
  createdAt: string;
  /** When the policy runs next (computed from the schedule). */
  nextRunAt: string;
  lastRunAt?: string;
  lastRun?: PolicyRunReport;
}

/** The tag every snapshot a policy makes carries, with the policy's id as value. */
export const POLICY_TAG = 'volsnap:policy';

export const MIN_EVERY_MS = 60_000;
export const MAX_EVERY_MS = 365 * 86_400_000;
export const MAX_KEEP = 1000;
export const MIN_KEEP_FOR_MS = 60_000;
export const MAX_KEEP_FOR_MS = 100 * 365 * 86_400_000;
export const MAX_COPY_RULES = 3;
// One default for how long a queued snapshot waits for an agent, wherever it is queued from.
export { DEFAULT_AGENT_TIMEOUT_MS };
export const MIN_AGENT_TIMEOUT_MS = 1000;
export const MAX_AGENT_TIMEOUT_MS = 7 * 86_400_000;
export const DEFAULT_MAX_POLICIES = 100;

/**
 * The first time the schedule fires strictly after `afterMs` (epoch milliseconds). `everyMs` fires
 * at whole multiples of it since the epoch (every 6 h: 00:00, 06:00, 12:00, 18:00 UTC), so a late
 * run does not shift the ones after it; a cron fires at its next matching minute in UTC.
 */
export function nextRunAfter(schedule: PolicySchedule, afterMs: number): number {
  if ('everyMs' in schedule) return (Math.floor(afterMs / schedule.everyMs) + 1) * schedule.everyMs;
  return CronExpressionParser.parse(schedule.cron, { currentDate: afterMs, tz: 'UTC' }).next().getTime();
}

/** Where policies are kept. Implementations: DynamoDB, and in memory for unit tests; both pass the same contract suite. */
export interface PolicyRepository {
  /** Stores a new policy; fails if the id exists. */
  create(policy: Policy): Promise<void>;
  /** By id, any account (the service checks the owner). */
  get(policyId: string): Promise<Policy | undefined>;
  /** The account's policies, newest first. */
  list(accountId: string, page: { limit: number; nextToken?: string }): Promise<Page<Policy>>;
  /** Changes the fields given (undefined values are ignored); undefined if there is no such policy. */
  update(policyId: string, changes: PolicyUpdate): Promise<Policy | undefined>;
  /** Whether there was a policy to delete. */
  delete(policyId: string): Promise<boolean>;
  /** Enabled policies of every account in this region whose nextRunAt <= nowIso. */
  listDue(nowIso: string): Promise<Policy[]>;
  /** Every enabled policy in the region (for on-demand runs). */
  listEnabled(): Promise<Policy[]>;
  /**
   * Claims a run: only if the policy is enabled and its nextRunAt still equals `expectedNextRunAt`
   * (so two overlapping runners never both run it), sets nextRunAt and lastRunAt. With
   * `expectedLastRunAt` (null: never ran), its lastRunAt must also still be that: a forced run of a
   * policy not yet due leaves nextRunAt as it was, so only lastRunAt tells two such runs apart.
   * Returns whether this caller won.
   */
  claimRun(
    policyId: string,
    expectedNextRunAt: string,
    nextRunAt: string,
    lastRunAt: string,
    expectedLastRunAt?: string | null,
  ): Promise<boolean>;
  /** Stores the report of the last run (nothing if the policy is gone). */
  recordRun(policyId: string, report: PolicyRunReport): Promise<void>;
}

export type PolicyUpdate = Partial<
  Pick<
    Policy,
    | 'name'
    | 'description'
    | 'enabled'
    | 'targetTags'
    | 'schedule'
    | 'retention'
    | 'copyRules'
    | 'agentTimeoutMs'
    | 'nextRunAt'
  >
>;

/** A schedule as the API takes it: exactly one of the two. */
export interface ScheduleInput {
  everyMs?: number;
  cron?: string;
}
/** A retention as the API takes it: exactly one of the two. */
export interface RetentionInput {
  keep?: number;
  keepForMs?: number;
}
export interface CopyRuleInput {
  region: string;
  retention: RetentionInput;
}

export interface CreatePolicyInput {
  name: string;
  description?: string;
  targetTags: Tags;
  schedule: ScheduleInput;
  retention: RetentionInput;
  copyRules?: CopyRuleInput[];
  /** 1 hour unless given. */
  agentTimeoutMs?: number;
  /** true unless given. */
  enabled?: boolean;
}

export interface PolicyChanges {
  name?: string;
  description?: string;
  enabled?: boolean;
  targetTags?: Tags;
  schedule?: ScheduleInput;
  retention?: RetentionInput;
  copyRules?: CopyRuleInput[];
  agentTimeoutMs?: number;
}

export interface PolicyServiceOptions {
  policies: PolicyRepository;
  clock: Clock;
  /** The region this service runs in: the policies' region. */
  region: string;
  /** The names of every region of the deployment (copy rules must name one of them). */
  knownRegions: readonly string[];
  /** Policies an account may have in this region (100 unless given). */
  maxPolicies?: number;
}

const NAME = /^[\p{L}\p{N} _.:/+\-@()[\]]{1,255}$/u;
const MAX_DESCRIPTION = 1024;

/** Policy use cases: create, list, show, update, delete; the scheduled runner uses the repository. */
export class PolicyService {
  readonly #o: Required<PolicyServiceOptions>;

  constructor(options: PolicyServiceOptions) {
    this.#o = { maxPolicies: DEFAULT_MAX_POLICIES, ...options };
  }

  async create(caller: Caller, input: CreatePolicyInput): Promise<Policy> {
    requirePermission(caller, 'policy:manage');
    const schedule = validateSchedule(input.schedule);
    const now = this.#o.clock.now();
    const policy: Policy = {
      policyId: newId('policy'),
      accountId: caller.accountId,
      name: validateName(input.name),
      description: validateDescription(input.description ?? ''),
      targetTags: validateTargetTags(input.targetTags),
      schedule,
      retention: validateRetention(input.retention, 'retention'),
      copyRules: this.#copyRules(input.copyRules ?? []),
      agentTimeoutMs: validateAgentTimeout(input.agentTimeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS),
      enabled: validateEnabled(input.enabled ?? true),
      region: this.#o.region,
      createdAt: isoTime(now),
      nextRunAt: isoTime(nextRunAfter(schedule, now)),
    };
    const { items } = await this.#o.policies.list(caller.accountId, { limit: this.#o.maxPolicies });
    if (items.length >= this.#o.maxPolicies) {
      throw new VolsnapError(
        'quota.exceeded',
        `The account has ${items.length} policies in ${this.#o.region}, its quota is ${this.#o.maxPolicies}: delete policies it no longer needs.`,
        {
          details: {
            region: this.#o.region,
            quota: 'policies',
            limit: this.#o.maxPolicies,
            used: items.length,
          },
        },
      );
    }
    await this.#o.policies.create(policy);
    return policy;
  }

  list(caller: Caller, page: { limit: number; nextToken?: string }): Promise<Page<Policy>> {
    return this.#o.policies.list(caller.accountId, page);
  }

  /** The caller's policy, or `policy.notFound` (also for other accounts' policies). */
  async get(caller: Caller, policyId: string): Promise<Policy> {
    const found = isId('policy', policyId) ? await this.#o.policies.get(policyId) : undefined;
    if (!found || found.accountId !== caller.accountId) throw notFound(policyId);
    return found;
  }

  /**
   * Changes the fields given. A new schedule, or enabling a disabled policy, sets the next run from
   * now; an empty change returns the policy as it is.
   */
  async update(caller: Caller, policyId: string, changes: PolicyChanges): Promise<Policy> {
    requirePermission(caller, 'policy:manage');
    const current = await this.get(caller, policyId);
    const update: PolicyUpdate = {};
    if (changes.name !== undefined) update.name = validateName(changes.name);
    if (changes.description !== undefined) update.description = validateDescription(changes.description);
    if (changes.targetTags !== undefined) update.targetTags = validateTargetTags(changes.targetTags);
    if (changes.schedule !== undefined) update.schedule = validateSchedule(changes.schedule);
    if (changes.retention !== undefined) update.retention = validateRetention(changes.retention, 'retention');
    if (changes.copyRules !== undefined) update.copyRules = this.#copyRules(changes.copyRules);
    if (changes.agentTimeoutMs !== undefined)
      update.agentTimeoutMs = validateAgentTimeout(changes.agentTimeoutMs);
    if (changes.enabled !== undefined) update.enabled = validateEnabled(changes.enabled);
    if (update.schedule || (update.enabled === true && !current.enabled)) {
      update.nextRunAt = isoTime(nextRunAfter(update.schedule ?? current.schedule, this.#o.clock.now()));
    }
    if (Object.keys(update).length === 0) return current;
    const updated = await this.#o.policies.update(policyId, update);
    if (!updated) throw notFound(policyId);
    return updated;
  }

  async delete(caller: Caller, policyId: string): Promise<void> {
    requirePermission(caller, 'policy:manage');
    await this.get(caller, policyId);
    if (!(await this.#o.policies.delete(policyId))) throw notFound(policyId);
  }

  #copyRules(rules: readonly CopyRuleInput[]): CopyRule[] {
    if (!Array.isArray(rules) || rules.length > MAX_COPY_RULES) {
      throw new VolsnapError(
        'request.invalid',
        `A policy has at most ${MAX_COPY_RULES} copy rules; ${Array.isArray(rules) ? rules.length : 'something else'} were given.`,
      );
    }
    const seen = new Set<string>();
    return rules.map((rule, i) => {
      const region = rule?.region;
      if (typeof region !== 'string' || region === '') {
        throw new VolsnapError('request.invalid', `copyRules[${i}].region must name a region.`);
      }
      if (region === this.#o.region) {
        throw new VolsnapError(
          'request.invalid',
          `copyRules[${i}] copies into ${region}, the policy's own region: copy rules name other regions (the snapshots are already here).`,
        );
      }
      if (!this.#o.knownRegions.includes(region)) {
        const known = [...this.#o.knownRegions].sort();
        throw new VolsnapError(
          'region.unknown',
          `Unknown region '${region}'. Known regions: ${known.join(', ')}.`,
          {
            details: { region, known },
          },
        );
      }
      if (seen.has(region)) {
        throw new VolsnapError(
          'request.invalid',
          `Two copy rules name region ${region}: give each region one rule.`,
        );
      }
      seen.add(region);
      return { region, retention: validateRetention(rule.retention, `copyRules[${i}].retention`) };
    });
  }
}

function notFound(policyId: string): VolsnapError {
  return new VolsnapError('policy.notFound', `No policy ${policyId} in this account and region.`, {
    details: { policyId },
  });
}

function validateName(name: string): string {
  if (typeof name === 'string') requirePrintable('The policy name', name);
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new VolsnapError(
      'request.invalid',
      'A policy name is 1–255 letters, digits, spaces and _.:/+-@()[].',
    );
  }
  return name;
}

function validateDescription(description: string): string {
  if (typeof description !== 'string' || description.length > MAX_DESCRIPTION) {
    throw new VolsnapError(
      'request.invalid',
      `A policy description is at most ${MAX_DESCRIPTION} characters.`,
    );
  }
  return requirePrintable('The policy description', description);
}

function validateEnabled(enabled: boolean): boolean {
  if (typeof enabled !== 'boolean') throw new VolsnapError('request.invalid', 'enabled is true or false.');
  return enabled;
}

function validateTargetTags(tags: Tags): Tags {
  if (typeof tags !== 'object' || tags === null || Object.keys(tags).length === 0) {
    throw new VolsnapError(
      'request.invalid',
      'A policy targets volumes by tag: give at least one tag (key=value); it snapshots the volumes carrying all of them.',
    );
  }
  return { ...validateTags(tags) };
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/** Exactly one of `everyMs` (60 s to 365 days) or `cron` (5 fields, UTC, that fires at all). */
export function validateSchedule(schedule: ScheduleInput): PolicySchedule {
  const every = schedule?.everyMs;
  const cron = schedule?.cron;
  if ((every === undefined) === (cron === undefined)) {
    throw new VolsnapError(
      'request.invalid',
      'A schedule is either {everyMs} (a period in milliseconds) or {cron} (5 fields, UTC): give exactly one.',
    );
  }
  if (every !== undefined) {
    if (!isWhole(every) || every < MIN_EVERY_MS || every > MAX_EVERY_MS) {
      throw new VolsnapError(
        'request.invalid',
        `A policy runs at most once a minute and at least once a year: everyMs is a whole number from ${MIN_EVERY_MS} to ${MAX_EVERY_MS}; ${every} was given.`,
      );
    }
    return { everyMs: every };
  }
  return { cron: validateCron(cron as string) };
}

const CRON_ITEM = /^(\*|\d+|[A-Za-z]{3})(-(\d+|[A-Za-z]{3}))?(\/\d+)?$/;
const CRON_HELP =
  "Write 5 fields (minute hour day-of-month month day-of-week) in UTC, e.g. '0 3 * * *' for 03:00 every day or '*/30 * * * 1-5' every half hour on weekdays.";

function validateCron(cron: string): string {
  if (typeof cron !== 'string') throw new VolsnapError('request.invalid', `cron is text. ${CRON_HELP}`);
  const fields = cron.trim().split(/\s+/);
  const bad = (why: string) =>
    new VolsnapError('request.invalid', `Cron '${cron.slice(0, 100)}' is not valid: ${why}. ${CRON_HELP}`);
  if (fields.length !== 5) throw bad(`it has ${fields.length} field(s), not 5`);
  for (const field of fields) {
    for (const item of field.split(',')) {
      if (!CRON_ITEM.test(item)) throw bad(`'${field}' is not a cron field`);
    }
  }
  const normalized = fields.join(' ');
  try {
    const expression = CronExpressionParser.parse(normalized, { currentDate: 0, tz: 'UTC' });
    expression.next();
  } catch (cause) {
    throw new VolsnapError(
      'request.invalid',
      `Cron '${normalized}' is not valid: ${(cause as Error).message}. ${CRON_HELP}`,
      { cause },
    );
  }
  return normalized;
}

/** Exactly one of `keep` (1 to 1000 snapshots) or `keepForMs` (at least a minute). */
export function validateRetention(retention: RetentionInput, what = 'retention'): PolicyRetention {
  const keep = retention?.keep;
  const keepFor = retention?.keepForMs;
  if ((keep === undefined) === (keepFor === undefined)) {
    throw new VolsnapError(
      'request.invalid',
      `A ${what} is either {keep} (how many snapshots) or {keepForMs} (how long, in milliseconds): give exactly one.`,
    );
  }
  if (keep !== undefined) {
    if (!isWhole(keep) || keep < 1 || keep > MAX_KEEP) {
      throw new VolsnapError(
        'request.invalid',
        `${what}.keep is a whole number of snapshots from 1 to ${MAX_KEEP}; ${keep} was given.`,
      );
    }
    return { keep };
  }
  if (!isWhole(keepFor) || keepFor < MIN_KEEP_FOR_MS || keepFor > MAX_KEEP_FOR_MS) {
    throw new VolsnapError(
      'request.invalid',
      `${what}.keepForMs is a whole number of milliseconds from ${MIN_KEEP_FOR_MS} (1 minute) to ${MAX_KEEP_FOR_MS} (100 years); ${keepFor} was given.`,
    );
  }
  return { keepForMs: keepFor };
}

function validateAgentTimeout(ms: number): number {
  if (!isWhole(ms) || ms < MIN_AGENT_TIMEOUT_MS || ms > MAX_AGENT_TIMEOUT_MS) {
    throw new VolsnapError(
      'request.invalid',
      `agentTimeoutMs is how long a queued snapshot waits for an agent: a whole number of milliseconds from ${MIN_AGENT_TIMEOUT_MS} (1 s) to ${MAX_AGENT_TIMEOUT_MS} (7 days); ${ms} was given.`,
    );
  }
  return ms;
}

/** Whether a policy is due at `nowMs` (enabled, and its next run is not in the future). */
export function isDue(policy: Policy, nowMs: number): boolean {
  return policy.enabled && parseIsoTime(policy.nextRunAt) <= nowMs;
}
