import { useState } from 'preact/hooks';
import type { AccountUsage, Export } from '../../lib/client/api-client.ts';
import { useConsole } from './context.ts';
import { formatSize, formatTags, formatTime, volumeFields } from './format.ts';
import { ErrorText, Fields, Notice, StateBadge, useLoaded } from './ui.tsx';

export function VolumesPage(props: { name: string }) {
  const { api, region } = useConsole();
  const [name, setName] = useState(props.name);
  const [applied, setApplied] = useState(props.name);
  const list = useLoaded(
    () => api.listVolumes({ ...(applied ? { name: applied } : {}), limit: 100 }),
    `${region} ${applied}`,
  );
  const [open, setOpen] = useState<string | undefined>(undefined);
  const volumes = list.data?.volumes ?? [];
  const shown = volumes.find((v) => v.volumeId === open);
  return (
    <section aria-labelledby="volumes-title">
      <h1 id="volumes-title">Volumes</h1>
      <form
        class="filters"
        aria-label="Filter volumes"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(name.trim());
        }}
      >
        <label>
          Name
          <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorText error={list.error} />
      {list.data && volumes.length === 0 ? <p class="empty">No volumes here.</p> : null}
      {volumes.length > 0 ? (
        <div class="table-scroll">
          <table class="list" aria-label="Volumes">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">ID</th>
                <th scope="col">Size</th>
                <th scope="col">Created</th>
                <th scope="col">Tags</th>
                <th scope="col">Snapshots</th>
              </tr>
            </thead>
            <tbody>
              {volumes.map((v) => (
                <tr key={v.volumeId} data-volume-id={v.volumeId}>
                  <td class="name">
                    <button
                      type="button"
                      class="link"
                      aria-expanded={open === v.volumeId}
                      onClick={() => setOpen(open === v.volumeId ? undefined : v.volumeId)}
                    >
                      {v.name}
                    </button>
                  </td>
                  <td class="id">{v.volumeId}</td>
                  <td>{formatSize(v.sizeBytes)}</td>
                  <td>{formatTime(v.createdAt)}</td>
                  <td>{formatTags(v.tags)}</td>
                  <td>
                    <a href={`#/snapshots/own?volume=${encodeURIComponent(v.volumeId)}`}>list</a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {shown ? <Fields fields={volumeFields(shown)} label="Volume fields" /> : null}
    </section>
  );
}

export function ExportsPage() {
  const { api, region } = useConsole();
  const list = useLoaded(
    () => api.listExports({ limit: 100 }),
    region,
    (page) => page.exports.some((e) => e.state === 'pending'),
  );
  const exports = [...(list.data?.exports ?? [])].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return (
    <section aria-labelledby="exports-title">
      <h1 id="exports-title">Exports</h1>
      <ErrorText error={list.error} />
      {list.data && exports.length === 0 ? <p class="empty">No exports here.</p> : null}
      {exports.length > 0 ? (
        <div class="table-scroll">
          <table class="list" aria-label="Exports">
            <thead>
              <tr>
                <th scope="col">ID</th>
                <th scope="col">Snapshot</th>
                <th scope="col">Format</th>
                <th scope="col">Size</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Download</th>
              </tr>
            </thead>
            <tbody>
              {exports.map((e) => (
                <tr key={e.exportId} data-export-id={e.exportId}>
                  <td class="id">{e.exportId}</td>
                  <td class="id">
                    <a href={`#/snapshot/${encodeURIComponent(e.snapshotId)}`}>{e.snapshotId}</a>
                  </td>
                  <td>{e.format}</td>
                  <td>{e.state === 'completed' ? formatSize(e.size) : '-'}</td>
                  <td>
                    <StateBadge state={e.state} progress={e.progress} />
                    {e.stateReason ? <span class="reason"> {e.stateReason}</span> : null}
                  </td>
                  <td>{formatTime(e.createdAt)}</td>
                  <td>{formatTime(e.expiresAt)}</td>
                  <td>{e.state === 'completed' ? <PresignedUrl exported={e} /> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

const URL_LIFETIMES: [seconds: number, label: string][] = [
  [3600, '1 hour'],
  [86_400, '1 day'],
  [7 * 86_400, '7 days'],
];

/** Issues a presigned GET URL of an export's object and copies it to the clipboard. */
function PresignedUrl({ exported }: { exported: Export }) {
  const { api } = useConsole();
  const [lifetime, setLifetime] = useState(3600);
  const [url, setUrl] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const issue = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setNotice(undefined);
    try {
      const answer = await api.exportUrl(exported.exportId, lifetime);
      setUrl(answer.url);
      await navigator.clipboard.writeText(answer.url).then(
        () => setNotice('URL copied to the clipboard.'),
        () => setNotice('Copy the URL from the field (the browser did not allow the clipboard).'),
      );
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <form class="inline" onSubmit={issue} aria-label={`Presigned URL of ${exported.exportId}`}>
      <label>
        Valid for
        <select value={lifetime} onChange={(e) => setLifetime(Number((e.target as HTMLSelectElement).value))}>
          {URL_LIFETIMES.map(([seconds, label]) => (
            <option key={seconds} value={seconds}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <button type="submit">Copy URL</button>
      {url ? (
        <label class="url">
          URL
          <input readOnly value={url} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </label>
      ) : null}
      <Notice text={notice} />
      <ErrorText error={error} />
    </form>
  );
}

export function AccountPage() {
  const { api, region, whoami } = useConsole();
  const usage = useLoaded(() => api.usage(), region);
  const { account, user, keyId } = whoami;
  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">Account</h1>
      <Fields
        label="Account"
        fields={[
          ['account', `${account.name} (${account.accountId})`],
          ['user', `${user.userName} (${user.role})`],
          ['key', keyId],
          ['recycle bin', `${account.recycleBinDays ?? 7} days`],
        ]}
      />
      <h2>Usage in {region}</h2>
      <ErrorText error={usage.error} />
      {usage.data ? <UsageTable usage={usage.data} /> : null}
    </section>
  );
}

function UsageTable({ usage }: { usage: AccountUsage }) {
  const rows: [string, { used: number; limit: number }, (n: number) => string][] = [];
  for (const [name, value] of Object.entries(usage)) {
    if (value && typeof value === 'object' && 'used' in value && 'limit' in value)
      rows.push([
        name,
        value as { used: number; limit: number },
        name === 'storedBytes' ? formatSize : String,
      ]);
  }
  return (
    <table class="list" aria-label="Usage against quotas">
      <thead>
        <tr>
          <th scope="col">Quota</th>
          <th scope="col">Used</th>
          <th scope="col">Limit</th>
          <th scope="col">
            <span class="sr-only">Share used</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([name, m, show]) => (
          <tr key={name} data-quota={name}>
            <td>{name}</td>
            <td>{show(m.used)}</td>
            <td>{show(m.limit)}</td>
            <td>
              <meter
                min={0}
                max={m.limit || 1}
                value={m.used}
                aria-label={`${name}: ${show(m.used)} of ${show(m.limit)}`}
              />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
