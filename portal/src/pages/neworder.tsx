// The buyer's order wizard: the order (design, quantity, price, deadline), then its splits
// by process step across factories with their dependencies, shares checked live against
// 100 % less the designer's royalty and the platform fee; then create, fund and split.
import { isAddress, parseUnits } from "ethers";
import { useState } from "preact/hooks";
import { explain, get, post, type Job, type Member } from "../api";
import { formatAmount, formatPpm, t } from "../i18n";
import { currentSession } from "../session";
import { ErrorMessage, Loading, payConfig, Section, Status, useLoad } from "../ui";
import { hashFile } from "./verify";

interface Row {
  factory: string;
  step: string;
  quantity: string;
  percent: string;
  after: number[];
}

const HEX32 = /^(0x)?[0-9a-fA-F]{64}$/;
const emptyRow = (): Row => ({ factory: "", step: "", quantity: "", percent: "", after: [] });
const ppmOf = (percent: string) => Math.round(Number(percent || "0") * 10_000);

export function NewOrder() {
  const session = currentSession()!;
  const buyer = session.me.address;
  const setup = useLoad(async () => {
    const [config, members] = await Promise.all([
      payConfig(),
      get<Member[]>("/members"),
    ]);
    const factories = members.filter((m) => m.status === "active" && m.roles.includes("factory"));
    return { token: config.default_token!, fee: config.platform_fee_ppm, factories };
  }, []);
  const [design, setDesign] = useState("");
  const [quantity, setQuantity] = useState("100");
  const [price, setPrice] = useState("");
  const [deadline, setDeadline] = useState(() => new Date(Date.now() + 30 * 86400e3).toISOString().slice(0, 10));
  const [rows, setRows] = useState<Row[]>([emptyRow()]);
  const [royalty, setRoyalty] = useState<number | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function lookUpLicence(id: string) {
    setRoyalty(null);
    if (!HEX32.test(id)) return;
    try {
      const licence = await get<{ active: boolean; royalty_ppm: number }>(`/designs/${id}/licences/${buyer}`);
      setRoyalty(licence.active ? licence.royalty_ppm : null);
      if (!licence.active) setError(t("neworder.noLicence"));
      else setError(null);
    } catch (err) {
      setError(explain(err));
    }
  }

  async function designFromFile(file: File | null) {
    if (!file) return;
    const digest = await hashFile(file, () => undefined);
    setDesign(digest);
    await lookUpLicence(digest);
  }

  const update = (i: number, patch: Partial<Row>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const fee = setup.data?.fee ?? 0;
  const target = 1_000_000 - fee - (royalty ?? 0);
  const total = rows.reduce((n, r) => n + ppmOf(r.percent), 0);
  const token = setup.data?.token;
  let priceUnits: bigint | null = null;
  try {
    priceUnits = token && price ? parseUnits(price, token.decimals) : null;
  } catch {
    priceUnits = null;
  }

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    if (!HEX32.test(design) || royalty === null) return setError(t("neworder.needDesign"));
    if (!priceUnits || priceUnits <= 0n) return setError(t("neworder.needPrice"));
    if (rows.some((r) => !isAddress(r.factory) || !r.step.trim() || !(Number(r.quantity) > 0))) {
      return setError(t("neworder.needRows"));
    }
    if (total !== target) return setError(t("neworder.sharesOff", { total: formatPpm(total), target: formatPpm(target) }));
    setBusy(true);
    try {
      setStatus(t("neworder.creating"));
      const job = await post<Job>("/jobs", {
        design_id: design,
        quantity: BigInt(quantity),
        price: priceUnits,
        deadline: Math.floor(new Date(`${deadline}T23:59:59`).getTime() / 1000),
      });
      setStatus(t("neworder.funding", { id: job.id }));
      await post(`/jobs/${job.id}/fund`);
      setStatus(t("neworder.splitting", { id: job.id }));
      await post(`/jobs/${job.id}/splits`, {
        splits: rows.map((r) => ({
          factory: r.factory,
          step: r.step.trim(),
          quantity: BigInt(r.quantity),
          share_ppm: ppmOf(r.percent),
          depends_on: r.after,
        })),
      });
      location.hash = `#/orders/${job.id}`;
    } catch (err) {
      setStatus(null);
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  }

  if (setup.loading && !setup.data) return <Loading />;
  return (
    <>
      <h1>{t("neworder.title")}</h1>
      <ErrorMessage text={setup.error} />
      <form onSubmit={submit} class="wizard">
        <Section id="order" title={t("neworder.order")}>
          <label for="order-design">{t("neworder.design")}</label>
          <input
            id="order-design"
            type="text"
            spellcheck={false}
            value={design}
            onInput={(e) => setDesign((e.currentTarget as HTMLInputElement).value.trim())}
            onChange={(e) => lookUpLicence((e.currentTarget as HTMLInputElement).value.trim())}
          />
          <label for="order-design-file">{t("neworder.designFile")}</label>
          <input id="order-design-file" type="file" onChange={(e) => designFromFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)} />
          {royalty !== null && <p data-testid="royalty">{t("neworder.licensed", { royalty: formatPpm(royalty) })}</p>}
          <label for="order-quantity">{t("order.quantity")}</label>
          <input id="order-quantity" type="number" min="1" value={quantity} onInput={(e) => setQuantity((e.currentTarget as HTMLInputElement).value)} />
          <label for="order-price">{t("neworder.price", { symbol: token?.symbol ?? "" })}</label>
          <input id="order-price" type="text" inputMode="decimal" value={price} onInput={(e) => setPrice((e.currentTarget as HTMLInputElement).value.trim())} />
          <label for="order-deadline">{t("order.deadline")}</label>
          <input id="order-deadline" type="date" value={deadline} onInput={(e) => setDeadline((e.currentTarget as HTMLInputElement).value)} />
        </Section>
        <Section id="split-rows" title={t("order.splits")}>
          {rows.map((r, i) => (
            <fieldset key={i} class="split-row">
              <legend>{t("neworder.split", { n: i })}</legend>
              <label for={`row-${i}-factory`}>{t("order.factory")}</label>
              <select id={`row-${i}-factory`} value={r.factory} onChange={(e) => update(i, { factory: (e.currentTarget as HTMLSelectElement).value })}>
                <option value="">{t("neworder.chooseFactory")}</option>
                {setup.data?.factories.map((f) => (
                  <option key={f.address} value={f.address}>
                    {f.address}
                  </option>
                ))}
              </select>
              <label for={`row-${i}-step`}>{t("work.step")}</label>
              <input id={`row-${i}-step`} type="text" maxLength={32} value={r.step} onInput={(e) => update(i, { step: (e.currentTarget as HTMLInputElement).value })} />
              <label for={`row-${i}-quantity`}>{t("work.quantity")}</label>
              <input id={`row-${i}-quantity`} type="number" min="1" value={r.quantity} onInput={(e) => update(i, { quantity: (e.currentTarget as HTMLInputElement).value })} />
              <label for={`row-${i}-share`}>{t("neworder.share")}</label>
              <input id={`row-${i}-share`} type="number" min="0" max="100" step="0.0001" value={r.percent} onInput={(e) => update(i, { percent: (e.currentTarget as HTMLInputElement).value })} />
              {priceUnits && token && r.percent && <span class="small">{formatAmount((priceUnits * BigInt(ppmOf(r.percent))) / 1_000_000n, token)}</span>}
              {i > 0 && (
                <span class="after">
                  {t("neworder.after")}{" "}
                  {rows.slice(0, i).map((_, j) => (
                    <span key={j} class="check">
                      <input
                        id={`row-${i}-after-${j}`}
                        type="checkbox"
                        checked={r.after.includes(j)}
                        onChange={() => update(i, { after: r.after.includes(j) ? r.after.filter((x) => x !== j) : [...r.after, j] })}
                      />
                      <label for={`row-${i}-after-${j}`}>{t("neworder.afterSplit", { n: j })}</label>
                    </span>
                  ))}
                </span>
              )}
              {rows.length > 1 && (
                <button type="button" class="secondary" onClick={() => setRows(rows.filter((_, j) => j !== i).map((x) => ({ ...x, after: x.after.filter((a) => a !== i).map((a) => (a > i ? a - 1 : a)) })))}>
                  {t("neworder.remove", { n: i })}
                </button>
              )}
            </fieldset>
          ))}
          <button type="button" class="secondary" onClick={() => setRows([...rows, emptyRow()])}>
            {t("neworder.add")}
          </button>
          <p data-testid="shares" class={total === target ? "sum ok" : "sum bad"} aria-live="polite">
            {t("neworder.sum", {
              total: formatPpm(total),
              royalty: formatPpm(royalty ?? 0),
              fee: formatPpm(fee),
              all: formatPpm(total + fee + (royalty ?? 0)),
            })}
          </p>
        </Section>
        <button type="submit" disabled={busy}>
          {t("neworder.submit")}
        </button>
      </form>
      <Status text={status} />
      <ErrorMessage text={error} />
    </>
  );
}
