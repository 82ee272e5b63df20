// A designer's drawings: registered by fingerprint (hashed here, the files stay in the
// browser), certificates to download, committed designs revealed on the chain, and their
// versions: a design superseded by a new one (its file hashed here too) or revoked, each
// said in words before it is done.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { explain, get, post, request, type Member } from "../api";
import { formatNumber, formatPpm, label, t } from "../i18n";
import { currentSession } from "../session";
import { Address, download, ErrorMessage, FileField, Hex, Loading, Outcome, Section, Status, Table, useAction, useLoad } from "../ui";
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
  parent_id?: string | null;
  successor_id?: string | null;
  metadata?: { title?: string | null; file_name?: string | null } | null;
}

/** A design id, shortened (the full id in its title). */
function ShortHex({ value }: { value: string }) {
  return (
    <code class="hex" title={value}>
      {value.slice(0, 10)}…{value.slice(-6)}
    </code>
  );
}

const nameOf = (d: Design | undefined) => d?.metadata?.title ?? d?.metadata?.file_name ?? "";

/** How many versions precede `d` among the designer's own (following each parent). */
function versionNumber(d: Design, byId: Map<string, Design>): number {
  let n = 1;
  let parent = d.parent_id;
  const seen = new Set<string>();
  while (parent && !seen.has(parent) && n < 64) {
    seen.add(parent);
    n++;
    parent = byId.get(parent)?.parent_id;
  }
  return n;
}

/** A panel that takes the focus when it opens (keyboard users land on what they opened). */
function Panel(props: { id: string; title: string; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <section aria-labelledby={`h-${props.id}`} class="card" data-testid={props.id}>
      <h2 id={`h-${props.id}`} tabIndex={-1} ref={heading}>
        {props.title}
      </h2>
      {props.children}
    </section>
  );
}

async function downloadCertificate(designId: string): Promise<void> {
  const cert = await get<Certificate>(`/designs/${designId}/certificate`);
  download(`${designId.slice(2, 14)}.certificate.json`, JSON.stringify(cert, null, 2) + "\n");
}

