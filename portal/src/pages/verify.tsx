// Public verification: a drawing (hashed here, never uploaded) with its optional
// certificate, and a step proof bundle, checked against the chain by the node.
import { sha256 } from "ethers";
import { useState } from "preact/hooks";
import { ApiError, explain, post, request } from "../api";
import { formatDate, formatNumber, label, t } from "../i18n";
import { ErrorMessage, Facts, Hex, Section, Status } from "../ui";

interface Verdict {
  registered: boolean;
  design_id: string;
  designer: string;
  block_number: number;
  block_time: number;
  chain_id: number;
  contract: string;
  kind: string;
  tx_hash: string | null;
  status: string | null;
  priority: string;
  notes: string[];
}

interface StepVerdict {
  ok: boolean;
  steps: number;
  anchored: number;
  findings: { severity: string; code: string; message: string; split_id?: number; seq?: number }[];
}

/** SHA-256 of a file, read in slices so a large drawing shows progress. */
export async function hashFile(file: File, progress: (f: number) => void): Promise<string> {
  const bytes = new Uint8Array(file.size);
  const slice = 8 * 1024 * 1024;
  for (let at = 0; at < file.size; at += slice) {
    const part = new Uint8Array(await file.slice(at, at + slice).arrayBuffer());
    bytes.set(part, at);
    progress(Math.min(1, (at + part.length) / Math.max(1, file.size)));
  }
  if (crypto.subtle) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return "0x" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return sha256(bytes); // a page served over plain HTTP to another host has no crypto.subtle
}

function DropZone(props: { id: string; label: string; accept?: string; file: File | null; onFile: (f: File | null) => void }) {
  const [over, setOver] = useState(false);
  return (
    <div
      class={over ? "drop over" : "drop"}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        props.onFile(e.dataTransfer?.files?.[0] ?? null);
      }}
    >
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="file"
        accept={props.accept}
        onChange={(e) => props.onFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
      />
      {props.file && <span class="file-name">{props.file.name}</span>}
    </div>
  );
}

function DesignVerdict({ v }: { v: Verdict }) {
  return (
    <div class="verdict ok" data-testid="design-verdict">
      <p class="verdict-title">✔ {t("verify.design.registered")}</p>
      <Facts
        rows={[
          [t("verify.designer"), <Hex value={v.designer} />],
          [t("verify.when"), formatDate(v.block_time)],
          [t("verify.block"), formatNumber(v.block_number)],
          [t("verify.status"), v.status ? label("design.status", v.status) : label("design.status", "unrevealed")],
          [t("verify.kind"), label("verify.kind", v.kind)],
          [t("verify.priority"), label("verify.priority", v.priority)],
          [t("verify.tx"), v.tx_hash ? <Hex value={v.tx_hash} /> : t("common.none")],
          [t("verify.contract"), <Hex value={v.contract} />],
          [t("verify.chain"), String(v.chain_id)],
          [t("verify.notes"), v.notes.length ? v.notes.join("; ") : t("common.none")],
        ]}
      />
    </div>
  );
}

function DesignCheck() {
  const [file, setFile] = useState<File | null>(null);
  const [cert, setCert] = useState<File | null>(null);
  const [hash, setHash] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [verdict, setVerdict] = useState<Verdict | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function check(e: Event) {
    e.preventDefault();
    setVerdict(null);
    setMissing(false);
    setError(null);
    if (!file) {
      setError(t("verify.design.pick"));
      return;
    }
    try {
      const digest = await hashFile(file, (f) =>
        setStatus(t("verify.design.hashing", { percent: `${Math.round(f * 100)} %` })),
      );
      setHash(digest);
      setStatus(null);
      const form = new FormData();
      form.append("design", digest); // the fingerprint only: the drawing stays here
      if (cert) form.append("bundle", cert, cert.name);
      setVerdict(await request<Verdict>("POST", "/designs/verify", undefined, { form }));
    } catch (err) {
      setStatus(null);
      if (err instanceof ApiError && err.status === 404) setMissing(true);
      else setError(explain(err));
    }
  }

  return (
    <Section id="design" title={t("verify.design.title")}>
      <form onSubmit={check}>
        <p>{t("verify.design.drop")}</p>
        <DropZone id="design-file" label={t("verify.design.file")} file={file} onFile={setFile} />
        <DropZone id="design-cert" label={t("verify.design.cert")} accept=".json,application/json" file={cert} onFile={setCert} />
        <button type="submit">{t("verify.design.button")}</button>
      </form>
      <Status text={status} />
      {hash && <p class="hash">{t("verify.design.hash", { hash })}</p>}
      {verdict && <DesignVerdict v={verdict} />}
      {missing && (
        <p class="verdict bad" role="alert" data-testid="design-verdict">
          ✘ {t("verify.design.notRegistered")}
        </p>
      )}
      <ErrorMessage text={error} />
    </Section>
  );
}

function StepsCheck() {
  const [file, setFile] = useState<File | null>(null);
  const [verdict, setVerdict] = useState<StepVerdict | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function check(e: Event) {
    e.preventDefault();
    setVerdict(null);
    setError(null);
    if (!file) {
      setError(t("verify.steps.pick"));
      return;
    }
    let bundle: unknown;
    try {
      bundle = JSON.parse(await file.text());
    } catch {
      setError(t("verify.steps.notJson"));
      return;
    }
    try {
      setVerdict(await post<StepVerdict>("/steps/verify", bundle));
    } catch (err) {
      setError(explain(err));
    }
  }

  return (
    <Section id="steps" title={t("verify.steps.title")}>
      <form onSubmit={check}>
        <DropZone id="steps-file" label={t("verify.steps.file")} accept=".json,application/json" file={file} onFile={setFile} />
        <button type="submit">{t("verify.steps.button")}</button>
      </form>
      {verdict && (
        <div class={verdict.ok ? "verdict ok" : "verdict bad"} data-testid="steps-verdict" role="status">
          <p class="verdict-title">
            {verdict.ok ? `✔ ${t("verify.steps.ok")}` : `✘ ${t("verify.steps.bad")}`}
          </p>
          <p>{t("verify.steps.count", { steps: formatNumber(verdict.steps), anchored: formatNumber(verdict.anchored) })}</p>
          {verdict.findings.length > 0 && (
            <>
              <h3>{t("verify.steps.findings")}</h3>
              <ul>
                {verdict.findings.map((f, i) => (
                  <li key={i}>
                    <strong>{f.code}</strong>: {f.message}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
      <ErrorMessage text={error} />
    </Section>
  );
}

export function Verify() {
  return (
    <>
      <h1>{t("verify.title")}</h1>
      <p>{t("verify.intro")}</p>
      <DesignCheck />
      <StepsCheck />
    </>
  );
}
