import type { Image, Instance } from '../../lib/client/api-client.ts';
import { useConsole } from './context.ts';
import { formatTime } from './format.ts';
import { ErrorText, StateBadge, useLoaded } from './ui.tsx';

export function InstancesPage() {
  const { api, region } = useConsole();
  const list = useLoaded(() => api.listInstances({ limit: 100 }), region);
  const instances: Instance[] = list.data?.instances ?? [];
  return (
    <section aria-labelledby="instances-title">
      <h1 id="instances-title">Instances</h1>
      <ErrorText error={list.error} />
      {list.data && instances.length === 0 ? <p class="empty">No instances here.</p> : null}
      {instances.length > 0 ? (
        <div class="table-scroll">
          <table class="list" aria-label="Instances">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">ID</th>
                <th scope="col">State</th>
                <th scope="col">Volumes</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {instances.map((i) => (
                <tr key={i.instanceId} data-instance-id={i.instanceId}>
                  <td class="name">{i.name}</td>
                  <td class="id">{i.instanceId}</td>
                  <td>{i.state}</td>
                  <td>{i.volumes.map((v) => `${v.device} ${v.volumeId}`).join(', ') || '-'}</td>
                  <td>{formatTime(i.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

export function ImagesPage() {
  const { api, region } = useConsole();
  const list = useLoaded(
    () => api.listImages({ limit: 100 }),
    region,
    (page) => page.images.some((i) => i.state === 'pending'),
  );
  const images: Image[] = list.data?.images ?? [];
  return (
    <section aria-labelledby="images-title">
      <h1 id="images-title">Images</h1>
      <ErrorText error={list.error} />
      {list.data && images.length === 0 ? <p class="empty">No images here.</p> : null}
      {images.length > 0 ? (
        <div class="table-scroll">
          <table class="list" aria-label="Images">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">ID</th>
                <th scope="col">Instance</th>
                <th scope="col">State</th>
                <th scope="col">Snapshots</th>
                <th scope="col">Taken at</th>
              </tr>
            </thead>
            <tbody>
              {images.map((i) => (
                <tr key={i.imageId} data-image-id={i.imageId}>
                  <td class="name">{i.name}</td>
                  <td class="id">{i.imageId}</td>
                  <td>{i.instance.name}</td>
                  <td>
                    <StateBadge state={i.state} />
                  </td>
                  <td>
                    {i.snapshots.map((s, n) => (
                      <span key={s.snapshotId}>
                        {n > 0 ? ', ' : ''}
                        <a href={`#/snapshot/${encodeURIComponent(s.snapshotId)}`}>{s.snapshotId}</a>
                      </span>
                    ))}
                  </td>
                  <td>{formatTime(i.takenAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
