import { useState } from 'preact/hooks';
import type { CopyRule, CreatePolicyInput, Policy, PolicyRetention } from '../../lib/client/api-client.ts';
import { ActionsSection, ConfirmButton, DetailView } from './actions.tsx';
import { navigate, useConsole } from './context.ts';
import {
  formatDuration,
  formatRetention,
  formatSchedule,
  formatTags,
  formatTime,
  parseDurationMs,
  parseTag,
  policyFields,
} from './format.ts';
import { type Column, ListTable, matchesName, matchesTag, pageOf, tokenOf } from './list-table.tsx';
import { ErrorText, Notice } from './ui.tsx';

const policyLink = (p: Policy) => <a href={`#/policy/${encodeURIComponent(p.policyId)}`}>{p.name}</a>;

export function PoliciesPage() {
  const { api, region } = useConsole();
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(undefined);
  const changed = (text: string) => {
    setNotice(text);
    setVersion((v) => v + 1);
  };
  const toggle = async (p: Policy) => {
    setError(undefined);
    try {
      const next = await api.updatePolicy(p.policyId, { enabled: !p.enabled });
      changed(`${next.name} is ${next.enabled ? 'enabled' : 'disabled'}.`);
    } catch (failure) {
      setError(failure);
    }
  };
  const columns: Column<Policy>[] = [
    { header: 'Name', class: 'name', cell: policyLink },
    { header: 'ID', class: 'id', cell: (p) => p.policyId },
    { header: 'Volumes tagged', cell: (p) => formatTags(p.targetTags, true) },
    { header: 'Schedule', cell: (p) => formatSchedule(p.schedule) },
    { header: 'Retention', cell: (p) => formatRetention(p.retention) },
    {
      header: 'Copies to',
      cell: (p) => p.copyRules.map((c) => `${c.region} (${formatRetention(c.retention)})`).join(', ') || '-',
    },
    { header: 'Enabled', cell: (p) => (p.enabled ? 'yes' : 'no') },
    { header: 'Next run', cell: (p) => (p.enabled ? formatTime(p.nextRunAt) : '-') },
    { header: 'Last run', cell: (p) => formatTime(p.lastRunAt) },
    { header: 'Created', sort: true, cell: (p) => formatTime(p.createdAt) },
    {
      header: 'Actions',
      class: 'row-actions',
      cell: (p) => (
        <>
          <button
            type="button"
            onClick={() => toggle(p)}
            aria-label={`${p.enabled ? 'Disable' : 'Enable'} ${p.name}`}
          >
            {p.enabled ? 'Disable' : 'Enable'}
          </button>{' '}
          <DeletePolicy policy={p} onDeleted={() => changed(`Policy ${p.name} deleted.`)} />
        </>
      ),
    },
  ];
  return (
    <section aria-labelledby="policies-title">
      <h1 id="policies-title">Policies</h1>
      <Notice text={notice} />
      <ErrorText error={error} />
      <ListTable
        label="Policies"
        scope={region}
        version={version}
        columns={columns}
        filters={[
          { key: 'name', label: 'Name', match: (p, v) => matchesName(p.name, v) },
          {
            key: 'state',
            label: 'State',
            options: ['enabled', 'disabled'],
            match: (p, v) => p.enabled === (v === 'enabled'),
          },
          { key: 'tag', label: 'Tag (key=value)', match: (p, v) => matchesTag(p.targetTags, v) },
        ]}
        rowKey={(p) => p.policyId}
        rowData={(p) => ({ 'policy-id': p.policyId })}
        createdAt={(p) => p.createdAt}
        load={async ({ limit, nextToken }) => {
          const page = await api.listPolicies({ limit, ...tokenOf(nextToken) });
          return pageOf(page.policies, page.nextToken);
        }}
      />
      <PolicyForm
        label="Create a policy"
        submit="Create"
        save={async (input) => {
          const created = await api.createPolicy(input);
          changed(`Policy ${created.name} (${created.policyId}) created.`);
        }}
      />
    </section>
  );
}

