import { useEffect, useMemo, useState } from 'preact/hooks';
import { AccountPage } from './account.tsx';
import { Console, type ConsoleContext, currentRoute, navigate } from './context.ts';
import { ExportDetail, ExportsPage } from './exports.tsx';
import { ImageDetail, ImagesPage, InstanceDetail, InstancesPage } from './inventory.tsx';
import { PoliciesPage, PolicyDetail } from './policies.tsx';
import {
  type ConsoleConfig,
  clientFor,
  loadConfig,
  loadSession,
  type Session,
  saveSession,
} from './session.ts';
import { SnapshotDetail, SnapshotsPage } from './snapshots.tsx';
import { ErrorText } from './ui.tsx';
import { VolumeDetail, VolumesPage } from './volumes.tsx';

type WhoAmI = ConsoleContext['whoami'];

export function App() {
  const [config, setConfig] = useState<ConsoleConfig | undefined>(undefined);
  const [configError, setConfigError] = useState<unknown>(undefined);
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const [whoami, setWhoami] = useState<WhoAmI | undefined>(undefined);
  const [restoreError, setRestoreError] = useState<unknown>(undefined);
  useEffect(() => {
    loadConfig().then(setConfig, setConfigError);
  }, []);
  // A reload of a signed-in tab: ask who the kept key is (it may have been revoked since).
  useEffect(() => {
    if (!config || !session || whoami) return;
    clientFor(config, session.apiKey, session.region)
      .whoami()
      .then(setWhoami, (error: unknown) => {
        saveSession(undefined);
        setSession(undefined);
        setRestoreError(error);
      });
  }, [config, session, whoami]);
  if (configError) return <ErrorText error={configError} />;
  if (!config) return <p class="loading">Loading…</p>;
  if (!session || !whoami) {
    if (session && !restoreError) return <p class="loading">Signing in…</p>;
    return (
      <SignIn
        config={config}
        initialError={restoreError}
        onSignIn={(next, me) => {
          saveSession(next);
          setSession(next);
          setWhoami(me);
        }}
      />
    );
  }
  return (
    <SignedIn
      config={config}
      session={session}
      whoami={whoami}
      onRegion={(region) => {
        const next = { ...session, region };
        saveSession(next);
        setSession(next);
      }}
      onSignOut={() => {
        saveSession(undefined);
        setSession(undefined);
        setWhoami(undefined);
        setRestoreError(undefined);
        navigate('/snapshots');
      }}
    />
  );
}

function SignIn(props: {
  config: ConsoleConfig;
  initialError: unknown;
  onSignIn: (session: Session, whoami: WhoAmI) => void;
}) {
  const [apiKey, setApiKey] = useState('');
  const [region, setRegion] = useState(props.config.region);
  const [error, setError] = useState<unknown>(props.initialError);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const key = apiKey.trim();
    try {
      const me = await clientFor(props.config, key, region).whoami();
      props.onSignIn({ apiKey: key, region }, me);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>volsnap console</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <label>
          API key
          <input
            type="password"
            name="apiKey"
            autocomplete="off"
            spellcheck={false}
            required
            value={apiKey}
            onInput={(e) => setApiKey((e.target as HTMLInputElement).value)}
          />
        </label>
        <label htmlFor="sign-in-region">Region</label>
        <RegionOptions id="sign-in-region" config={props.config} value={region} onChange={setRegion} />
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
        <ErrorText error={error} />
        <p class="hint">
          The key stays in this tab only (it is gone when the tab closes) and is sent to the volsnap API only.
        </p>
      </form>
    </main>
  );
}

function RegionOptions(props: {
  id: string;
  config: ConsoleConfig;
  value: string;
  onChange: (region: string) => void;
}) {
  return (
    <select
      id={props.id}
      name="region"
      value={props.value}
      onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}
    >
      {props.config.regions.map((r) => (
        <option key={r.name} value={r.name}>
          {r.name}
        </option>
      ))}
    </select>
  );
}

const NAV: [route: string, label: string][] = [
  ['/snapshots', 'Snapshots'],
  ['/volumes', 'Volumes'],
  ['/exports', 'Exports'],
  ['/policies', 'Policies'],
  ['/instances', 'Instances'],
  ['/images', 'Images'],
  ['/account', 'Account'],
];

function SignedIn(props: {
  config: ConsoleConfig;
  session: Session;
  whoami: WhoAmI;
  onRegion: (region: string) => void;
  onSignOut: () => void;
}) {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const { config, session } = props;
  const context = useMemo<ConsoleContext>(
    () => ({
      config,
      region: session.region,
      api: clientFor(config, session.apiKey, session.region),
      apiIn: (region) => clientFor(config, session.apiKey, region),
      switchRegion: (region, to) => {
        props.onRegion(region);
        if (to) navigate(to);
      },
      whoami: props.whoami,
    }),
    [config, session, props.whoami, props.onRegion],
  );
  const { account, user } = props.whoami;
  return (
    <Console.Provider value={context}>
      <header class="top">
        <a class="brand" href="#/snapshots">
          volsnap
        </a>
        <nav class="navlinks" aria-label="Main">
          {NAV.map(([to, label]) => (
            <a
              key={to}
              href={`#${to}`}
              aria-current={sectionOf(route) === sectionOf(to) ? 'page' : undefined}
            >
              {label}
            </a>
          ))}
        </nav>
        <span class="region">
          <label htmlFor="region">Region</label>
          <RegionOptions
            id="region"
            config={config}
            value={session.region}
            onChange={(r) => context.switchRegion(r)}
          />
        </span>
        <div class="session">
          <p class="who">
            <span class="sr-only">Signed in as </span>
            <span class="account-name">{account.name}</span> <span class="id">{account.accountId}</span> ·{' '}
            <span class="user-name">{user.userName}</span> ({user.role})
          </p>
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main key={session.region}>
        <Page route={route} />
      </main>
    </Console.Provider>
  );
}

/** The list a route belongs to: `/volume/vol-1` and `/volumes` are both `volume`. */
const sectionOf = (route: string) =>
  (route.split(/[/?]/)[1] ?? '').replace(/(ies|s)$/, (end) => (end === 'ies' ? 'y' : ''));

function Page({ route }: { route: string }) {
  const [path = '', query = ''] = route.split('?');
  const [, section = 'snapshots', arg] = path.split('/');
  const id = decodeURIComponent(arg ?? '');
  switch (section) {
    case 'snapshot':
      return <SnapshotDetail snapshotId={id} />;
    case 'volume':
      return <VolumeDetail key={id} volumeId={id} />;
    case 'export':
      return <ExportDetail key={id} exportId={id} />;
    case 'policy':
      return <PolicyDetail key={id} policyId={id} />;
    case 'instance':
      return <InstanceDetail key={id} instanceId={id} />;
    case 'image':
      return <ImageDetail key={id} imageId={id} />;
    case 'volumes':
      return <VolumesPage key={route} name={new URLSearchParams(query).get('name') ?? ''} />;
    case 'exports':
      return <ExportsPage />;
    case 'policies':
      return <PoliciesPage />;
    case 'instances':
      return <InstancesPage />;
    case 'images':
      return <ImagesPage />;
    case 'account':
      return <AccountPage />;
    default:
      return (
        <SnapshotsPage
          key={route}
          tab={arg ?? 'own'}
          volumeId={new URLSearchParams(query).get('volume') ?? ''}
        />
      );
  }
}