function Register({ registered }: { registered: () => void }) {
  const [files, setFiles] = useState<File[]>([]);
  const [progress, setProgress] = useState<number | null>(null);
  const [certs, setCerts] = useState<Certificate[]>([]);
  const [keep, setKeep] = useState(false);
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
      setStatus(t(keep ? "designs.uploading" : "designs.sending", { count: formatNumber(designs.length) }));
      let out: Certificate[];
      if (keep) {
        // the node keeps the files (to share them encrypted later): they are uploaded
        const form = new FormData();
        for (const file of files) form.append("files", file, file.name);
        out = await request<Certificate[]>("POST", "/designs", undefined, { form });
      } else {
        out = await post<Certificate[]>("/designs/by-hash", { designs });
      }
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
        <FileField id="design-files" label={t("designs.files")} multiple onFiles={setFiles} />
        <label for="design-folder">{t("designs.folder")}</label>
        <input
          id="design-folder"
          type="file"
          {...{ webkitdirectory: "" }}
          onChange={(e) => setFiles(Array.from((e.currentTarget as HTMLInputElement).files ?? []))}
        />
        <p>
          <input id="design-keep" type="checkbox" checked={keep} onChange={() => setKeep(!keep)} />{" "}
          <label for="design-keep">{t("designs.keep")}</label>
        </p>
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

type Open = { kind: "licences" | "version" | "revoke"; design: Design } | null;

export function Designs() {
  const session = currentSession()!;
  const address = session.me.address;
  const list = useLoad(() => get<Design[]>(`/designs?designer=${address}`), [address]);
  const action = useAction(list.reload);
  const [open, setOpen] = useState<Open>(null);
  const opener = useRef<HTMLElement | null>(null);
  const byId = new Map((list.data ?? []).map((d) => [d.design_id, d]));
  const toggle = (kind: "licences" | "version" | "revoke", d: Design, e: Event) => {
    opener.current = e.currentTarget as HTMLElement;
    setOpen(open?.kind === kind && open.design.design_id === d.design_id ? null : { kind, design: d });
  };
  /** Closing a panel gives the focus back to the button that opened it (if still shown). */
  const close = () => {
    setOpen(null);
    requestAnimationFrame(() => opener.current?.isConnected && opener.current.focus());
  };
  useEffect(() => {
    // a new version or a revocation removes the button that opened its panel once the
    // list reloads: the keyboard stays in the list instead of falling back to the page
    if (opener.current && !opener.current.isConnected) {
      opener.current = null;
      document.getElementById("h-mine")?.focus();
    }
  }, [list.data]);
  const expanded = (kind: string, d: Design) => open?.kind === kind && open.design.design_id === d.design_id;
  // said in the language shown now, also after a switch of language
  const [said, setSaid] = useState<(() => string) | null>(null);
  const done = (notice: () => string) => {
    close();
    setSaid(() => notice);
    list.reload();
  };
  const run = (act: () => Promise<unknown>, notice?: string) => {
    setSaid(null);
    return action.run(act, notice);
  };

  return (
    <>
      <h1>{t("designs.title")}</h1>
      <Register registered={list.reload} />
      <Section id="mine" title={t("designs.mine")}>
        <Outcome notice={said?.() ?? action.notice} error={action.error ?? list.error} />
        {list.loading && !list.data && <Loading />}
        {list.data && list.data.length === 0 && <p>{t("designs.none")}</p>}
        {list.data && list.data.length > 0 && (
          <Table
            headers={[
              t("designs.name"),
              t("order.design"),
              t("verify.status"),
              t("designs.versions"),
              t("verify.block"),
              t("work.action"),
            ]}
          >
            {list.data.map((d) => (
              <tr key={d.design_id} data-testid={`design-${d.design_id}`}>
                <td>{nameOf(d)}</td>
                <td>
                  <Hex value={d.design_id} />
                </td>
                <td>
                  {d.status === "superseded" && d.successor_id ? (
                    <>
                      {t("designs.supersededBy")} <ShortHex value={d.successor_id} />
                    </>
                  ) : (
                    label("design.status", d.status)
                  )}
                </td>
                <td>
                  {t("designs.version", { n: formatNumber(versionNumber(d, byId)) })}
                  {d.parent_id && (
                    <>
                      {" "}
                      · {t("designs.after")} <ShortHex value={d.parent_id} />
                    </>
                  )}
                </td>
                <td class="num">{d.block_number ? formatNumber(d.block_number) : "—"}</td>
                <td class="actions">
                  {d.status === "unrevealed" && (
                    <button
                      type="button"
                      onClick={() => run(() => post(`/designs/${d.design_id}/reveal`), t("designs.revealed"))}
                    >
                      {t("designs.reveal")}
                    </button>
                  )}
                  <button type="button" class="secondary" onClick={() => run(() => downloadCertificate(d.design_id))}>
                    {t("designs.certificate")}
                  </button>
                  {d.status !== "unrevealed" && (
                    <button type="button" class="secondary" aria-expanded={expanded("licences", d)} onClick={(e) => toggle("licences", d, e)}>
                      {t("licences.open")}
                    </button>
                  )}
                  {d.status === "active" && (
                    <button type="button" class="secondary" aria-expanded={expanded("version", d)} onClick={(e) => toggle("version", d, e)}>
                      {t("versions.open")}
                    </button>
                  )}
                  {(d.status === "active" || d.status === "superseded") && (
                    <button type="button" class="secondary" aria-expanded={expanded("revoke", d)} onClick={(e) => toggle("revoke", d, e)}>
                      {t("versions.revoke")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Section>
      {open?.kind === "licences" && <Licences key={open.design.design_id} design={open.design.design_id} />}
      {open?.kind === "version" && (
        <NewVersion key={open.design.design_id} old={open.design} mine={byId} cancel={close} done={done} />
      )}
      {open?.kind === "revoke" && (
        <Revoke key={open.design.design_id} design={open.design} cancel={close} done={done} />
      )}
    </>
  );
}

/** A new version of `old`: its file hashed here, registered (fingerprint only) as derived
 * from `old`, then `old` marked superseded by it, once the designer has read what happens. */
function NewVersion(props: { old: Design; mine: Map<string, Design>; cancel: () => void; done: (notice: () => string) => void }) {
  const { old } = props;
  const [file, setFile] = useState<File | null>(null);
  const [hash, setHash] = useState<string | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function choose(files: File[]) {
    setError(null);
    setHash(null);
    const f = files[0] ?? null;
    setFile(f);
    if (!f) return;
    try {
      const digest = await hashFile(f, setProgress);
      setProgress(null);
      if (digest === old.design_id) setError(t("versions.same"));
      else setHash(digest);
    } catch (err) {
      setProgress(null);
      setError(explain(err));
    }
  }

  async function confirm() {
    if (!file || !hash) return;
    setBusy(true);
    setError(null);
    try {
      const known = props.mine.get(hash);
      if (!known) {
        await post<Certificate[]>("/designs/by-hash", {
          designs: [{ design_id: hash, title: file.name.slice(0, 500) }],
          parent_id: old.design_id,
        });
      }
      await post(`/designs/${old.design_id}/supersede`, { successor_id: hash });
      props.done(() => t("versions.done", { old: old.design_id, successor: hash }));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Panel id="new-version" title={t("versions.title", { name: nameOf(old) || old.design_id.slice(0, 10) })}>
      <p>
        <Hex value={old.design_id} />
      </p>
      <p>{t("versions.help")}</p>
      <FileField id="version-file" label={t("versions.file")} onFiles={choose} />
      {progress !== null && (
        <p>
          <label for="version-progress">{t("designs.hashing")}</label>{" "}
          <progress id="version-progress" max={1} value={progress} />
        </p>
      )}
      {hash && file && (
        <>
          <p class="confirm" data-testid="version-words">
            {t("versions.words", { file: file.name, hash, old: old.design_id })}
            {props.mine.has(hash) ? " " + t("versions.known") : ""}
          </p>
          <button type="button" disabled={busy} onClick={confirm}>
            {t("versions.confirm")}
          </button>{" "}
        </>
      )}
      <button type="button" class="secondary" onClick={props.cancel}>
        {t("relay.cancel")}
      </button>
      <ErrorMessage text={error} />
    </Panel>
  );
}

/** Revoking a design for good, said in words first: what stops, how many licences end. */
function Revoke(props: { design: Design; cancel: () => void; done: (notice: () => string) => void }) {
  const { design } = props;
  const licences = useLoad(() => get<Licence[]>(`/designs/${design.design_id}/licences`), [design.design_id]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const active = (licences.data ?? []).filter((l) => l.active).length;

  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await post(`/designs/${design.design_id}/revoke`);
      props.done(() => t("versions.revoked", { design: design.design_id }));
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Panel id="revoke-design" title={t("versions.revokeTitle", { name: nameOf(design) || design.design_id.slice(0, 10) })}>
      {licences.loading && !licences.data ? (
        <Loading />
      ) : (
        <p class="confirm" data-testid="revoke-words">
          {t("versions.revokeWords", { design: design.design_id, count: formatNumber(active) })}
        </p>
      )}
      <button type="button" class="danger" disabled={busy || licences.loading} onClick={confirm}>
        {t("versions.revokeConfirm")}
      </button>{" "}
      <button type="button" class="secondary" onClick={props.cancel}>
        {t("relay.cancel")}
      </button>
      <ErrorMessage text={error ?? licences.error} />
    </Panel>
  );
}

interface Licence {
  licensee: string;
  active: boolean;
  royalty_ppm: number;
  block_number: number | null;
}

interface Share {
  recipient: string;
  ciphertext_hash: string;
  block_number: number;
}

/** A design's licences (grant with a royalty, revoke) and its encrypted shares to
 * licensed members (the node encrypts the file it keeps to each one's published key). */
function Licences({ design }: { design: string }) {
  const data = useLoad(async () => {
    const [licences, shares, members] = await Promise.all([
      get<Licence[]>(`/designs/${design}/licences`),
      get<Share[]>(`/designs/${design}/shares`),
      get<Member[]>("/members"),
    ]);
    return { licences, shares, members: members.filter((m) => m.status === "active") };
  }, [design]);
  const action = useAction(data.reload);
  const [licensee, setLicensee] = useState("");
  const [royalty, setRoyalty] = useState("5");
  const [recipients, setRecipients] = useState<string[]>([]);
  const d = data.data;
  const licensed = (d?.licences ?? []).filter((l) => l.active);

  function grant(e: Event) {
    e.preventDefault();
    const ppm = Math.round(Number(royalty) * 10_000);
    if (!licensee) return action.setError(t("licences.pick"));
    if (!Number.isFinite(ppm) || ppm < 0 || ppm > 1_000_000) return action.setError(t("disputes.badPercent"));
    action.run(
      () => request("PUT", `/designs/${design}/licences/${licensee}`, { royalty_ppm: ppm }),
      t("licences.granted", { licensee, royalty: formatPpm(ppm) }),
    );
  }

  function share(e: Event) {
    e.preventDefault();
    if (recipients.length === 0) return action.setError(t("shares.pick"));
    action.run(() => post(`/designs/${design}/shares`, { recipients }), t("shares.done", { count: formatNumber(recipients.length) }));
    setRecipients([]);
  }

  return (
    <Section id="licences" title={t("licences.title")}>
      <p>
        <Hex value={design} />
      </p>
      {data.loading && !d && <Loading />}
      <Outcome notice={action.notice} error={action.error ?? data.error} />
      {d && (
        <>
          {d.licences.length === 0 ? (
            <p>{t("licences.none")}</p>
          ) : (
            <Table headers={[t("licences.licensee"), t("members.status"), t("order.royalty"), t("verify.block"), t("work.action")]}>
              {d.licences.map((l) => (
                <tr key={l.licensee} data-testid={`licence-${l.licensee}`}>
                  <td>
                    <Address value={l.licensee} />
                  </td>
                  <td>{t(l.active ? "licences.active" : "licences.revoked")}</td>
                  <td class="num">{l.active ? formatPpm(l.royalty_ppm) : "—"}</td>
                  <td class="num">{l.block_number ? formatNumber(l.block_number) : "—"}</td>
                  <td>
                    {l.active && (
                      <button
                        type="button"
                        class="secondary"
                        onClick={() => action.run(() => request("DELETE", `/designs/${design}/licences/${l.licensee}`), t("licences.revokedDone", { licensee: l.licensee }))}
                      >
                        {t("licences.revoke")}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </Table>
          )}
          <form onSubmit={grant}>
            <label for="licence-to">{t("licences.licensee")}</label>
            <select id="licence-to" value={licensee} onChange={(e) => setLicensee((e.currentTarget as HTMLSelectElement).value)}>
              <option value="">{t("licences.choose")}</option>
              {d.members.map((m) => (
                <option key={m.address} value={m.address}>
                  {m.address} ({m.roles.map((r) => label("role", r)).join(", ")})
                </option>
              ))}
            </select>
            <label for="licence-royalty">{t("licences.royalty")}</label>
            <input id="licence-royalty" type="number" min="0" max="100" step="0.0001" value={royalty} onInput={(e) => setRoyalty((e.currentTarget as HTMLInputElement).value)} />
            <button type="submit">{t("licences.grant")}</button>
          </form>
          <h3>{t("shares.title")}</h3>
          <p>{t("shares.intro")}</p>
          {d.shares.length > 0 && (
            <ul data-testid="shares">
              {d.shares.map((s) => (
                <li key={s.recipient}>
                  <Address value={s.recipient} /> · {t("shares.at", { block: formatNumber(s.block_number) })} · <Hex value={s.ciphertext_hash} />
                </li>
              ))}
            </ul>
          )}
          {licensed.length > 0 && (
            <form onSubmit={share}>
              <fieldset>
                <legend>{t("shares.to")}</legend>
                {licensed.map((l) => (
                  <span key={l.licensee} class="check">
                    <input
                      id={`share-${l.licensee}`}
                      type="checkbox"
                      checked={recipients.includes(l.licensee)}
                      onChange={() => setRecipients(recipients.includes(l.licensee) ? recipients.filter((x) => x !== l.licensee) : [...recipients, l.licensee])}
                    />
                    <label for={`share-${l.licensee}`}>{l.licensee}</label>
                  </span>
                ))}
              </fieldset>
              <button type="submit">{t("shares.button")}</button>
            </form>
          )}
        </>
      )}
    </Section>
  );
}
