import { useState } from 'preact/hooks';
import type { Export } from '../../lib/client/api-client.ts';
import { ActionsSection, ConfirmButton, DetailView } from './actions.tsx';
import { navigate, useConsole } from './context.ts';
import { exportFields, formatSize, formatTime } from './format.ts';
import { type Column, ListTable, pageOf, tokenOf } from './list-table.tsx';
import { ErrorText, Notice, StateBadge } from './ui.tsx';

const EXPORT_STATES = ['pending', 'completed', 'error'] as const;

export function ExportsPage() {
  const { api, region } = useConsole();
  const [version, setVersion] = useState(0);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const columns: Column<Export>[] = [
    {
      header: 'ID',
      class: 'id',
      cell: (e) => <a href={`#/export/${encodeURIComponent(e.exportId)}`}>{e.exportId}</a>,
    },
    {
      header: 'Snapshot',
      class: 'id',
      cell: (e) => <a href={`#/snapshot/${encodeURIComponent(e.snapshotId)}`}>{e.snapshotId}</a>,
    },
    { header: 'Format', cell: (e) => e.format },
    { header: 'Size', cell: (e) => (e.state === 'completed' ? formatSize(e.size) : '-') },
    {
      header: 'State',
      cell: (e) => (
        <>
          <StateBadge state={e.state} progress={e.progress} />
          {e.stateReason ? <span class="reason"> {e.stateReason}</span> : null}
        </>
      ),
    },
    { header: 'Created', sort: true, cell: (e) => formatTime(e.createdAt) },
    { header: 'Expires', cell: (e) => formatTime(e.expiresAt) },
    { header: 'Download', cell: (e) => (e.state === 'completed' ? <PresignedUrl exported={e} /> : null) },
    {
      header: 'Actions',
      cell: (e) => (
        <DeleteExport
          exported={e}
          onDeleted={() => {
            setNotice(`Export ${e.exportId} deleted.`);
            setVersion((v) => v + 1);
          }}
        />
      ),
    },
  ];
  return (
    <section aria-labelledby="exports-title">
      <h1 id="exports-title">Exports</h1>
      <Notice text={notice} />
      <ListTable
        label="Exports"
        scope={region}
        version={version}
        columns={columns}
        filters={[
          { key: 'state', label: 'State', options: EXPORT_STATES, match: (e, v) => e.state === v },
          {
            key: 'snapshot',
            label: 'Snapshot',
            placeholder: 'snap-…',
            match: (e, v) => e.snapshotId === v,
          },
          {
            key: 'format',
            label: 'Format',
            options: ['vsnap', 'raw', 'qcow2'],
            match: (e, v) => e.format === v,
          },
        ]}
        rowKey={(e) => e.exportId}
        rowData={(e) => ({ 'export-id': e.exportId })}
        createdAt={(e) => e.createdAt}
        pending={(e) => e.state === 'pending'}
        load={async ({ limit, nextToken }) => {
          const page = await api.listExports({ limit, ...tokenOf(nextToken) });
          return pageOf(page.exports, page.nextToken);
        }}
      />
    </section>
  );
}

function DeleteExport({ exported, onDeleted }: { exported: Export; onDeleted: () => void }) {
  const { api } = useConsole();
  return (
    <ConfirmButton
      button="Delete…"
      name={`Delete ${exported.exportId}`}
      title={`Delete export ${exported.exportId}?`}
      danger
      confirmLabel="Delete"
      body={
        <p>
          The export of {exported.snapshotId} ({exported.format}) and its object are deleted
          {exported.state === 'pending' ? ', and its work stops' : ''}. URLs handed out stop working. The
          snapshot stays.
        </p>
      }
      run={async () => {
        await api.deleteExport(exported.exportId);
        onDeleted();
      }}
    />
  );
}

export function ExportDetail({ exportId }: { exportId: string }) {
  const { api } = useConsole();
  return (
    <DetailView
      kind="Export"
      id={exportId}
      back={['#/exports', 'Exports']}
      load={() => api.getExport(exportId)}
      nameOf={(e) => e.exportId}
      stateOf={(e) => ({ state: e.state, progress: e.progress })}
      pending={(e) => e.state === 'pending'}
      fields={exportFields}
    >
      {({ item }) => (
        <ActionsSection>
          {item.state === 'completed' ? <PresignedUrl exported={item} /> : null}
          <DeleteExport exported={item} onDeleted={() => navigate('/exports')} />
        </ActionsSection>
      )}
    </DetailView>
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
