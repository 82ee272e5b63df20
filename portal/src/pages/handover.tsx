// Hand-overs between two factories of an order, both consents signed in the browser:
// either factory proposes the hand-over and signs its side, which waits in the other
// factory's inbox (on its order page and on #/inbox); that factory reads it in words,
// signs its side and submits both signatures. One signature alone changes nothing.
import { decodeBytes32String } from "ethers";
import { useState } from "preact/hooks";
import { get, post, type Job, type TypedData } from "../api";
import { formatDate, formatNumber, t } from "../i18n";
import { currentSession, type Session } from "../session";
import { Address, Field, Loading, Outcome, Section, sameAddress, useAction, useLoad } from "../ui";

export interface Pending {
  id: string;
  job_id: number;
  from_split: number;
  to_split: number;
  lot: string;
  quantity: number;
  deadline: number;
  signed_side: "from" | "to";
  signer: string;
  signature: string;
  waiting_for: string;
}

interface Inbox {
  waiting: Pending[];
  sent: Pending[];
}

function lotName(lot: string): string {
  try {
    return decodeBytes32String(lot);
  } catch {
    return lot;
  }
}

const body = (p: { from_split: number; to_split: number; lot: string; quantity: number | bigint; deadline: number | bigint }) => ({
  from_split: p.from_split,
  to_split: p.to_split,
  lot: p.lot,
  quantity: BigInt(p.quantity),
  deadline: BigInt(p.deadline),
});

/** The hand-over in words, from the typed data the node built (what is really signed),
 * for the factory of side `mine`. */
function Words({ job, data, mine }: { job: Job; data: TypedData; mine: "from" | "to" }) {
  const m = data.message;
  const from = job.splits[Number(m.fromSplit)];
  const to = job.splits[Number(m.toSplit)];
  return (
    <>
      <p class="signing-words" data-testid="handover-words">
        {t(mine === "from" ? "handover.giveWords" : "handover.takeWords", {
          quantity: formatNumber(Number(m.quantity)),
          lot: lotName(String(m.lot)),
          from: from.id,
          fromStep: from.step,
          to: to.id,
          toStep: to.step,
          job: job.id,
          other: mine === "from" ? to.factory : from.factory,
        })}
      </p>
      <p>{t("accept.valid", { deadline: formatDate(Number(m.deadline)) })}</p>
    </>
  );
}

