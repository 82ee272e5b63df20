// The audit of an order: rebuilt from the chain and the evidence (this node's step bundles
// and any the auditor adds), read here in short, in full in the embedded report, and
// downloadable as JSON.
import { useState } from "preact/hooks";
import { explain, post } from "../api";
import { formatNumber, label, t } from "../i18n";
import { download as save, ErrorMessage, Facts, FileField, Hex, Section, Status } from "../ui";

interface Report {
  summary: { verdict: string; [severity: string]: string | number };
  findings: { severity: string; code: string; statement: string }[];
  report_hash: string;
  inputs: unknown;
}

const SEVERITIES = ["critical", "major", "minor", "info"];

export function Audit({ id }: { id: number }) {
  const [files, setFiles] = useState<File[]>([]);
  const [report, setReport] = useState<Report | null>(null);
  const [raw, setRaw] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [shown, setShown] = useState(false);

  async function run(e: Event) {
    e.preventDefault();
    setError(null);
    setReport(null);
    try {
      const bundles = [];
      for (const f of files) {
        try {
          bundles.push(JSON.parse(await f.text()));
        } catch {
          throw new Error(t("audit.notJson", { name: f.name }));
        }
      }
      setStatus(t("audit.running"));
      const out = await post<Report>(`/jobs/${id}/audit`, { bundles, include_node_steps: true });
      setReport(out);
      setRaw(JSON.stringify(out, null, 2) + "\n");
      setStatus(null);
    } catch (err) {
      setStatus(null);
      setError(explain(err));
    }
  }

  function download() {
    if (raw) save(`audit-order-${id}.json`, raw);
  }

  return (
    <>
      <h1>{t("audit.title", { id })}</h1>
      <p>{t("audit.intro")}</p>
      <Section id="run" title={t("audit.run")}>
        <form onSubmit={run}>
          <FileField id="audit-bundles" label={t("audit.bundles")} multiple accept=".json,application/json" onFiles={setFiles} />
          <button type="submit">{t("audit.runButton")}</button>
        </form>
        <Status text={status} />
        <ErrorMessage text={error} />
      </Section>
      {report && (
        <Section id="report" title={t("audit.report")}>
          <div class={report.summary.verdict === "clean" ? "verdict ok" : "verdict bad"} data-testid="audit-verdict">
            <p class="verdict-title">{label("audit.verdict", report.summary.verdict)}</p>
            <Facts
              rows={[
                ...SEVERITIES.filter((s) => s in report.summary).map(
                  (s) => [label("audit.severity", s), formatNumber(Number(report.summary[s]))] as [string, string],
                ),
                [t("audit.hash"), <Hex value={report.report_hash} />],
              ]}
            />
          </div>
          {report.findings.length > 0 && (
            <ul>
              {report.findings.map((f, i) => (
                <li key={i}>
                  <strong>{label("audit.severity", f.severity)}</strong> <code>{f.code}</code>: {f.statement}
                </li>
              ))}
            </ul>
          )}
          <div class="actions">
            <button type="button" onClick={download}>
              {t("audit.download")}
            </button>
            <button type="button" class="secondary" onClick={() => setShown(!shown)}>
              {t(shown ? "audit.hideFull" : "audit.showFull")}
            </button>
          </div>
          {shown && (
            <iframe class="report" title={t("audit.frame", { id })} src={`/jobs/${id}/audit?format=html`} />
          )}
        </Section>
      )}
    </>
  );
}
