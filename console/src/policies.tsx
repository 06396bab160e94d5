import { useState } from 'preact/hooks';
import type { Policy } from '../../lib/client/api-client.ts';
import { useConsole } from './context.ts';
import { formatDuration, formatTags, formatTime, parseDurationMs, parseTag } from './format.ts';
import { ConfirmDialog, ErrorText, Notice, useLoaded } from './ui.tsx';

const describeSchedule = (p: Policy) =>
  'cron' in p.schedule ? `cron ${p.schedule.cron} (UTC)` : `every ${formatDuration(p.schedule.everyMs)}`;
const describeRetention = (r: Policy['retention']) =>
  'keep' in r ? `newest ${r.keep}` : `${formatDuration(r.keepForMs)} (and the newest)`;

export function PoliciesPage() {
  const { api, region } = useConsole();
  const list = useLoaded(() => api.listPolicies({ limit: 100 }), region);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [deleting, setDeleting] = useState<Policy | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const policies = list.data?.policies ?? [];
  const toggle = async (p: Policy) => {
    setError(undefined);
    try {
      const next = await api.updatePolicy(p.policyId, { enabled: !p.enabled });
      setNotice(`${next.name} is ${next.enabled ? 'enabled' : 'disabled'}.`);
      list.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <section aria-labelledby="policies-title">
      <h1 id="policies-title">Policies</h1>
      <Notice text={notice} />
      <ErrorText error={list.error ?? error} />
      {list.data && policies.length === 0 ? <p class="empty">No policies here.</p> : null}
      {policies.length > 0 ? (
        <PolicyTable policies={policies} onToggle={toggle} onDelete={setDeleting} />
      ) : null}
      <CreatePolicy
        onCreated={(p) => {
          setNotice(`Policy ${p.name} (${p.policyId}) created.`);
          list.reload();
        }}
      />
      {deleting ? (
        <ConfirmDialog
          title={`Delete policy ${deleting.name}?`}
          danger
          confirmLabel="Delete"
          body={
            <p>
              {deleting.name} ({deleting.policyId}) stops making snapshots. The snapshots it made stay, with
              their tag.
            </p>
          }
          onConfirm={async () => {
            await api.deletePolicy(deleting.policyId);
            setNotice(`Policy ${deleting.name} deleted.`);
            list.reload();
          }}
          onClose={() => setDeleting(undefined)}
        />
      ) : null}
    </section>
  );
}

function PolicyTable(props: {
  policies: Policy[];
  onToggle: (policy: Policy) => void;
  onDelete: (policy: Policy) => void;
}) {
  return (
    <div class="table-scroll">
      <table class="list" aria-label="Policies">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Volumes tagged</th>
            <th scope="col">Schedule</th>
            <th scope="col">Keeps</th>
            <th scope="col">Copies to</th>
            <th scope="col">Enabled</th>
            <th scope="col">Next run</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {props.policies.map((p) => (
            <tr key={p.policyId} data-policy-id={p.policyId}>
              <td class="name">
                {p.name} <span class="id">{p.policyId}</span>
              </td>
              <td>{formatTags(p.targetTags)}</td>
              <td>{describeSchedule(p)}</td>
              <td>{describeRetention(p.retention)}</td>
              <td>
                {p.copyRules.map((c) => `${c.region} (${describeRetention(c.retention)})`).join(', ') || '-'}
              </td>
              <td>{p.enabled ? 'yes' : 'no'}</td>
              <td>{p.enabled ? formatTime(p.nextRunAt) : '-'}</td>
              <td class="row-actions">
                <button
                  type="button"
                  onClick={() => props.onToggle(p)}
                  aria-label={`${p.enabled ? 'Disable' : 'Enable'} ${p.name}`}
                >
                  {p.enabled ? 'Disable' : 'Enable'}
                </button>{' '}
                <button
                  type="button"
                  class="danger"
                  onClick={() => props.onDelete(p)}
                  aria-label={`Delete ${p.name}`}
                >
                  Delete…
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function CreatePolicy({ onCreated }: { onCreated: (p: Policy) => void }) {
  const { api } = useConsole();
  const [form, setForm] = useState({ name: '', tag: '', every: '1d', keep: '7' });
  const [error, setError] = useState<unknown>(undefined);
  const field = (name: keyof typeof form) => ({
    value: form[name],
    onInput: (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value }),
  });
  const create = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    const everyMs = parseDurationMs(form.every);
    const targetTags = parseTag(form.tag);
    if (everyMs === undefined || !targetTags) {
      setError(
        new Error(
          !targetTags
            ? 'Name a tag the volumes carry, as key=value.'
            : `'${form.every}' is not a duration: use e.g. 6h or 1d.`,
        ),
      );
      return;
    }
    try {
      const created = await api.createPolicy({
        name: form.name.trim(),
        targetTags,
        schedule: { everyMs },
        retention: { keep: Number(form.keep) },
      });
      setForm({ name: '', tag: '', every: '1d', keep: '7' });
      onCreated(created);
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <form class="inline create" onSubmit={create} aria-label="Create a policy">
      <h2>Create a policy</h2>
      <label>
        Name
        <input required {...field('name')} />
      </label>
      <label>
        Volumes tagged (key=value)
        <input required {...field('tag')} placeholder="backup=nightly" />
      </label>
      <label>
        Every
        <input required {...field('every')} placeholder="6h, 1d" />
      </label>
      <label>
        Keep the newest
        <input required type="number" min={1} {...field('keep')} />
      </label>
      <button type="submit">Create</button>
      <ErrorText error={error} />
    </form>
  );
}