/** Either factory of a dependency proposes a hand-over and signs its own side. */
function Propose({ job, session, sent }: { job: Job; session: Session; sent: () => void }) {
  const me = session.me.address;
  const pairs = job.splits.flatMap((to) =>
    to.depends_on
      .map((from) => ({ from, to: to.id }))
      .filter((p) => sameAddress(job.splits[p.from].factory, me) || sameAddress(to.factory, me)),
  );
  const [pair, setPair] = useState(0);
  const [lot, setLot] = useState("");
  const [quantity, setQuantity] = useState("");
  const [typed, setTyped] = useState<TypedData | null>(null);
  const action = useAction();
  if (pairs.length === 0) return null;
  const chosen = pairs[pair];
  const side = sameAddress(job.splits[chosen.from].factory, me) ? "from" : "to";

  async function review(e: Event) {
    e.preventDefault();
    setTyped(null);
    await action.run(async () => {
      const deadline = Math.floor(Date.now() / 1000) + 86400;
      const record = { from_split: chosen.from, to_split: chosen.to, lot: lot.trim(), quantity: BigInt(quantity || "0"), deadline };
      setTyped(await post<TypedData>(`/jobs/${job.id}/handover/typed-data`, body(record)));
    });
  }

  async function sign() {
    if (!typed) return;
    const m = typed.message;
    const ok = await action.run(async () => {
      const signature = await session.signer.signTypedData(typed);
      const record = {
        from_split: Number(m.fromSplit),
        to_split: Number(m.toSplit),
        lot: String(m.lot),
        quantity: BigInt(String(m.quantity)),
        deadline: BigInt(String(m.deadline)),
      };
      await post(`/jobs/${job.id}/handover/pending`, {
        ...body(record),
        [side === "from" ? "from_signature" : "to_signature"]: signature,
      });
    }, t("handover.posted", { other: side === "from" ? job.splits[Number(m.toSplit)].factory : job.splits[Number(m.fromSplit)].factory }));
    if (ok) {
      setTyped(null);
      setLot("");
      setQuantity("");
      sent();
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
        <Field id="handover-lot" label={t("handover.lot")} maxLength={32} value={lot} onValue={setLot} />
        <Field id="handover-quantity" label={t("work.quantity")} type="number" min="1" value={quantity} onValue={setQuantity} />
        <button type="submit">{t("handover.review")}</button>
      </form>
      {typed && (
        <div class="panel">
          <Words job={job} data={typed} mine={side} />
          <button type="button" onClick={sign}>
            {t("handover.sign")}
          </button>
        </div>
      )}
      <Outcome notice={action.notice} error={action.error} />
    </div>
  );
}

/** One hand-over waiting for my signature: read in words, signed, both submitted. */
function Complete({ job, item, session, done }: { job: Job; item: Pending; session: Session; done: (text: string) => void }) {
  const mine = item.signed_side === "from" ? "to" : "from";
  const [typed, setTyped] = useState<TypedData | null>(null);
  const action = useAction();
  async function read() {
    await action.run(async () => setTyped(await post<TypedData>(`/jobs/${job.id}/handover/typed-data`, body(item))));
  }
  async function sign() {
    if (!typed) return;
    const ok = await action.run(async () => {
      const signature = await session.signer.signTypedData(typed);
      await post(`/jobs/${job.id}/handover`, {
        ...body(item),
        from_signature: mine === "from" ? signature : item.signature,
        to_signature: mine === "to" ? signature : item.signature,
      });
    });
    if (ok) done(t("handover.done", { from: item.from_split, to: item.to_split }));
  }
  return (
    <li data-testid={`pending-${job.id}-${item.from_split}-${item.to_split}`}>
      {t("handover.pendingIs", {
        job: job.id,
        quantity: formatNumber(item.quantity),
        lot: lotName(item.lot),
        from: item.from_split,
        to: item.to_split,
      })}{" "}
      <Address value={item.signer} />{" "}
      {!typed && (
        <button type="button" onClick={read}>
          {t("handover.read")}
        </button>
      )}
      {typed && (
        <div class="panel">
          <Words job={job} data={typed} mine={mine} />
          <button type="button" onClick={sign}>
            {t("handover.signSubmit")}
          </button>
        </div>
      )}
      <Outcome notice={action.notice} error={action.error} />
    </li>
  );
}

/** The hand-overs of `jobs` waiting for the signed-in factory, and those it signed. */
export function PendingList(props: { jobs: Job[]; inbox: Inbox; session: Session; done: () => void }) {
  const action = useAction();
  const byId = new Map(props.jobs.map((j) => [j.id, j]));
  const waiting = props.inbox.waiting.filter((p) => byId.has(p.job_id));
  const sent = props.inbox.sent.filter((p) => byId.has(p.job_id));
  return (
    <>
      <h3>{t("handover.waiting")}</h3>
      <Outcome notice={action.notice} error={null} />
      {waiting.length === 0 ? (
        <p>{t("handover.noneWaiting")}</p>
      ) : (
        <ul class="inbox">
          {waiting.map((p) => (
            <Complete
              key={p.id}
              job={byId.get(p.job_id)!}
              item={p}
              session={props.session}
              done={(text) => {
                action.setNotice(text);
                props.done();
              }}
            />
          ))}
        </ul>
      )}
      {sent.length > 0 && (
        <>
          <h3>{t("handover.sent")}</h3>
          <ul>
            {sent.map((p) => (
              <li key={p.id}>
                {t("handover.pendingIs", { job: p.job_id, quantity: formatNumber(p.quantity), lot: lotName(p.lot), from: p.from_split, to: p.to_split })}{" "}
                {t("handover.waitingFor")} <Address value={p.waiting_for} />
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}

/** On an order's page: propose a hand-over, and the ones of this order waiting. */
export function Handovers({ job, session, done }: { job: Job; session: Session; done: () => void }) {
  const me = session.me.address;
  const inbox = useLoad(() => get<Inbox>("/handovers/inbox"), [job.id, me]);
  const involved = job.splits.some(
    (s) => s.depends_on.length > 0 && (sameAddress(s.factory, me) || s.depends_on.some((d) => sameAddress(job.splits[d].factory, me))),
  );
  if (!involved || job.status !== "in_production") return null;
  const refresh = () => {
    inbox.reload();
    done();
  };
  return (
    <Section id="handovers" title={t("handover.title")}>
      <p>{t("handover.intro")}</p>
      <Propose job={job} session={session} sent={inbox.reload} />
      {inbox.loading && !inbox.data && <Loading />}
      {inbox.data && <PendingList jobs={[job]} inbox={inbox.data} session={session} done={refresh} />}
    </Section>
  );
}

/** #/inbox: every hand-over waiting for my signature, from either side, on any order. */
export function InboxPage() {
  const session = currentSession()!;
  const data = useLoad(async () => {
    const inbox = await get<Inbox>("/handovers/inbox");
    const ids = [...new Set([...inbox.waiting, ...inbox.sent].map((p) => p.job_id))];
    const jobs = await Promise.all(ids.map((id) => get<Job>(`/jobs/${id}`)));
    return { inbox, jobs };
  }, [session.me.address]);
  return (
    <>
      <h1>{t("inbox.title")}</h1>
      <p>{t("inbox.intro")}</p>
      {data.loading && !data.data && <Loading />}
      <Outcome notice={null} error={data.error} />
      {data.data && <PendingList jobs={data.data.jobs} inbox={data.data.inbox} session={session} done={data.reload} />}
    </>
  );
}
