// A factory's device keys: the shop-floor keys that sign its production steps. Each is
// authorised with the device key's own consent (an EIP-712 DeviceBinding signed in this
// page from the device's keystore file, or pasted from the device), revoked at once, and
// listed with its status (active, expired, revoked).
import { getAddress, isAddress, verifyTypedData } from "ethers";
import { useState } from "preact/hooks";
import { get, post, request, type TypedData } from "../api";
import { formatDate, formatNumber, label, t } from "../i18n";
import { currentSession } from "../session";
import { fromKeystore } from "../wallet";
import { Address, Field, FileField, Loading, Outcome, Section, Table, useAction, useLoad } from "../ui";

interface Device {
  address: string;
  owner: string;
  expires_at: number;
  active: boolean;
  authorized_at_block: number;
  status: string;
}

const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

function Authorise({ factory, done }: { factory: string; done: () => void }) {
  const [device, setDevice] = useState("");
  const [expiry, setExpiry] = useState("");
  const [typed, setTyped] = useState<TypedData | null>(null);
  const [keystore, setKeystore] = useState<File | null>(null);
  const [passphrase, setPassphrase] = useState("");
  const [pasted, setPasted] = useState("");
  const action = useAction(done);
  const expiresAt = expiry ? Math.floor(new Date(`${expiry}T23:59:59`).getTime() / 1000) : 0;

  async function prepare(e: Event) {
    e.preventDefault();
    setTyped(null);
    if (!isAddress(device.trim())) {
      action.setError(t("devices.badAddress"));
      return;
    }
    await action.run(async () => {
      const out = await get<{ typed_data: TypedData }>(
        `/devices/${getAddress(device.trim())}/binding?factory=${factory}&expires_at=${expiresAt}`,
      );
      setTyped(out.typed_data);
    });
  }

  /** The device key's consent: signed here from its keystore, or pasted from the device. */
  async function consent(data: TypedData): Promise<string> {
    if (keystore) {
      const key = await fromKeystore(await keystore.text(), passphrase, () => undefined).catch((err) => {
        console.warn("the keystore could not be opened:", err);
        throw new Error(t("signin.keystore.bad"));
      });
      setPassphrase("");
      return key.signTypedData(data);
    }
    if (!SIGNATURE.test(pasted.trim())) throw new Error(t("devices.needConsent"));
    return pasted.trim();
  }

  async function authorise() {
    if (!typed) return;
    const ok = await action.run(async () => {
      const signature = await consent(typed);
      const types = { ...typed.types };
      delete types.EIP712Domain;
      const signer = verifyTypedData(typed.domain, types, typed.message, signature);
      if (getAddress(signer) !== getAddress(String(typed.message.device))) {
        throw new Error(t("devices.wrongKey", { signer, device: String(typed.message.device) }));
      }
      await post("/devices", { device: typed.message.device, expires_at: expiresAt, signature });
    }, t("devices.authorised", { device: String(typed.message.device) }));
    if (ok) {
      setTyped(null);
      setDevice("");
      setKeystore(null);
      setPasted("");
    }
  }

  return (
    <Section id="authorise" title={t("devices.authorise")}>
      <form onSubmit={prepare}>
        <Field id="device-address" label={t("devices.address")} value={device} onValue={setDevice} />
        <Field id="device-expiry" label={t("devices.expiry")} type="date" value={expiry} onValue={setExpiry} />
        <button type="submit">{t("devices.prepare")}</button>
      </form>
      {typed && (
        <div class="panel">
          <p class="signing-words" data-testid="device-words">
            {t(expiresAt ? "devices.words" : "devices.wordsForever", {
              device: String(typed.message.device),
              factory,
              expiry: expiresAt ? formatDate(expiresAt) : "",
            })}
          </p>
          <FileField id="device-keystore" label={t("devices.keystore")} accept=".json,application/json" onFiles={(f) => setKeystore(f[0] ?? null)} />
          <label for="device-pass">{t("signin.keystore.passphrase")}</label>
          <input id="device-pass" type="password" autocomplete="off" value={passphrase} onInput={(e) => setPassphrase((e.currentTarget as HTMLInputElement).value)} />
          <Field id="device-signature" label={t("devices.pasted")} value={pasted} onValue={setPasted} />
          <button type="button" onClick={authorise}>
            {t("devices.authoriseButton")}
          </button>
        </div>
      )}
      <Outcome notice={action.notice} error={action.error} />
    </Section>
  );
}

export function Devices() {
  const session = currentSession()!;
  const factory = session.me.address;
  const list = useLoad(() => get<Device[]>(`/devices?factory=${factory}`), [factory]);
  const action = useAction(list.reload);
  return (
    <>
      <h1>{t("devices.title")}</h1>
      <p>{t("devices.intro")}</p>
      <Section id="devices" title={t("devices.mine")}>
        {list.loading && !list.data && <Loading />}
        <Outcome notice={action.notice} error={action.error ?? list.error} />
        {list.data && list.data.length === 0 && <p>{t("devices.none")}</p>}
        {list.data && list.data.length > 0 && (
          <Table headers={[t("devices.address"), t("members.status"), t("devices.expiry"), t("devices.since"), t("work.action")]}>
            {list.data.map((d) => (
              <tr key={d.address} data-testid={`device-${d.address}`}>
                <td>
                  <Address value={d.address} />
                </td>
                <td>{label("devices.status", d.status)}</td>
                <td>{d.expires_at ? formatDate(d.expires_at) : t("devices.never")}</td>
                <td class="num">{formatNumber(d.authorized_at_block)}</td>
                <td>
                  {d.status !== "revoked" && (
                    <button
                      type="button"
                      class="secondary"
                      onClick={() => action.run(() => request("DELETE", `/devices/${d.address}`), t("devices.revoked", { device: d.address }))}
                    >
                      {t("devices.revoke")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Section>
      <Authorise factory={factory} done={list.reload} />
    </>
  );
}
