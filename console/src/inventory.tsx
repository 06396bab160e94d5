import { useState } from 'preact/hooks';
import type { Image, ImageDeletion, Instance } from '../../lib/client/api-client.ts';
import { ActionForm, ActionsSection, ConfirmButton, type DetailActions, DetailView } from './actions.tsx';
import { navigate, useConsole } from './context.ts';
import { formatSize, formatTime, imageFields, instanceFields } from './format.ts';
import { type Column, ListTable, matchesName, pageOf, tokenOf } from './list-table.tsx';
import { Notice, StateBadge } from './ui.tsx';

const instanceHref = (id: string) => `#/instance/${encodeURIComponent(id)}`;
const imageHref = (id: string) => `#/image/${encodeURIComponent(id)}`;
const snapshotLink = (id: string) => <a href={`#/snapshot/${encodeURIComponent(id)}`}>{id}</a>;
const propertiesText = (p: Record<string, string>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ') || '-';

const INSTANCE_COLUMNS: Column<Instance>[] = [
  { header: 'Name', class: 'name', cell: (i) => <a href={instanceHref(i.instanceId)}>{i.name}</a> },
  { header: 'ID', class: 'id', cell: (i) => i.instanceId },
  { header: 'State', cell: (i) => <StateBadge state={i.state} /> },
  { header: 'Volumes', cell: (i) => i.volumes.map((v) => `${v.device} ${v.volumeId}`).join(', ') || '-' },
  { header: 'Properties', cell: (i) => propertiesText(i.properties) },
  { header: 'Created', sort: true, cell: (i) => formatTime(i.createdAt) },
];

export function InstancesPage() {
  const { api, region } = useConsole();
  const [version, setVersion] = useState(0);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  return (
    <section aria-labelledby="instances-title">
      <h1 id="instances-title">Instances</h1>
      <Notice text={notice} />
      <ListTable
        label="Instances"
        scope={region}
        version={version}
        columns={INSTANCE_COLUMNS}
        filters={[
          { key: 'name', label: 'Name', match: (i, v) => matchesName(i.name, v) },
          { key: 'state', label: 'State', options: ['running', 'stopped'], match: (i, v) => i.state === v },
          {
            key: 'volume',
            label: 'Volume',
            placeholder: 'vol-…',
            match: (i, v) => i.volumes.some((a) => a.volumeId === v),
          },
        ]}
        rowKey={(i) => i.instanceId}
        rowData={(i) => ({ 'instance-id': i.instanceId })}
        createdAt={(i) => i.createdAt}
        load={async ({ limit, nextToken }) => {
          const page = await api.listInstances({ limit, ...tokenOf(nextToken) });
          return pageOf(page.instances, page.nextToken);
        }}
      />
      <ActionForm
        label="Register an instance"
        submit="Register"
        reset
        fields={[
          { name: 'name', label: 'Instance name', required: true },
          {
            name: 'volumes',
            label: 'Volumes (vol-…=/dev/vda, in boot order)',
            placeholder: 'vol-…=/dev/vda',
          },
          { name: 'state', label: 'Its state', options: ['stopped', 'running'] },
        ]}
        run={async (values) => {
          const volumes = (values.volumes ?? '')
            .split(',')
            .map((part) => part.trim())
            .filter(Boolean)
            .map((part, bootIndex) => {
              const [volumeId = '', device = ''] = part.split('=').map((s) => s.trim());
              return { device, volumeId, bootIndex };
            });
          const made = await api.registerInstance({
            name: values.name ?? '',
            volumes,
            state: values.state === 'running' ? 'running' : 'stopped',
          });
          setNotice(`Instance ${made.name} (${made.instanceId}) registered.`);
          setVersion((v) => v + 1);
        }}
      />
    </section>
  );
}

export function InstanceDetail({ instanceId }: { instanceId: string }) {
  const { api } = useConsole();
  return (
    <DetailView
      kind="Instance"
      id={instanceId}
      back={['#/instances', 'Instances']}
      load={() => api.getInstance(instanceId)}
      nameOf={(i) => i.name}
      stateOf={(i) => ({ state: i.state })}
      fields={instanceFields}
    >
      {(actions) => <InstanceActions {...actions} />}
    </DetailView>
  );
}

function InstanceActions({ item: i, changed }: DetailActions<Instance>) {
  const { api } = useConsole();
  const other = i.state === 'running' ? 'stopped' : 'running';
  return (
    <ActionsSection>
      <ActionForm
        label="Mark the instance"
        submit={`Mark ${other}`}
        fields={[]}
        run={async () =>
          changed(await api.updateInstance(i.instanceId, { state: other }), `${i.name} is marked ${other}.`)
        }
      />
      <ActionForm
        label="Rename the instance"
        submit="Rename"
        fields={[{ name: 'name', label: 'New name', value: i.name, required: true }]}
        run={async (v) => changed(await api.updateInstance(i.instanceId, { name: v.name ?? '' }), 'Renamed.')}
      />
      <ActionForm
        label="Attach a volume"
        submit="Attach"
        reset
        fields={[
          { name: 'volumeId', label: 'Volume', placeholder: 'vol-…', required: true },
          { name: 'device', label: 'Device', placeholder: 'vdb', required: true },
        ]}
        run={async (v) =>
          changed(
            await api.attachVolume(i.instanceId, v.volumeId ?? '', {
              device: v.device ?? '',
              bootIndex: i.volumes.length,
            }),
            `${v.volumeId} attached as ${v.device}.`,
          )
        }
      />
      {i.volumes.map((v) => (
        <ConfirmButton
          key={v.volumeId}
          button={`Detach ${v.device}`}
          name={`Detach ${v.volumeId}`}
          title={`Detach ${v.volumeId} from ${i.name}?`}
          confirmLabel="Detach"
          body={<p>The volume stays, with its snapshots; images taken from now on leave it out.</p>}
          run={async () =>
            changed(await api.detachVolume(i.instanceId, v.volumeId), `${v.volumeId} detached.`)
          }
        />
      ))}
      <ActionForm
        label="Create an image"
        submit="Create image"
        fields={[
          { name: 'name', label: 'Image name', value: `${i.name}-image`, required: true },
          { name: 'description', label: 'Image description' },
          {
            name: 'requireStopped',
            label: 'Refuse if running',
            options: [
              ['no', 'no (a running one is crash-consistent)'],
              ['yes', 'yes'],
            ],
          },
        ]}
        run={async (v) => {
          const made = await api.createImage({
            instanceId: i.instanceId,
            name: v.name ?? '',
            ...(v.description ? { description: v.description } : {}),
            requireStopped: v.requireStopped === 'yes',
          });
          navigate(`/image/${encodeURIComponent(made.imageId)}`);
        }}
      />
      <ConfirmButton
        button="Delete…"
        name={`Delete ${i.name}`}
        title={`Delete instance ${i.name}?`}
        danger
        confirmLabel="Delete"
        body={
          <p>
            {i.name} ({i.instanceId}) is deleted; its volumes and images stay.
          </p>
        }
        run={async () => {
          await api.deleteInstance(i.instanceId);
          navigate('/instances');
        }}
      />
    </ActionsSection>
  );
}

const imageSize = (i: Image) => formatSize(i.snapshots.reduce((sum, s) => sum + s.sizeBytes, 0));

export function ImagesPage() {
  const { api, region } = useConsole();
  const columns: Column<Image>[] = [
    { header: 'Name', class: 'name', cell: (i) => <a href={imageHref(i.imageId)}>{i.name}</a> },
    { header: 'ID', class: 'id', cell: (i) => i.imageId },
    { header: 'Owner', class: 'id', cell: (i) => i.accountId },
    { header: 'Instance', cell: (i) => i.instance.name },
    { header: 'State', cell: (i) => <StateBadge state={i.state} progress={i.progress} /> },
    {
      header: 'Snapshots',
      cell: (i) =>
        i.snapshots.map((s, n) => (
          <span key={s.snapshotId}>
            {n > 0 ? ', ' : ''}
            {snapshotLink(s.snapshotId)}
          </span>
        )),
    },
    { header: 'Size', cell: imageSize },
    { header: 'Shared with', cell: (i) => i.sharedWith?.join(', ') || '-' },
    { header: 'Taken at', cell: (i) => formatTime(i.takenAt) },
    { header: 'Created', sort: true, cell: (i) => formatTime(i.createdAt) },
  ];
  return (
    <section aria-labelledby="images-title">
      <h1 id="images-title">Images</h1>
      <ListTable
        label="Images"
        scope={region}
        columns={columns}
        filters={[
          { key: 'scope', label: 'Whose', options: ['shared'], anyLabel: 'mine' },
          { key: 'name', label: 'Name', match: (i, v) => matchesName(i.name, v) },
          {
            key: 'state',
            label: 'State',
            options: ['pending', 'completed', 'error'],
            match: (i, v) => i.state === v,
          },
          {
            key: 'volume',
            label: 'Volume',
            placeholder: 'vol-…',
            match: (i, v) => i.snapshots.some((s) => s.volumeId === v),
          },
        ]}
        rowKey={(i) => i.imageId}
        rowData={(i) => ({ 'image-id': i.imageId })}
        createdAt={(i) => i.createdAt}
        pending={(i) => i.state === 'pending'}
        load={async ({ filter, limit, nextToken }) => {
          const page = await api.listImages({
            ...(filter.scope === 'shared' ? { scope: 'shared' } : {}),
            limit,
            ...tokenOf(nextToken),
          });
          return pageOf(page.images, page.nextToken);
        }}
      />
    </section>
  );
}

export function ImageDetail({ imageId }: { imageId: string }) {
  const { api } = useConsole();
  return (
    <DetailView
      kind="Image"
      id={imageId}
      back={['#/images', 'Images']}
      load={() => api.getImage(imageId)}
      nameOf={(i) => i.name}
      stateOf={(i) => ({ state: i.state, ...(i.progress !== undefined ? { progress: i.progress } : {}) })}
      pending={(i) => i.state === 'pending'}
      fields={imageFields}
    >
      {(actions) => (
        <>
          <ImageSnapshots image={actions.item} />
          <ImageActions {...actions} />
        </>
      )}
    </DetailView>
  );
}

/** The table `image show` prints under its fields: one snapshot per volume, in boot order. */
function ImageSnapshots({ image }: { image: Image }) {
  return (
    <div class="table-scroll">
      <table class="list" aria-label="Image snapshots">
        <thead>
          <tr>
            {['device', 'boot', 'volume', 'snapshot', 'size', 'state'].map((h) => (
              <th key={h} scope="col">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {image.snapshots.map((s) => (
            <tr key={s.snapshotId} data-snapshot-id={s.snapshotId}>
              <td>{s.device}</td>
              <td>{s.bootIndex}</td>
              <td class="id">{s.volumeId}</td>
              <td class="id">{snapshotLink(s.snapshotId)}</td>
              <td>{formatSize(s.sizeBytes)}</td>
              <td>
                <StateBadge
                  state={s.state ?? '-'}
                  {...(s.progress !== undefined ? { progress: s.progress } : {})}
                />
                {s.stateReason ? <span class="reason"> {s.stateReason}</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function describeDeletion(r: ImageDeletion): string {
  const parts = [
    r.recycled.length ? `${r.recycled.length} snapshot(s) in the recycle bin` : '',
    r.deleted.length ? `${r.deleted.length} deleted` : '',
    r.kept.length ? `${r.kept.length} kept (${r.kept.flatMap((k) => k.reasons).join('; ')})` : '',
  ].filter(Boolean);
  return `Image ${r.imageId} deleted${parts.length ? `: ${parts.join(', ')}` : ''}.`;
}

function ImageActions({ item: i, changed }: DetailActions<Image>) {
  const { api, apiIn, config, region, switchRegion, whoami } = useConsole();
  const [deleted, setDeleted] = useState<string | undefined>(undefined);
  const owner = i.accountId === whoami.account.accountId;
  const completed = i.state === 'completed';
  const others = config.regions.map((r) => r.name).filter((r) => r !== region);
  if (deleted) return <Notice text={deleted} />;
  return (
    <ActionsSection>
      {completed ? (
        <ActionForm
          label="Launch"
          submit="Launch"
          fields={[{ name: 'name', label: 'New instance name', value: `${i.name}-launched`, required: true }]}
          run={async (v) => {
            const launched = await api.launchImage(i.imageId, { name: v.name ?? '' });
            navigate(`/instance/${encodeURIComponent(launched.instance.instanceId)}`);
          }}
        />
      ) : null}
      {completed && others.length > 0 ? (
        <ActionForm
          label="Copy the image to a region"
          submit="Copy image"
          fields={[{ name: 'region', label: 'Copy to region', options: others }]}
          run={async (v) => {
            const target = v.region ?? '';
            const copy = await apiIn(target).copyImage({ sourceRegion: region, sourceImageId: i.imageId });
            switchRegion(target, `/image/${encodeURIComponent(copy.imageId)}`);
          }}
        />
      ) : null}
      {completed ? (
        <ActionForm
          label="Export the image"
          submit="Export image"
          fields={[{ name: 'format', label: 'Export its snapshots as', options: ['vsnap', 'raw', 'qcow2'] }]}
          run={async (v) => {
            await api.exportImage(i.imageId, (v.format ?? 'vsnap') as 'vsnap' | 'raw' | 'qcow2');
            navigate('/exports');
          }}
        />
      ) : null}
      {owner && completed ? (
        <ActionForm
          label="Share the image"
          submit="Share image"
          reset
          fields={[{ name: 'account', label: 'Share with account (id or name)', required: true }]}
          run={async (v) =>
            changed(await api.shareImage(i.imageId, v.account ?? ''), `Image shared with ${v.account}.`)
          }
        />
      ) : null}
      {owner
        ? (i.sharedWith ?? []).map((account) => (
            <ConfirmButton
              key={account}
              button={`Unshare ${account}`}
              name={`Stop sharing the image with ${account}`}
              title="Stop sharing?"
              confirmLabel="Unshare"
              danger
              body={
                <p>
                  Account <span class="id">{account}</span> loses access to {i.name} now.
                </p>
              }
              run={async () =>
                changed(await api.unshareImage(i.imageId, account), `No longer shared with ${account}.`)
              }
            />
          ))
        : null}
      {owner ? (
        <ConfirmButton
          button="Delete…"
          name={`Delete ${i.name}`}
          title={`Delete image ${i.name}?`}
          danger
          confirmLabel="Delete"
          body={
            <p>
              {i.name} ({i.imageId}) is deleted; its {i.snapshots.length} snapshot(s) go to the recycle bin,
              except those another image, a share, a copy or an export still uses.
            </p>
          }
          run={async () => setDeleted(describeDeletion(await api.deleteImage(i.imageId)))}
        />
      ) : (
        <p class="hint">Only its owner ({i.accountId}) shares or deletes this image.</p>
      )}
    </ActionsSection>
  );
}
