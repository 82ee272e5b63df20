// Small shared pieces: the current route, data loading, messages, addresses.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { explain, get, type Token } from "./api";
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
      <h2 id={id} tabIndex={-1}>
        {props.title}
      </h2>
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

/** Whether two addresses are the same (any letter case). */
export const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Saves `data` as a file named `name` (a JSON certificate, an audit report, a file). */
export function download(name: string, data: string | Blob): void {
  const blob = typeof data === "string" ? new Blob([data], { type: "application/json" }) : data;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** An action's outcome: a notice when it worked, the API's refusal in words when not.
 * `run` clears both, runs the action, then says `done` (and calls `after`) or the error. */
export function useAction(after?: () => void) {
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  async function run(action: () => Promise<unknown>, done?: string): Promise<boolean> {
    setNotice(null);
    setError(null);
    try {
      await action();
      if (done) setNotice(done);
      after?.();
      return true;
    } catch (err) {
      setError(explain(err));
      return false;
    }
  }
  return { notice, error, run, setNotice, setError };
}

/** The notice and the error of `useAction`, where the page shows them. */
export function Outcome({ notice, error }: { notice: string | null; error: string | null }) {
  return (
    <>
      <Status text={notice} />
      <ErrorMessage text={error} />
    </>
  );
}

/** A labelled file chooser. */
export function FileField(props: {
  id: string;
  label: string;
  multiple?: boolean;
  accept?: string;
  onFiles: (files: File[]) => void;
}) {
  return (
    <>
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="file"
        multiple={props.multiple}
        accept={props.accept}
        onChange={(e) => props.onFiles(Array.from((e.currentTarget as HTMLInputElement).files ?? []))}
      />
    </>
  );
}

/** A labelled text (or number, date…) input bound to a string. */
export function Field(props: {
  id: string;
  label: string;
  value: string;
  onValue: (value: string) => void;
  type?: "text" | "number" | "date";
  min?: string;
  max?: string;
  step?: string;
  maxLength?: number;
}) {
  const { id, label, value, onValue, type, ...rest } = props;
  // preact types an input's attributes by its type: the union of three is spread untyped
  const attrs: Record<string, unknown> = { id, type: type ?? "text", spellcheck: false, value, ...rest };
  return (
    <>
      <label for={id}>{label}</label>
      <input {...attrs} onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)} />
    </>
  );
}

/** Time left until `until` (unix seconds), ticking every second: “2 d 3 h 4 min 5 s”. */
export function Countdown({ until }: { until: number }) {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(id);
  }, []);
  let left = Math.max(0, Math.floor(until - now));
  const parts: [number, string][] = [];
  for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]] as [number, string][]) {
    parts.push([Math.floor(left / size), unit]);
    left %= size;
  }
  const first = parts.findIndex(([n]) => n > 0);
  const shown = first < 0 ? [parts[3]] : parts.slice(first, first + 2);
  return (
    <span class="countdown" data-testid="countdown">
      {shown.map(([n, unit]) => t(`time.${unit}` as "time.d", { n })).join(" ")}
    </span>
  );
}

export interface PayConfig {
  settlement: string;
  default_token: Token | null;
  platform: string;
  platform_fee_ppm: number;
}

let payConfigOnce: Promise<PayConfig> | null = null;
/** The payment token and fee: the same for the node's life, fetched once a page load. */
export function payConfig(): Promise<PayConfig> {
  payConfigOnce ??= get<PayConfig>("/pay/config").catch((err) => {
    payConfigOnce = null;
    throw err;
  });
  return payConfigOnce;
}
