import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../../lib/client/api-client.ts';

/** How often a view that shows work in flight asks again. */
export const POLL_MS = 1500;

/** An error as words: the API's message (its code beside it, for a support request). */
export function ErrorText({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  const code = error instanceof ApiError ? error.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert">
      {message}
      {code ? <span class="code"> ({code})</span> : null}
    </p>
  );
}

/** A short success note, read out by screen readers. */
export function Notice({ text }: { text: string | undefined }) {
  return (
    <p class="notice" role="status" aria-live="polite">
      {text ?? ''}
    </p>
  );
}

/** A state, with its progress while work is under way. */
export function StateBadge({ state, progress }: { state: string; progress?: number }) {
  const busy = state === 'pending' || state === 'queued';
  return (
    <span class={`state state-${state}`} data-state={state}>
      <span class="state-name">{state}</span>
      {busy && progress !== undefined ? (
        <>
          {' '}
          <progress max={100} value={progress} aria-label={`${state}, ${progress}%`} />{' '}
          <span class="state-progress">{progress}%</span>
        </>
      ) : null}
    </span>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  /** Replaces the data shown (an action's answer) until the next load. */
  set: (data: T) => void;
}

/**
 * Loads `load()` when `key` changes and again every {@link POLL_MS} while `poll(data)` holds, so
 * pending work updates without a reload. A load that answers after a newer one started is dropped.
 */
export function useLoaded<T>(
  load: () => Promise<T>,
  key: string,
  poll?: (data: T) => boolean,
  /** What an action just answered: shown at once, and asked again only when polling says so. */
  initial?: T,
): Loaded<T> {
  const [data, setData] = useState<T | undefined>(initial);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(initial === undefined);
  const [tick, setTick] = useState(0);
  const generation = useRef(0);
  const seeded = useRef(initial !== undefined);
  useEffect(() => {
    if (seeded.current) {
      seeded.current = false;
      return;
    }
    const mine = ++generation.current;
    setLoading(true);
    load().then(
      (value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(undefined);
        setLoading(false);
      },
      (failure: unknown) => {
        if (mine !== generation.current) return;
        setError(failure);
        setLoading(false);
      },
    );
  }, [key, tick]);
  const polling = data !== undefined && poll !== undefined && !loading && poll(data);
  useEffect(() => {
    if (!polling) return;
    const timer = setTimeout(() => setTick((t) => t + 1), POLL_MS);
    return () => clearTimeout(timer);
  }, [polling, data]);
  return {
    data,
    error,
    loading,
    reload: () => setTick((t) => t + 1),
    set: (value) => {
      generation.current++;
      setData(value);
      setLoading(false);
    },
  };
}

export interface ConfirmOptions {
  title: string;
  body: ComponentChildren;
  confirmLabel: string;
  /** The text the user must type to confirm (a snapshot's name when others use it). */
  typeToConfirm?: string;
  danger?: boolean;
}

/**
 * A modal confirmation (the native `<dialog>`: focus stays inside, Esc cancels). `onConfirm` runs
 * the action; its failure is shown in the dialog, in the API's words, and the dialog stays open.
 */
export function ConfirmDialog(
  props: ConfirmOptions & { onConfirm: () => Promise<void>; onClose: () => void },
) {
  const ref = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const allowed = props.typeToConfirm === undefined || typed === props.typeToConfirm;
  const confirm = async (event: Event) => {
    event.preventDefault();
    if (!allowed || busy) return;
    setBusy(true);
    try {
      await props.onConfirm();
      props.onClose();
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onClose={props.onClose}>
      <form onSubmit={confirm}>
        <h2 id="confirm-title">{props.title}</h2>
        <div class="confirm-body">{props.body}</div>
        {props.typeToConfirm !== undefined ? (
          <label>
            <span>
              Type <strong>{props.typeToConfirm}</strong> to confirm
            </span>
            <input
              name="typed"
              autocomplete="off"
              value={typed}
              onInput={(e) => setTyped((e.target as HTMLInputElement).value)}
            />
          </label>
        ) : null}
        <ErrorText error={error} />
        <div class="buttons">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={!allowed || busy}>
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** A definition list of label/value pairs, values as text. */
export function Fields({ fields, label }: { fields: [string, string][]; label: string }) {
  return (
    <dl class="fields" aria-label={label}>
      {fields.map(([name, value]) => (
        <div class="field" key={name} data-field={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