function DeletePolicy({ policy, onDeleted }: { policy: Policy; onDeleted: () => void }) {
  const { api } = useConsole();
  return (
    <ConfirmButton
      button="Delete…"
      name={`Delete ${policy.name}`}
      title={`Delete policy ${policy.name}?`}
      danger
      confirmLabel="Delete"
      body={
        <p>
          {policy.name} ({policy.policyId}) stops making snapshots. The snapshots it made stay, with their
          tag.
        </p>
      }
      run={async () => {
        await api.deletePolicy(policy.policyId);
        onDeleted();
      }}
    />
  );
}

export function PolicyDetail({ policyId }: { policyId: string }) {
  const { api } = useConsole();
  return (
    <DetailView
      kind="Policy"
      id={policyId}
      back={['#/policies', 'Policies']}
      load={() => api.getPolicy(policyId)}
      nameOf={(p) => p.name}
      fields={policyFields}
    >
      {({ item, changed }) => (
        <ActionsSection>
          <PolicyForm
            // A save shows what was saved: the form starts again from the answer.
            key={JSON.stringify([
              item.name,
              item.description,
              item.targetTags,
              item.schedule,
              item.retention,
              item.copyRules,
              item.agentTimeoutMs,
              item.enabled,
            ])}
            label="Edit the policy"
            submit="Save"
            policy={item}
            save={async (input) => {
              const next = await api.updatePolicy(item.policyId, input);
              changed(next, `${next.name} saved.`);
            }}
          />
          <DeletePolicy policy={item} onDeleted={() => navigate('/policies')} />
        </ActionsSection>
      )}
    </DetailView>
  );
}

/** A retention as the form takes it: a count (`7`) or a time (`30d`). */
const retentionText = (r: PolicyRetention) => ('keep' in r ? String(r.keep) : formatDuration(r.keepForMs));

function parseRetention(text: string, what: string): PolicyRetention {
  if (/^\d+$/.test(text)) return { keep: Number(text) };
  const keepForMs = parseDurationMs(text);
  if (keepForMs === undefined)
    throw new Error(`${what}: '${text}' is neither a count (7) nor a time (30d, 12h).`);
  return { keepForMs };
}

function parseTargetTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of text.split(',')) Object.assign(tags, parseTag(part) ?? {});
  if (Object.keys(tags).length === 0) throw new Error('Name a tag the volumes carry, as key=value.');
  return tags;
}

interface PolicyDraft {
  name: string;
  description: string;
  tags: string;
  schedule: string;
  keep: string;
  agentTimeout: string;
  enabled: boolean;
  /** Per other region: copy there, and keep copies so (empty: as the policy keeps). */
  copies: Record<string, { on: boolean; keep: string }>;
}

function draftOf(policy: Policy | undefined, regions: string[]): PolicyDraft {
  const rule = (region: string) => policy?.copyRules.find((r) => r.region === region);
  return {
    name: policy?.name ?? '',
    description: policy?.description ?? '',
    tags: policy ? formatTags(policy.targetTags, true) : '',
    schedule: policy
      ? 'everyMs' in policy.schedule
        ? formatDuration(policy.schedule.everyMs)
        : policy.schedule.cron
      : '1d',
    keep: policy ? retentionText(policy.retention) : '7',
    agentTimeout: policy ? formatDuration(policy.agentTimeoutMs) : '',
    enabled: policy?.enabled ?? true,
    copies: Object.fromEntries(
      regions.map((r) => {
        const found = rule(r);
        return [r, { on: found !== undefined, keep: found ? retentionText(found.retention) : '' }];
      }),
    ),
  };
}

