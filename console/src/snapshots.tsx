import { useState } from 'preact/hooks';
import { parseSize } from '../../lib/cli/units.ts';
import type { Snapshot, SnapshotState } from '../../lib/client/api-client.ts';
import { navigate, useConsole } from './context.ts';
import { formatSize, formatTags, formatTime, inFlight, parseTag, snapshotFields } from './format.ts';
import { type Column, type FilterField, ListTable, pageOf, tokenOf } from './list-table.tsx';
import { ConfirmDialog, ErrorText, Fields, Notice, StateBadge, useLoaded } from './ui.tsx';

const TABS: [tab: string, label: string][] = [
  ['own', 'My snapshots'],
  ['shared', 'Shared with me'],
  ['public', 'Public'],
  ['recycle-bin', 'Recycle bin'],
];
const STATES: SnapshotState[] = ['queued', 'pending', 'completed', 'error'];

export function SnapshotsPage({ tab, volumeId }: { tab: string; volumeId: string }) {
  const { api, region } = useConsole();
  const [version, setVersion] = useState(0);
  const recycleBin = tab === 'recycle-bin';
  const others = tab === 'shared' || tab === 'public';
  const columns: Column<Snapshot>[] = [
    {
      header: 'Name',
      class: 'name',
      cell: (s) => <a href={`#/snapshot/${encodeURIComponent(s.snapshotId)}`}>{s.name || s.snapshotId}</a>,
    },
    { header: 'ID', class: 'id', cell: (s) => s.snapshotId },
    ...(others ? [{ header: 'Owner', class: 'id', cell: (s: Snapshot) => s.accountId }] : []),
    { header: 'Volume', class: 'id', cell: (s) => s.volumeId },
    { header: 'Size', cell: (s) => formatSize(s.volumeSize) },
    { header: 'State', cell: (s) => <StateBadge state={s.state} progress={s.progress} /> },
    { header: 'Created', sort: true, cell: (s) => formatTime(s.createdAt) },
    { header: 'Description', cell: (s) => s.description || '-' },
    recycleBin
      ? { header: 'Purged at', cell: (s) => formatTime(s.purgeAt) }
      : { header: 'Tags', cell: (s) => formatTags(s.tags) },
    ...(recycleBin
      ? [
          {
            header: 'Actions',
            cell: (s: Snapshot) => <UndeleteButton snapshot={s} onDone={() => setVersion((v) => v + 1)} />,
          },
        ]
      : []),
  ];
  const filters: FilterField<Snapshot>[] = [
    { key: 'name', label: 'Name' },
    ...(recycleBin ? [] : [{ key: 'state', label: 'State', options: STATES }]),
    { key: 'tag', label: 'Tag (key=value)' },
    { key: 'volume', label: 'Volume', placeholder: 'vol-…' },
  ];
  return (
    <section aria-labelledby="snapshots-title">
      <h1 id="snapshots-title">Snapshots</h1>
      <nav class="tabs navlinks" aria-label="Which snapshots">
        {TABS.map(([id, label]) => (
          <a key={id} href={`#/snapshots/${id}`} aria-current={tab === id ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <ListTable
        label="Snapshots"
        scope={`${region} ${tab}`}
        version={version}
        columns={columns}
        filters={filters}
        initialFilter={{ volume: volumeId }}
        rowKey={(s) => s.snapshotId}
        rowData={(s) => ({ 'snapshot-id': s.snapshotId })}
        createdAt={(s) => s.createdAt}
        pending={(s) => inFlight(s.state)}
        load={async ({ filter, limit, nextToken }) => {
          const tags = filter.tag ? parseTag(filter.tag) : undefined;
          const page = await api.listSnapshots({
            ...(others ? { scope: tab as 'shared' | 'public' } : {}),
            ...(recycleBin
              ? { state: 'recycled' }
              : filter.state
                ? { state: filter.state as SnapshotState }
                : {}),
            ...(filter.name ? { name: filter.name } : {}),
            ...(filter.volume ? { volumeId: filter.volume } : {}),
            ...(tags ? { tags } : {}),
            limit,
            ...tokenOf(nextToken),
          });
          return pageOf(page.snapshots, page.nextToken);
        }}
      />
    </section>
  );
}

function UndeleteButton({ snapshot, onDone }: { snapshot: Snapshot; onDone: (s: Snapshot) => void }) {
  const { api } = useConsole();
  const [error, setError] = useState<unknown>(undefined);
  const undelete = async () => {
    setError(undefined);
    try {
      onDone(await api.undeleteSnapshot(snapshot.snapshotId));
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <>
      <button
        type="button"
        onClick={undelete}
        aria-label={`Undelete ${snapshot.name || snapshot.snapshotId}`}
      >
        Undelete
      </button>
      <ErrorText error={error} />
    </>
  );
}

/**
 * Snapshots an action just answered (a copy's 202), shown by the detail view at once: a copy is
 * `pending` when it starts, and the view says so before its first poll.
 */
const justMade = new Map<string, Snapshot>();

export function SnapshotDetail({ snapshotId }: { snapshotId: string }) {
  const { api, region, whoami } = useConsole();
  const [seed] = useState(() => justMade.get(snapshotId));
  const loaded = useLoaded(
    () => api.getSnapshot(snapshotId),
    `${region} ${snapshotId}`,
    (s) => inFlight(s.state),
    seed?.region === region ? seed : undefined,
  );
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const s = loaded.data;
  const owner = s !== undefined && s.accountId === whoami.account.accountId;
  return (
    <section aria-labelledby="snapshot-title">
      <p class="back">
        <a href="#/snapshots">← Snapshots</a>
      </p>
      <h1 id="snapshot-title">
        Snapshot <span class="title-name">{s ? s.name || s.snapshotId : snapshotId}</span>
      </h1>
      <ErrorText error={loaded.error} />
      <Notice text={notice} />
      {s === undefined ? (
        loaded.error ? null : (
          <p class="loading">Loading…</p>
        )
      ) : (
        <>
          <p class="state-line">
            State: <StateBadge state={s.state} progress={s.progress} />
          </p>
          <Fields fields={snapshotFields(s)} label="Snapshot fields" />
          <Tags tags={s.tags} />
          {owner ? (
            <SnapshotActions
              snapshot={s}
              onChanged={(next, text) => {
                loaded.set(next);
                setNotice(text);
              }}
            />
          ) : (
            <p class="hint">Only its owner ({s.accountId}) changes or deletes this snapshot.</p>
          )}
        </>
      )}
    </section>
  );
}

function Tags({ tags }: { tags: Record<string, string> }) {
  const entries = Object.entries(tags);
  return (
    <section aria-labelledby="tags-title">
      <h2 id="tags-title">Tags</h2>
      {entries.length === 0 ? (
        <p class="empty">No tags.</p>
      ) : (
        <table class="list" aria-label="Tags">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {entries.map(([k, v]) => (
              <tr key={k}>
                <td>{k}</td>
                <td>{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

type Changed = (snapshot: Snapshot, notice: string) => void;

function SnapshotActions({ snapshot, onChanged }: { snapshot: Snapshot; onChanged: Changed }) {
  return (
    <>
      <Shares snapshot={snapshot} onChanged={onChanged} />
      <section aria-labelledby="actions-title" class="actions">
        <h2 id="actions-title">Actions</h2>
        {snapshot.state === 'recycled' ? (
          <UndeleteButton
            snapshot={snapshot}
            onDone={(s) => onChanged(s, `${s.snapshotId} is back from the recycle bin.`)}
          />
        ) : (
          <>
            <EditForm snapshot={snapshot} onChanged={onChanged} />
            {snapshot.state === 'completed' ? (
              <PublishButton snapshot={snapshot} onChanged={onChanged} />
            ) : null}
            {snapshot.state === 'completed' ? <VolumeFromSnapshot snapshot={snapshot} /> : null}
            {snapshot.state === 'completed' ? <CopyForm snapshot={snapshot} /> : null}
            {snapshot.state === 'completed' ? <ExportForm snapshot={snapshot} /> : null}
            <DeleteButton snapshot={snapshot} onChanged={onChanged} />
          </>
        )}
      </section>
    </>
  );
}

function Shares({ snapshot, onChanged }: { snapshot: Snapshot; onChanged: Changed }) {
  const { api } = useConsole();
  const [account, setAccount] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [revoking, setRevoking] = useState<string | undefined>(undefined);
  const shared = snapshot.sharedWith ?? [];
  const share = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const next = await api.shareSnapshot(snapshot.snapshotId, account.trim());
      setAccount('');
      onChanged(next, `Shared with ${account.trim()}.`);
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <section aria-labelledby="shares-title">
      <h2 id="shares-title">Shared with</h2>
      {shared.length === 0 ? <p class="empty">No account.</p> : null}
      <ul class="shares">
        {shared.map((id) => (
          <li key={id}>
            <span class="id">{id}</span>{' '}
            <button type="button" onClick={() => setRevoking(id)} aria-label={`Stop sharing with ${id}`}>
              Unshare
            </button>
          </li>
        ))}
      </ul>
      <p>Public: {snapshot.public ? 'yes, every account can read it' : 'no'}</p>
      {snapshot.state === 'completed' ? (
        <form class="inline" onSubmit={share} aria-label="Share">
          <label>
            Share with account (id or name)
            <input
              required
              value={account}
              onInput={(e) => setAccount((e.target as HTMLInputElement).value)}
            />
          </label>
          <button type="submit">Share</button>
        </form>
      ) : null}
      <ErrorText error={error} />
      {revoking ? (
        <ConfirmDialog
          title="Stop sharing?"
          body={
            <p>
              Account <span class="id">{revoking}</span> loses access to{' '}
              {snapshot.name || snapshot.snapshotId} now.
            </p>
          }
          confirmLabel="Unshare"
          danger
          onConfirm={async () => {
            const next = await api.unshareSnapshot(snapshot.snapshotId, revoking);
            onChanged(next, `No longer shared with ${revoking}.`);
          }}
          onClose={() => setRevoking(undefined)}
        />
      ) : null}
    </section>
  );
}

function DeleteButton({ snapshot, onChanged }: { snapshot: Snapshot; onChanged: Changed }) {
  const { api, whoami } = useConsole();
  const [open, setOpen] = useState(false);
  const label = snapshot.name || snapshot.snapshotId;
  const others = snapshot.sharedWith ?? [];
  const usedByOthers = others.length > 0 || snapshot.public === true;
  const days = whoami.account.recycleBinDays ?? 7;
  return (
    <>
      <button type="button" class="danger" onClick={() => setOpen(true)}>
        Delete…
      </button>
      {open ? (
        <ConfirmDialog
          title={`Delete snapshot ${label}?`}
          danger
          confirmLabel="Delete"
          {...(usedByOthers ? { typeToConfirm: label } : {})}
          body={
            <>
              <p>
                {snapshot.state === 'completed' && days > 0
                  ? `${label} (${snapshot.snapshotId}) goes to the recycle bin for ${days} day(s), and can be undeleted until then.`
                  : `${label} (${snapshot.snapshotId}) is deleted for good.`}
              </p>
              {usedByOthers ? (
                <p class="warning">
                  Others use it:{' '}
                  {others.length > 0 ? `shared with ${others.length} account(s) (${others.join(', ')})` : ''}
                  {others.length > 0 && snapshot.public ? ' and ' : ''}
                  {snapshot.public ? 'public' : ''}. They lose access now.
                </p>
              ) : null}
            </>
          }
          onConfirm={async () => {
            const { recycled } = await api.deleteSnapshot(snapshot.snapshotId);
            if (recycled)
              onChanged(recycled, `${label} is in the recycle bin until ${formatTime(recycled.purgeAt)}.`);
            else navigate('/snapshots');
          }}
          onClose={() => setOpen(false)}
        />
      ) : null}
    </>
  );
}

function CopyForm({ snapshot }: { snapshot: Snapshot }) {
  const { config, region, apiIn, switchRegion } = useConsole();
  const others = config.regions.map((r) => r.name).filter((r) => r !== region);
  const [target, setTarget] = useState(others[0] ?? region);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const copy = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      // A copy is made by the destination region, reading from this one.
      const copied = await apiIn(target).copySnapshot({
        sourceRegion: region,
        sourceSnapshotId: snapshot.snapshotId,
      });
      justMade.set(copied.snapshotId, copied);
      switchRegion(target, `/snapshot/${encodeURIComponent(copied.snapshotId)}`);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <form class="inline" onSubmit={copy} aria-label="Copy to a region">
      <label>
        Copy to region
        <select value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
          {config.regions.map((r) => (
            <option key={r.name} value={r.name}>
              {r.name}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={busy}>
        Copy
      </button>
      <ErrorText error={error} />
    </form>
  );
}

function ExportForm({ snapshot }: { snapshot: Snapshot }) {
  const { api } = useConsole();
  const [format, setFormat] = useState<'vsnap' | 'raw' | 'qcow2'>('vsnap');
  const [error, setError] = useState<unknown>(undefined);
  const start = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const exported = await api.exportSnapshot(snapshot.snapshotId, format);
      navigate(`/exports/${encodeURIComponent(exported.exportId)}`);
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <form class="inline" onSubmit={start} aria-label="Export">
      <label>
        Export as
        <select
          value={format}
          onChange={(e) => setFormat((e.target as HTMLSelectElement).value as typeof format)}
        >
          <option value="vsnap">vsnap (volsnap's own, sparse)</option>
          <option value="raw">raw (a plain disk image)</option>
          <option value="qcow2">qcow2</option>
        </select>
      </label>
      <button type="submit">Export</button>
      <ErrorText error={error} />
    </form>
  );
}

/** Tags as the edit field shows them: `k=v, k2=v2`. */
const tagsText = (tags: Record<string, string>) =>
  Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of text.split(',')) Object.assign(tags, parseTag(part) ?? {});
  return tags;
}

function EditForm({ snapshot, onChanged }: { snapshot: Snapshot; onChanged: Changed }) {
  const { api } = useConsole();
  const [name, setName] = useState(snapshot.name);
  const [description, setDescription] = useState(snapshot.description);
  const [tags, setTags] = useState(tagsText(snapshot.tags));
  const [error, setError] = useState<unknown>(undefined);
  const save = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const next = await api.updateSnapshot(snapshot.snapshotId, {
        name,
        description,
        tags: parseTags(tags),
      });
      onChanged(next, `${next.name || next.snapshotId} saved.`);
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <form class="inline" onSubmit={save} aria-label="Edit">
      <label>
        Name
        <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Description
        <input value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Tags (k=v, k2=v2)
        <input value={tags} onInput={(e) => setTags((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Save</button>
      <ErrorText error={error} />
    </form>
  );
}

function PublishButton({ snapshot, onChanged }: { snapshot: Snapshot; onChanged: Changed }) {
  const { api } = useConsole();
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const label = snapshot.name || snapshot.snapshotId;
  const unpublish = async () => {
    setError(undefined);
    try {
      onChanged(await api.unpublishSnapshot(snapshot.snapshotId), `${label} is private again.`);
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <div class="inline">
      {snapshot.public ? (
        <button type="button" onClick={unpublish}>
          Unpublish
        </button>
      ) : (
        <button type="button" onClick={() => setOpen(true)}>
          Publish…
        </button>
      )}
      <ErrorText error={error} />
      {open ? (
        <ConfirmDialog
          title={`Publish ${label}?`}
          confirmLabel="Publish"
          body={
            <p>
              Every account of this deployment can then list, read and copy {label}, until you unpublish it.
            </p>
          }
          onConfirm={async () => {
            onChanged(await api.publishSnapshot(snapshot.snapshotId), `${label} is public.`);
          }}
          onClose={() => setOpen(false)}
        />
      ) : null}
    </div>
  );
}

/** A new volume with the snapshot's bytes, of its size or larger (`64MiB`, `10GiB`: as the CLI reads sizes). */
function VolumeFromSnapshot({ snapshot }: { snapshot: Snapshot }) {
  const { api } = useConsole();
  const [name, setName] = useState(`${snapshot.name || snapshot.snapshotId}-restored`);
  const [size, setSize] = useState(formatSize(snapshot.volumeSize).replace(' ', ''));
  const [error, setError] = useState<unknown>(undefined);
  const create = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const sizeBytes = parseSize(size);
      await api.createVolume({ name: name.trim(), sourceSnapshotId: snapshot.snapshotId, sizeBytes });
      navigate(`/volumes?name=${encodeURIComponent(name.trim())}`);
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <form class="inline" onSubmit={create} aria-label="Create a volume from it">
      <label>
        New volume name
        <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Size (its own or larger)
        <input required value={size} onInput={(e) => setSize((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Create volume</button>
      <ErrorText error={error} />
    </form>
  );
}
