// The one EC2 call coldsnap waits with: DescribeSnapshots (Query protocol, XML), at `<region API>/ec2`.

import { snapshotPorts } from '../../lib/aws/snapshots.ts';
import type { Caller } from '../../lib/core/identity/identity.ts';
import { VolsnapError } from '../../lib/core/shared/errors.ts';
import { MAX_PAGE_SIZE } from '../../lib/core/shared/pagination.ts';
import type { SnapshotService } from '../../lib/core/snapshots/snapshot-service.ts';
import type { Snapshot } from '../../lib/core/snapshots/snapshots.ts';
import { type AwsHandlerOptions, awsHandler, escapeXml } from '../../lib/http/ebs/protocol.ts';
import { awsStatusOf, volumeSizeGiB } from '../../lib/http/ebs/snapshot-view.ts';
import { type HttpLambda, httpRouter } from '../../lib/http/stack.ts';
import { servicesOver } from '../../lib/root.ts';
import { snapshotService } from '../../lib/wiring/snapshots.ts';

const service = servicesOver(...snapshotPorts);

const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

function ec2Error(code: string, message: string): VolsnapError {
  return new VolsnapError('request.invalid', message, { details: { awsType: code } });
}

/** The `Name.N` members of a Query-protocol form, in N order. */
function listOf(form: URLSearchParams, name: string): string[] {
  return [...form.entries()]
    .map(([key, value]) => ({ n: new RegExp(`^${name}\\.(\\d+)$`).exec(key)?.[1], value }))
    .filter((m): m is { n: string; value: string } => m.n !== undefined)
    .sort((a, b) => Number(a.n) - Number(b.n))
    .map((m) => m.value);
}

/** `Filter.N.Name` / `Filter.N.Value.M`: the filters DescribeSnapshots is asked (status, snapshot-id, volume-id). */
function filtersOf(form: URLSearchParams): Map<string, string[]> {
  const filters = new Map<string, string[]>();
  for (const [key, name] of form.entries()) {
    const n = /^Filter\.(\d+)\.Name$/.exec(key)?.[1];
    if (n !== undefined) filters.set(name, listOf(form, `Filter\\.${n}\\.Value`));
  }
  return filters;
}

function snapshotItem(snapshot: Snapshot): string {
  const status = awsStatusOf(snapshot);
  const tags = Object.entries(snapshot.tags)
    .map(([key, value]) => `<item><key>${escapeXml(key)}</key><value>${escapeXml(value)}</value></item>`)
    .join('');
  return (
    '<item>' +
    `<snapshotId>${escapeXml(snapshot.snapshotId)}</snapshotId>` +
    `<volumeId>${escapeXml(snapshot.volumeId)}</volumeId>` +
    `<status>${status}</status>` +
    (status === 'error' && snapshot.stateReason
      ? `<statusMessage>${escapeXml(snapshot.stateReason.slice(0, 1000))}</statusMessage>`
      : '') +
    `<startTime>${escapeXml(snapshot.createdAt)}</startTime>` +
    `<progress>${status === 'completed' ? 100 : Math.min(99, snapshot.progress)}%</progress>` +
    `<ownerId>${escapeXml(snapshot.accountId)}</ownerId>` +
    `<volumeSize>${volumeSizeGiB(snapshot)}</volumeSize>` +
    `<description>${escapeXml(snapshot.description)}</description>` +
    '<encrypted>false</encrypted>' +
    '<storageTier>standard</storageTier>' +
    (tags ? `<tagSet>${tags}</tagSet>` : '') +
    '</item>'
  );
}

/**
 * DescribeSnapshots: by `SnapshotId.N` (each must be a snapshot the caller may read, else
 * `InvalidSnapshot.NotFound`, as EC2 answers), else the caller's own snapshots a page at a time
 * (`MaxResults`, `NextToken`); `Filter.N` on `status`, `snapshot-id` and `volume-id`.
 */
export async function describeSnapshots(
  snapshots: SnapshotService,
  caller: Caller,
  form: URLSearchParams,
): Promise<{ items: Snapshot[]; nextToken?: string }> {
  const ids = listOf(form, 'SnapshotId');
  const filters = filtersOf(form);
  let items: Snapshot[];
  let nextToken: string | undefined;
  if (ids.length > 0) {
    items = [];
    for (const id of ids) {
      const found = await snapshots.get(caller, id).catch((error: unknown) => {
        if (error instanceof VolsnapError && error.code === 'snapshot.notFound')
          throw ec2Error('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
        throw error;
      });
      if (found.state !== 'recycled' && found.state !== 'deleting') items.push(found);
    }
  } else {
    const max = form.get('MaxResults');
    const limit = max === null ? MAX_PAGE_SIZE : Number(max);
    if (!Number.isInteger(limit) || limit < 5 || limit > MAX_PAGE_SIZE)
      throw ec2Error('InvalidParameterValue', `MaxResults is 5 to ${MAX_PAGE_SIZE}; it was '${max}'.`);
    const page = await snapshots.list(caller, {}, { limit, nextToken: form.get('NextToken') ?? undefined });
    items = page.items;
    nextToken = page.nextToken;
  }
  const keep = (name: string, value: string) => {
    const wanted = filters.get(name);
    return !wanted || wanted.includes(value);
  };
  items = items.filter(
    (s) =>
      keep('status', awsStatusOf(s)) && keep('snapshot-id', s.snapshotId) && keep('volume-id', s.volumeId),
  );
  return { items, ...(nextToken ? { nextToken } : {}) };
}

/** The routes of the `ec2` function over a snapshot service (the deployment's, or a test's). */
export function ec2RoutesOf(
  snapshots: () => SnapshotService,
  options: AwsHandlerOptions = {},
): Record<string, HttpLambda> {
  const describe = awsHandler(
    { service: 'ec2' },
    async ({ caller, body, requestId }) => {
      const form = new URLSearchParams(body.toString('utf8'));
      const action = form.get('Action');
      if (action !== 'DescribeSnapshots') {
        throw ec2Error(
          'InvalidAction',
          `The action ${action ?? '(none)'} is not valid for this web service: volsnap answers DescribeSnapshots only.`,
        );
      }
      const { items, nextToken } = await describeSnapshots(snapshots(), caller, form);
      const xml =
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        `<DescribeSnapshotsResponse xmlns="${EC2_NAMESPACE}">` +
        `<requestId>${escapeXml(requestId)}</requestId>` +
        `<snapshotSet>${items.map(snapshotItem).join('')}</snapshotSet>` +
        (nextToken ? `<nextToken>${escapeXml(nextToken)}</nextToken>` : '') +
        '</DescribeSnapshotsResponse>';
      return { xml };
    },
    options,
  );
  // The SDKs post to the endpoint's path and `/`: `/ec2/` for the endpoint `<API URL>/ec2`.
  return { 'POST /ec2/': describe };
}

/** `POST /ec2/`: the Query protocol's `Action=DescribeSnapshots`. */
export const handler = httpRouter(ec2RoutesOf(() => service(snapshotService)));
