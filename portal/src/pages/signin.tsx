import { useState } from "preact/hooks";
import { explain } from "../api";
import { t } from "../i18n";
import { signIn } from "../session";
import { ErrorMessage, Section, Status } from "../ui";
import { browserWallet, fromKeystore, fromWallet } from "../wallet";

export function SignIn() {
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const provider = browserWallet();

  async function run(makeSigner: () => Promise<Parameters<typeof signIn>[0]>) {
    setBusy(true);
    setError(null);
    try {
      const signer = await makeSigner();
      setStatus(t("signin.signing"));
      const s = await signIn(signer);
      setStatus(t("signin.done", { address: s.me.address }));
      // each role sees its own work first
      const roles = s.me.roles;
      location.hash = roles.includes("factory")
        ? "#/work"
        : roles.includes("designer")
          ? "#/designs"
          : roles.includes("auditor")
            ? "#/disputes"
            : roles.includes("council")
              ? "#/council"
              : "#/orders";
    } catch (err) {
      setStatus(null);
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  }

  async function openKeystore(e: Event) {
    e.preventDefault();
    // the fields are read from the form and never held in state: a re-render can then never
    // put back a stale value (a click right after typing, a password manager that fills
    // without input events)
    const fields = (e.currentTarget as HTMLFormElement).elements;
    const file = (fields.namedItem("keystore-file") as HTMLInputElement).files?.[0];
    const pass = fields.namedItem("keystore-pass") as HTMLInputElement;
    const secret = pass.value;
    if (!file) {
      setError(t("signin.keystore.pick"));
      return;
    }
    const json = await file.text();
    await run(async () => {
      try {
        return await fromKeystore(json, secret, (f) =>
          setStatus(t("signin.keystore.decrypting", { percent: `${Math.round(f * 100)} %` })),
        );
      } catch (err) {
        console.warn("the keystore could not be opened:", String(err));
        throw new Error(t("signin.keystore.bad"));
      } finally {
        pass.value = "";
      }
    });
  }

  return (
    <>
      <h1>{t("signin.title")}</h1>
      <p>{t("signin.intro")}</p>
      <Section id="wallet" title={t("signin.wallet.title")}>
        {provider ? (
          <button type="button" disabled={busy} onClick={() => run(() => fromWallet(provider))}>
            {t("signin.wallet.button")}
          </button>
        ) : (
          <p>{t("signin.wallet.missing")}</p>
        )}
      </Section>
      <Section id="keystore" title={t("signin.keystore.title")}>
        <p>{t("signin.keystore.help")}</p>
        <form onSubmit={openKeystore}>
          <label for="keystore-file">{t("signin.keystore.file")}</label>
          <input
            id="keystore-file"
            type="file"
            accept=".json,application/json"
          />
          <label for="keystore-pass">{t("signin.keystore.passphrase")}</label>
          <input
            id="keystore-pass"
            type="password"
            autocomplete="current-password"
          />
          <button type="submit" disabled={busy}>
            {t("signin.keystore.button")}
          </button>
        </form>
      </Section>
      <Status text={status} />
      <ErrorMessage text={error} />
    </>
  );
}
