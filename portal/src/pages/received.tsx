// Designs shared with the signed-in member, encrypted to its published key: listed from the
// chain (read here), the encrypted package fetched from the designer's node, imported into
// the member's own node (which checks it against the hashes the chain records) and
// decrypted there; the decrypted file is hashed here and must be the design itself.
import { getAddress } from "ethers";
import { useState } from "preact/hooks";
import { explain, get, getBytes, post } from "../api";
import { formatNumber, t } from "../i18n";
import { currentSession } from "../session";
import { download, ErrorMessage, FileField, Hex, Loading, Outcome, Section, Status, Table, useAction, useLoad } from "../ui";
import { Chain, hashFile } from "./verify";

interface Received {
  design_id: string;
  designer: string;
  block_number: number;
  ciphertext_hash: string;
  licensed: boolean;
}

/** Every design shared with `me`, its latest share and whether its licence still holds. */
async function receivedBy(me: string): Promise<Received[]> {
  const chain = await Chain.open();
  const registry = chain.contract("DesignRegistry");
  const logs = (await chain.logs(registry, registry.filters.DesignShared(null, me))) as { args?: { designId: string } }[];
  const ids = [...new Set(logs.map((l) => String(l.args?.designId)))];
  return Promise.all(
    ids.map(async (id) => {
      const share = (await registry.shareOf(id, me)) as { ciphertextHash: string; blockNumber: bigint };
      const [licensed, designer] = (await registry.licenceOf(id, me)) as [boolean, string, bigint];
      return {
        design_id: id,
        designer: getAddress(designer),
        block_number: Number(share.blockNumber),
        ciphertext_hash: share.ciphertextHash,
        licensed,
      };
    }),
  );
}

const short = (id: string) => id.slice(2, 14);

export function ReceivedPage() {
  const me = currentSession()!.me.address;
  const list = useLoad(() => receivedBy(me), [me]);
  const action = useAction();
  const [verified, setVerified] = useState<string | null>(null);

  async function fetchPackage(id: string) {
    const pkg = await get<unknown>(`/designs/${id}/share`);
    download(`${short(id)}.share.json`, JSON.stringify(pkg, null, 2) + "\n");
  }

  async function decrypt(id: string) {
    setVerified(null);
    const bytes = await getBytes(`/designs/${id}/file`);
    const file = new File([bytes], `${short(id)}.design`, { type: "application/octet-stream" });
    if ((await hashFile(file, () => {})) !== id.toLowerCase()) throw new Error(t("received.mismatch"));
    setVerified(id);
    download(file.name, file);
  }

  return (
    <>
      <h1>{t("received.title")}</h1>
      <p>{t("received.intro")}</p>
      <Section id="received" title={t("received.list")}>
        <Outcome notice={action.notice} error={action.error ?? list.error} />
        {verified && (
          <p class="verdict ok" data-testid="decrypted">
            ✔ {t("received.verified", { design: verified })}
          </p>
        )}
        {list.loading && !list.data && <Loading />}
        {list.data && list.data.length === 0 && <p>{t("received.none")}</p>}
        {list.data && list.data.length > 0 && (
          <Table headers={[t("order.design"), t("order.designer"), t("verify.block"), t("members.status"), t("work.action")]}>
            {list.data.map((r) => (
              <tr key={r.design_id} data-testid={`received-${r.design_id}`}>
                <td>
                  <Hex value={r.design_id} />
                </td>
                <td>
                  <Hex value={r.designer} />
                </td>
                <td class="num">{formatNumber(r.block_number)}</td>
                <td>{t(r.licensed ? "licences.active" : "licences.revoked")}</td>
                <td class="actions">
                  <button type="button" class="secondary" onClick={() => action.run(() => fetchPackage(r.design_id))}>
                    {t("received.package")}
                  </button>
                  <button type="button" onClick={() => action.run(() => decrypt(r.design_id))}>
                    {t("received.decrypt")}
                  </button>
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Section>
      <Import imported={list.reload} />
    </>
  );
}

/** A package from the designer's node, kept by this node once it matches the chain. */
function Import({ imported }: { imported: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function send(e: Event) {
    e.preventDefault();
    setStatus(null);
    setError(null);
    if (!file) return setError(t("received.pick"));
    let pkg: { design_id?: string };
    try {
      pkg = JSON.parse(await file.text()) as { design_id?: string };
    } catch {
      return setError(t("received.notJson"));
    }
    try {
      const share = await post<{ design_id: string }>("/designs/shares/import", pkg);
      setStatus(t("received.imported", { design: share.design_id }));
      imported();
    } catch (err) {
      setError(explain(err));
    }
  }

  return (
    <Section id="import" title={t("received.import")}>
      <p>{t("received.importHelp")}</p>
      <form onSubmit={send}>
        <FileField id="share-package" label={t("received.file")} accept=".json,application/json" onFiles={(f) => setFile(f[0] ?? null)} />
        <button type="submit">{t("received.importButton")}</button>
      </form>
      <Status text={status} />
      <ErrorMessage text={error} />
    </Section>
  );
}
