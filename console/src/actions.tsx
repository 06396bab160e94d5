import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { useConsole } from './context.ts';
import { ConfirmDialog, ErrorText, Fields, Notice, StateBadge, useLoaded } from './ui.tsx';

/** A field of an {@link ActionForm}: a text field, or a choice when `options` are given. */
export interface ActionField {
  name: string;
  label: string;
  value?: string;
  options?: readonly (string | [value: string, label: string])[];
  required?: boolean;
  placeholder?: string;
}

/**
 * A small form that runs one action of the API; its failure is shown under it in the API's
 * words, and the fields keep what was typed.
 */
export function ActionForm(props: {
  label: string;
  submit: string;
  fields: ActionField[];
  run: (values: Record<string, string>) => Promise<void>;
  /** Empties the text fields after a success. */
  reset?: boolean;
}) {
  const initial = () => Object.fromEntries(props.fields.map((f) => [f.name, f.value ?? firstOption(f)]));
  const [values, setValues] = useState<Record<string, string>>(initial);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      await props.run(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.trim()])));
      if (props.reset) setValues(initial());
    } catch (failure) {
      setError(failure);
    }
    setBusy(false);
  };
  return (
    <form class="inline" onSubmit={submit} aria-label={props.label}>
      {props.fields.map((f) => (
        <ActionInput
          key={f.name}
          field={f}
          value={values[f.name] ?? ''}
          onChange={(v) => setValues({ ...values, [f.name]: v })}
        />
      ))}
      <button type="submit" disabled={busy}>
        {props.submit}
      </button>
      <ErrorText error={error} />
    </form>
  );
}

function ActionInput(props: { field: ActionField; value: string; onChange: (value: string) => void }) {
  const f = props.field;
  if (f.options)
    return (
      <label>
        {f.label}
        <select
          name={f.name}
          value={props.value}
          onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}
        >
          {f.options.map((o) => {
            const [value, label] = typeof o === 'string' ? [o, o] : o;
            return (
              <option key={value} value={value}>
                {label}
              </option>
            );
          })}
        </select>
      </label>
    );
  return (
    <label>
      {f.label}
      <input
        name={f.name}
        required={f.required}
        placeholder={f.placeholder}
        value={props.value}
        onInput={(e) => props.onChange((e.target as HTMLInputElement).value)}
      />
    </label>
  );
}

const firstOption = (f: ActionField) => {
  const first = f.options?.[0];
  return first === undefined ? '' : typeof first === 'string' ? first : first[0];
};

/** A button that asks first (a modal naming what will happen), then runs the action. */
export function ConfirmButton(props: {
  button: string;
  /** The button's accessible name, when its text alone does not say what it acts on. */
  name?: string;
  title: string;
  body: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  typeToConfirm?: string;
  run: () => Promise<void>;
}) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        type="button"
        class={props.danger ? 'danger' : undefined}
        aria-label={props.name}
        onClick={() => setOpen(true)}
      >
        {props.button}
      </button>
      {open ? (
        <ConfirmDialog
          title={props.title}
          body={props.body}
          confirmLabel={props.confirmLabel}
          {...(props.danger ? { danger: true } : {})}
          {...(props.typeToConfirm !== undefined ? { typeToConfirm: props.typeToConfirm } : {})}
          onConfirm={props.run}
          onClose={() => setOpen(false)}
        />
      ) : null}
    </>
  );
}

/** What a detail view's actions are given: the record shown, and how to show its next version. */
export interface DetailActions<T> {
  item: T;
  /** Shows the record an action answered (or loads it again) with a note of what happened. */
  changed: (next: T | undefined, notice: string) => void;
}

/**
 * A view of one record: a back link, its name, its state (updating while work is under way), the
 * fields the CLI's `show` prints, and its actions.
 */
export function DetailView<T>(props: {
  kind: string;
  id: string;
  back: [href: string, label: string];
  load: () => Promise<T>;
  nameOf: (item: T) => string;
  stateOf?: (item: T) => { state: string; progress?: number };
  pending?: (item: T) => boolean;
  fields: (item: T) => [string, string][];
  children?: (actions: DetailActions<T>) => ComponentChildren;
}) {
  const { region } = useConsole();
  const loaded = useLoaded(props.load, `${region} ${props.id}`, props.pending);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const item = loaded.data;
  const title = `${props.kind.toLowerCase()}-title`;
  return (
    <section aria-labelledby={title}>
      <p class="back">
        <a href={props.back[0]}>← {props.back[1]}</a>
      </p>
      <h1 id={title}>
        {props.kind} <span class="title-name">{item ? props.nameOf(item) : props.id}</span>
      </h1>
      <ErrorText error={loaded.error} />
      <Notice text={notice} />
      {item === undefined ? (
        loaded.error ? null : (
          <p class="loading">Loading…</p>
        )
      ) : (
        <>
          {props.stateOf ? (
            <p class="state-line">
              State: <StateBadge {...props.stateOf(item)} />
            </p>
          ) : null}
          <Fields fields={props.fields(item)} label={`${props.kind} fields`} />
          {props.children?.({
            item,
            changed: (next, text) => {
              if (next === undefined) loaded.reload();
              else loaded.set(next);
              setNotice(text);
            },
          })}
        </>
      )}
    </section>
  );
}

/** A detail view's actions, under a heading screen readers can jump to. */
export function ActionsSection({ children }: { children: ComponentChildren }) {
  return (
    <section aria-labelledby="actions-title" class="actions">
      <h2 id="actions-title">Actions</h2>
      {children}
    </section>
  );
}
