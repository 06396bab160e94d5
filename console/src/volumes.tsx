import type { Volume } from '../../lib/client/api-client.ts';
import { ActionsSection, ConfirmButton, DetailView } from './actions.tsx';
import { navigate, useConsole } from './context.ts';
import { formatSize, formatTags, formatTime, parseTag, volumeFields } from './format.ts';
import { type Column, ListTable, pageOf, tokenOf } from './list-table.tsx';

const volumeLink = (v: Volume) => <a href={`#/volume/${encodeURIComponent(v.volumeId)}`}>{v.name}</a>;

const COLUMNS: Column<Volume>[] = [
  { header: 'Name', class: 'name', cell: volumeLink },
  { header: 'ID', class: 'id', cell: (v) => v.volumeId },
  { header: 'Size', cell: (v) => formatSize(v.sizeBytes) },
  { header: 'Created', sort: true, cell: (v) => formatTime(v.createdAt) },
  { header: 'Tags', cell: (v) => formatTags(v.tags) },
  {
    header: 'Source',
    class: 'id',
    cell: (v) =>
      v.sourceSnapshotId ? (
        <a href={`#/snapshot/${encodeURIComponent(v.sourceSnapshotId)}`}>{v.sourceSnapshotId}</a>
      ) : (
        (v.imageUri ?? '-')
      ),
  },
  {
    header: 'Snapshots',
    cell: (v) => (
      <a
        href={`#/snapshots/own?volume=${encodeURIComponent(v.volumeId)}`}
        aria-label={`Snapshots of ${v.name}`}
      >
        list
      </a>
    ),
  },
];

export function VolumesPage(props: { name: string }) {
  const { api, region } = useConsole();
  return (
    <section aria-labelledby="volumes-title">
      <h1 id="volumes-title">Volumes</h1>
      <ListTable
        label="Volumes"
        scope={region}
        columns={COLUMNS}
        filters={[
          { key: 'name', label: 'Name' },
          { key: 'tag', label: 'Tag (key=value)' },
        ]}
        initialFilter={{ name: props.name }}
        rowKey={(v) => v.volumeId}
        rowData={(v) => ({ 'volume-id': v.volumeId })}
        createdAt={(v) => v.createdAt}
        load={async ({ filter, limit, nextToken }) => {
          const tags = filter.tag ? parseTag(filter.tag) : undefined;
          const page = await api.listVolumes({
            ...(filter.name ? { name: filter.name } : {}),
            ...(tags ? { tags } : {}),
            limit,
            ...tokenOf(nextToken),
          });
          return pageOf(page.volumes, page.nextToken);
        }}
      />
    </section>
  );
}

export function VolumeDetail({ volumeId }: { volumeId: string }) {
  const { api } = useConsole();
  return (
    <DetailView
      kind="Volume"
      id={volumeId}
      back={['#/volumes', 'Volumes']}
      load={() => api.getVolume(volumeId)}
      nameOf={(v) => v.name}
      fields={volumeFields}
    >
      {({ item: v }) => (
        <ActionsSection>
          <p>
            <a href={`#/snapshots/own?volume=${encodeURIComponent(v.volumeId)}`}>Its snapshots</a>
          </p>
          <ConfirmButton
            button="Delete…"
            name={`Delete ${v.name}`}
            title={`Delete volume ${v.name}?`}
            danger
            confirmLabel="Delete"
            body={
              <p>
                {v.name} ({v.volumeId}) is deleted. A volume with snapshots outside the recycle bin is
                refused; those in the bin stay there.
              </p>
            }
            run={async () => {
              await api.deleteVolume(v.volumeId);
              navigate('/volumes');
            }}
          />
        </ActionsSection>
      )}
    </DetailView>
  );
}
