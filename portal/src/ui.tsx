// Small shared pieces: the current route, data loading, messages, addresses.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { explain } from "./api";
import { t } from "./i18n";
import { LIVE_EVENT } from "./live";

export function useRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, "") || "").split("/").filter(Boolean);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const f = () => setRoute(read());
    addEventListener("hashchange", f);
    return () => removeEventListener("hashchange", f);
  }, []);
  return route;
}

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now, when `deps` change, when the window gets focus back and when a live
 * notification for the signed-in member arrives. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const run = useCallback(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (err) => live && setState({ data: null, error: explain(err), loading: false }),
    );
    return () => {
      live = false;
    };
  }, deps);
  useEffect(() => {
    const stop = run();
    const onFocus = () => run();
    addEventListener("focus", onFocus);
    addEventListener(LIVE_EVENT, onFocus);
    return () => {
      stop();
      removeEventListener("focus", onFocus);
      removeEventListener(LIVE_EVENT, onFocus);
    };
  }, [run]);
  return { ...state, reload: run };
}

export function ErrorMessage({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <p class="message error" role="alert">
      {text}
    </p>
  );
}

export function Status({ text }: { text: string | null }) {
  return (
    <p class="message status" role="status" aria-live="polite">
      {text ?? ""}
    </p>
  );
}

export function Address({ value }: { value: string }) {
  return (
    <code class="address" title={value}>
      {value.slice(0, 6)}…{value.slice(-4)}
    </code>
  );
}

export function Hex({ value }: { value: string }) {
  return <code class="hex">{value}</code>;
}

export function Loading() {
  return <p class="message status" role="status">{t("common.loading")}</p>;
}

export function Section(props: { title: string; id: string; children: ComponentChildren }) {
  const id = `h-${props.id}`;
  return (
    <section aria-labelledby={id} class="card">
      <h2 id={id}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function Facts({ rows }: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

/** A data table: column headers (an entry that is not a string leaves its column out,
 * so `cond && t("...")` works) and body rows. */
export function Table(props: {
  headers: (string | false | null | undefined)[];
  children: ComponentChildren;
}) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {props.headers.map(
              (h) =>
                typeof h === "string" && (
                  <th scope="col" key={h}>
                    {h}
                  </th>
                ),
            )}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}
