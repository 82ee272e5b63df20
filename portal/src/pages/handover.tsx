// Hand-overs between two factories of an order, both consents signed in the browser: the
// giving factory signs and passes a hand-over code to the receiving one, which reads it in
// words, signs its side and submits both signatures.
import { decodeBytes32String } from "ethers";
import { useState } from "preact/hooks";
import { explain, post, type Job, type TypedData } from "../api";
import { formatDate, formatNumber, t } from "../i18n";
import type { Session } from "../session";
import { ErrorMessage, Section, Status } from "../ui";

interface Code {
  job: number;
  from_split: number;
  to_split: number;
  lot: string;
  quantity: number;
  deadline: number;
  from_signature: string;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function lotName(lot: string): string {
  try {
    return decodeBytes32String(lot);
  } catch {
    return lot;
  }
}

/** The hand-over in words, from the typed data the node built (what is really signed). */
function Words({ job, data, giving }: { job: Job; data: TypedData; giving: boolean }) {
  const m = data.message;
  const from = job.splits[Number(m.fromSplit)];
  const to = job.splits[Number(m.toSplit)];
  return (
    <>
      <p class="signing-words" data-testid="handover-words">
        {t(giving ? "handover.giveWords" : "handover.takeWords", {
          quantity: formatNumber(Number(m.quantity)),
          lot: lotName(String(m.lot)),
          from: from.id,
          fromStep: from.step,
          to: to.id,
          toStep: to.step,
          job: job.id,
          other: giving ? to.factory : from.factory,
        })}
      </p>
      <p>{t("accept.valid", { deadline: formatDate(Number(m.deadline)) })}</p>
    </>
  );
}

function Give({ job, session }: { job: Job; session: Session }) {
  const me = session.me.address;
  const pairs = job.splits.flatMap((to) =>
    to.depends_on.map((from) => ({ from, to: to.id })).filter((p) => same(job.splits[p.from].factory, me)),
  );
  const [pair, setPair] = useState(0);
  const [lot, setLot] = useState("");
  const [quantity, setQuantity] = useState("");
  const [typed, setTyped] = useState<TypedData | null>(null);
  const [code, setCode] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (pairs.length === 0) return null;
  const chosen = pairs[pair];

  async function review(e: Event) {
    e.preventDefault();
    setError(null);
    setCode(null);
    try {
      setTyped(
        await post<TypedData>(`/jobs/${job.id}/handover/typed-data`, {
          from_split: chosen.from,
          to_split: chosen.to,
          lot: lot.trim(),
          quantity: BigInt(quantity || "0"),
          deadline: Math.floor(Date.now() / 1000) + 86400,
        }),
      );
    } catch (err) {
      setError(explain(err));
    }
  }

  async function sign() {
    if (!typed) return;
    setError(null);
    try {
      const signature = await session.signer.signTypedData(typed);
      const m = typed.message;
      const out: Code = {
        job: job.id,
        from_split: Number(m.fromSplit),
        to_split: Number(m.toSplit),
        lot: String(m.lot),
        quantity: Number(m.quantity),
        deadline: Number(m.deadline),
        from_signature: signature,
      };
      setCode(JSON.stringify(out));
    } catch (err) {
      setError(explain(err));
    }
  }

  return (
    <div>
      <h3>{t("handover.give")}</h3>
      <form onSubmit={review}>
        <label for="handover-pair">{t("handover.pair")}</label>
        <select id="handover-pair" value={pair} onChange={(e) => setPair(Number((e.currentTarget as HTMLSelectElement).value))}>
          {pairs.map((p, i) => (
            <option key={i} value={i}>
              {t("handover.pairIs", { from: p.from, fromStep: job.splits[p.from].step, to: p.to, toStep: job.splits[p.to].step })}
            </option>
          ))}
        </select>
        <label for="handover-lot">{t("handover.lot")}</label>
        <input id="handover-lot" type="text" maxLength={32} value={lot} onInput={(e) => setLot((e.currentTarget as HTMLInputElement).value)} />
        <label for="handover-quantity">{t("work.quantity")}</label>
        <input id="handover-quantity" type="number" min="1" value={quantity} onInput={(e) => setQuantity((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit">{t("handover.review")}</button>
      </form>
      {typed && !code && (
        <div class="panel">
          <Words job={job} data={typed} giving />
          <button type="button" onClick={sign}>
            {t("handover.sign")}
          </button>
        </div>
      )}
      {code && (
        <div class="panel">
          <label for="handover-code-out">{t("handover.codeOut")}</label>
          <textarea id="handover-code-out" readOnly rows={4} value={code} />
        </div>
      )}
      <ErrorMessage text={error} />
    </div>
  );
}

function Take({ job, session, done }: { job: Job; session: Session; done: () => void }) {
  const me = session.me.address;
  const [text, setText] = useState("");
  const [code, setCode] = useState<Code | null>(null);
  const [typed, setTyped] = useState<TypedData | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!job.splits.some((s) => s.depends_on.length > 0 && same(s.factory, me))) return null;

  async function read(e: Event) {
    e.preventDefault();
    setError(null);
    setTyped(null);
    try {
      const c = JSON.parse(text) as Code;
      if (c.job !== job.id || !job.splits[c.to_split] || !same(job.splits[c.to_split].factory, me)) {
        throw new Error(t("handover.notForYou"));
      }
      const data = await post<TypedData>(`/jobs/${job.id}/handover/typed-data`, {
        from_split: c.from_split,
        to_split: c.to_split,
        lot: c.lot,
        quantity: BigInt(c.quantity),
        deadline: BigInt(c.deadline),
      });
      setCode(c);
      setTyped(data);
    } catch (err) {
      setError(err instanceof SyntaxError ? t("handover.badCode") : explain(err));
    }
  }

  async function sign() {
    if (!typed || !code) return;
    setError(null);
    try {
      const signature = await session.signer.signTypedData(typed);
      await post(`/jobs/${job.id}/handover`, {
        from_split: code.from_split,
        to_split: code.to_split,
        lot: code.lot,
        quantity: BigInt(code.quantity),
        deadline: BigInt(code.deadline),
        from_signature: code.from_signature,
        to_signature: signature,
      });
      setStatus(t("handover.done", { from: code.from_split, to: code.to_split }));
      setTyped(null);
      setText("");
      done();
    } catch (err) {
      setError(explain(err));
    }
  }

  return (
    <div>
      <h3>{t("handover.take")}</h3>
      <form onSubmit={read}>
        <label for="handover-code-in">{t("handover.codeIn")}</label>
        <textarea id="handover-code-in" rows={4} value={text} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
        <button type="submit">{t("handover.read")}</button>
      </form>
      {typed && (
        <div class="panel">
          <Words job={job} data={typed} giving={false} />
          <button type="button" onClick={sign}>
            {t("handover.signSubmit")}
          </button>
        </div>
      )}
      <Status text={status} />
      <ErrorMessage text={error} />
    </div>
  );
}

export function Handovers({ job, session, done }: { job: Job; session: Session; done: () => void }) {
  const me = session.me.address;
  const involved = job.splits.some((s) => s.depends_on.length > 0 && (same(s.factory, me) || s.depends_on.some((d) => same(job.splits[d].factory, me))));
  if (!involved || job.status !== "in_production") return null;
  return (
    <Section id="handovers" title={t("handover.title")}>
      <p>{t("handover.intro")}</p>
      <Give job={job} session={session} />
      <Take job={job} session={session} done={done} />
    </Section>
  );
}