/** The API's input from the form; a field it cannot read throws, saying which and how. */
function inputOf(draft: PolicyDraft): CreatePolicyInput {
  const schedule = draft.schedule.trim();
  const everyMs = parseDurationMs(schedule);
  const retention = parseRetention(draft.keep.trim(), 'Keep');
  const copyRules: CopyRule[] = Object.entries(draft.copies)
    .filter(([, c]) => c.on)
    .map(([region, c]) => ({
      region,
      retention: c.keep.trim() ? parseRetention(c.keep.trim(), `Copies in ${region}`) : retention,
    }));
  const agentTimeoutMs = draft.agentTimeout.trim() ? parseDurationMs(draft.agentTimeout) : undefined;
  if (draft.agentTimeout.trim() && agentTimeoutMs === undefined)
    throw new Error(`Agent timeout: '${draft.agentTimeout}' is not a time (30m, 2h).`);
  return {
    name: draft.name.trim(),
    description: draft.description.trim(),
    targetTags: parseTargetTags(draft.tags),
    // A duration is a period; anything else is a cron line, which the API checks.
    schedule: everyMs !== undefined ? { everyMs } : { cron: schedule },
    retention,
    copyRules,
    ...(agentTimeoutMs !== undefined ? { agentTimeoutMs } : {}),
    enabled: draft.enabled,
  };
}

/** Creates a policy, or edits one: everything `policy create` and `policy update` take. */
function PolicyForm(props: {
  label: string;
  submit: string;
  policy?: Policy;
  save: (input: CreatePolicyInput) => Promise<void>;
}) {
  const { config, region } = useConsole();
  const others = config.regions.map((r) => r.name).filter((r) => r !== region);
  const [draft, setDraft] = useState(() => draftOf(props.policy, others));
  const [error, setError] = useState<unknown>(undefined);
  const text = (name: 'name' | 'description' | 'tags' | 'schedule' | 'keep' | 'agentTimeout') => ({
    name,
    value: draft[name],
    onInput: (e: Event) => setDraft({ ...draft, [name]: (e.target as HTMLInputElement).value }),
  });
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      await props.save(inputOf(draft));
      if (!props.policy) setDraft(draftOf(undefined, others));
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <form class="inline create policy-form" onSubmit={submit} aria-label={props.label}>
      <h2>{props.label}</h2>
      <label>
        Name
        <input required {...text('name')} />
      </label>
      <label>
        Description
        <input {...text('description')} />
      </label>
      <label>
        Volumes tagged (key=value)
        <input required {...text('tags')} placeholder="backup=nightly" />
      </label>
      <label>
        Every (6h, 1d) or a cron line (0 3 * * *, UTC)
        <input required {...text('schedule')} />
      </label>
      <label>
        Keep the newest (a count), or for a time (30d)
        <input required {...text('keep')} />
      </label>
      <label>
        Agent timeout (30m; empty: the default)
        <input {...text('agentTimeout')} />
      </label>
      <label class="check">
        <input
          type="checkbox"
          checked={draft.enabled}
          onChange={(e) => setDraft({ ...draft, enabled: (e.target as HTMLInputElement).checked })}
        />
        Enabled
      </label>
      {others.length > 0 ? (
        <fieldset class="copies">
          <legend>Copies to other regions</legend>
          {others.map((r) => {
            const copy = draft.copies[r] ?? { on: false, keep: '' };
            const set = (next: Partial<typeof copy>) =>
              setDraft({ ...draft, copies: { ...draft.copies, [r]: { ...copy, ...next } } });
            return (
              <div class="copy-rule" key={r}>
                <label class="check">
                  <input
                    type="checkbox"
                    checked={copy.on}
                    onChange={(e) => set({ on: (e.target as HTMLInputElement).checked })}
                  />
                  Copy to {r}
                </label>
                <label>
                  {r}: copies kept (a count or a time; empty: as above)
                  <input
                    value={copy.keep}
                    disabled={!copy.on}
                    onInput={(e) => set({ keep: (e.target as HTMLInputElement).value })}
                  />
                </label>
              </div>
            );
          })}
        </fieldset>
      ) : null}
      <button type="submit" class="primary">
        {props.submit}
      </button>
      <ErrorText error={error} />
    </form>
  );
}
