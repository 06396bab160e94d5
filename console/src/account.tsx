import type { AccountUsage } from '../../lib/client/api-client.ts';
import { useConsole } from './context.ts';
import { formatSize } from './format.ts';
import { ErrorText, Fields, useLoaded } from './ui.tsx';

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
