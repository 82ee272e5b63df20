// A designer's drawings: registered by fingerprint (hashed here, the files stay in the
// browser), certificates to download, and committed designs revealed on the chain.
import { useState } from "preact/hooks";
import { explain, get, post } from "../api";
import { formatNumber, label, t } from "../i18n";
import { currentSession } from "../session";
import { ErrorMessage, Hex, Loading, Section, Status, Table, useLoad } from "../ui";
import { hashFile } from "./verify";

interface Certificate {
  design_id: string;
  metadata?: { title?: string | null; file_name?: string | null } | null;
  [key: string]: unknown;
}

interface Design {
  design_id: string;
  designer: string;
  block_number: number;
  status: string;
  from_batch: boolean;
  metadata?: { title?: string | null; file_name?: string | null } | null;
}

function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function downloadCertificate(designId: string): Promise<void> {
  const cert = await get<Certificate>(`/designs/${designId}/certificate`);
  download(`${designId.slice(2, 14)}.certificate.json`, JSON.stringify(cert, null, 2) + "\n");
}

function Register({ registered }: { registered: () => void }) {
  const [files, setFiles] = useState<File[]>([]);
  const [progress, setProgress] = useState<number | null>(null);
  const [certs, setCerts] = useState<Certificate[]>([]);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function register(e: Event) {
    e.preventDefault();
    setError(null);
    setCerts([]);
    if (files.length === 0) {
      setError(t("designs.pick"));
      return;
    }
    try {
      const total = files.reduce((n, f) => n + f.size, 0) || 1;
      let done = 0;
      const designs = [];
      for (const file of files) {
        const digest = await hashFile(file, (f) => setProgress((done + f * file.size) / total));
        done += file.size;
        designs.push({ design_id: digest, title: file.name.slice(0, 500) });
      }
      setProgress(null);
      setStatus(t("designs.sending", { count: formatNumber(designs.length) }));
      const out = await post<Certificate[]>("/designs/by-hash", { designs });
      setCerts(out);
      setStatus(t("designs.registered", { count: formatNumber(out.length) }));
      registered();
    } catch (err) {
      setProgress(null);
      setStatus(null);
      setError(explain(err));
    }
  }

  return (
    <Section id="register" title={t("designs.register")}>
      <p>{t("designs.registerHelp")}</p>
      <form onSubmit={register}>
        <label for="design-files">{t("designs.files")}</label>
        <input
          id="design-files"
          type="file"
          multiple
          onChange={(e) => setFiles(Array.from((e.currentTarget as HTMLInputElement).files ?? []))}
        />
        <label for="design-folder">{t("designs.folder")}</label>
        <input
          id="design-folder"
          type="file"
          {...{ webkitdirectory: "" }}
          onChange={(e) => setFiles(Array.from((e.currentTarget as HTMLInputElement).files ?? []))}
        />
        <button type="submit">{t("designs.registerButton", { count: formatNumber(files.length) })}</button>
      </form>
      {progress !== null && (
        <p>
          <label for="hash-progress">{t("designs.hashing")}</label>{" "}
          <progress id="hash-progress" max={1} value={progress} />
        </p>
      )}
      <Status text={status} />
      <ErrorMessage text={error} />
      {certs.length > 0 && (
        <ul data-testid="certificates">
          {certs.map((c) => (
            <li key={c.design_id}>
              {c.metadata?.title ?? c.metadata?.file_name ?? ""} <Hex value={c.design_id} />{" "}
              <button
                type="button"
                class="secondary"
                onClick={() =>
                  download(`${c.design_id.slice(2, 14)}.certificate.json`, JSON.stringify(c, null, 2) + "\n")
                }
              >
                {t("designs.certificate")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

export function Designs() {
  const session = currentSession()!;
  const address = session.me.address;
  const list = useLoad(() => get<Design[]>(`/designs?designer=${address}`), [address]);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function run(action: () => Promise<unknown>, done?: string) {
    setError(null);
    try {
      await action();
      if (done) setStatus(done);
      list.reload();
    } catch (err) {
      setError(explain(err));
    }
  }

  return (
    <>
      <h1>{t("designs.title")}</h1>
      <Register registered={list.reload} />
      <Section id="mine" title={t("designs.mine")}>
        <Status text={status} />
        <ErrorMessage text={error ?? list.error} />
        {list.loading && !list.data && <Loading />}
        {list.data && list.data.length === 0 && <p>{t("designs.none")}</p>}
        {list.data && list.data.length > 0 && (
          <Table
            headers={[
              t("designs.name"),
              t("order.design"),
              t("verify.status"),
              t("verify.block"),
              t("work.action"),
            ]}
          >
                {list.data.map((d) => (
                  <tr key={d.design_id} data-testid={`design-${d.design_id}`}>
                    <td>{d.metadata?.title ?? d.metadata?.file_name ?? ""}</td>
                    <td>
                      <Hex value={d.design_id} />
                    </td>
                    <td>{label("design.status", d.status)}</td>
                    <td class="num">{d.block_number ? formatNumber(d.block_number) : "—"}</td>
                    <td class="actions">
                      {d.status === "unrevealed" && (
                        <button
                          type="button"
                          onClick={() =>
                            run(() => post(`/designs/${d.design_id}/reveal`), t("designs.revealed"))
                          }
                        >
                          {t("designs.reveal")}
                        </button>
                      )}
                      <button type="button" class="secondary" onClick={() => run(() => downloadCertificate(d.design_id))}>
                        {t("designs.certificate")}
                      </button>
                    </td>
                  </tr>
                ))}
</Table>
        )}
      </Section>
    </>
  );
}
