// Orders: the list, and one order's splits, dependencies, custody and money.
import { useState } from "preact/hooks";
import { useState as useLocalState } from "preact/hooks";
import { get, post, type Job, type JobSummary, type Split, type Token } from "../api";
import { formatAmount, formatDate, formatNumber, formatPpm, label, t } from "../i18n";
import { useSession, type Session } from "../session";
import { Handovers } from "./handover";
import { hashFile } from "./verify";
import {
  Address,
  Countdown,
  ErrorMessage,
  Facts,
  Field,
  FileField,
  Hex,
  Loading,
  Outcome,
  payConfig,
  sameAddress as same,
  Section,
  Table,
  useAction,
  useLoad,
} from "../ui";

export function Orders() {
  const session = useSession();
  const [mine, setMine] = useState(false);
  const party = mine && session ? `?party=${session.me.address}` : "";
  const list = useLoad(
    async () => {
      const [jobs, config] = await Promise.all([
        get<JobSummary[]>(`/jobs${party}`),
        payConfig(),
      ]);
      return { jobs, token: config.default_token };
    },
    [party],
  );
  const tokenOf = (address: string): Token | null =>
    list.data?.token && list.data.token.address.toLowerCase() === address.toLowerCase()
      ? list.data.token
      : null;

  return (
    <>
      <h1>{t("orders.title")}</h1>
      {session && (
        <p>
          <input id="only-mine" type="checkbox" checked={mine} onChange={() => setMine(!mine)} />{" "}
          <label for="only-mine">{t("orders.mine")}</label>
        </p>
      )}
      {list.loading && !list.data && <Loading />}
      <ErrorMessage text={list.error} />
      {list.data && list.data.jobs.length === 0 && <p>{t("orders.none")}</p>}
      {list.data && list.data.jobs.length > 0 && (
        <Table
          headers={[
            t("orders.id"),
            t("orders.status"),
            t("orders.buyer"),
            t("orders.price"),
            t("orders.splits"),
            t("orders.deadline"),
          ]}
        >
              {list.data.jobs.map((j) => {
                const token = tokenOf(j.token);
                return (
                  <tr key={j.id}>
                    <td>
                      <a href={`#/orders/${j.id}`}>{t("order.title", { id: j.id })}</a>
                    </td>
                    <td>{label("job.status", j.status)}</td>
                    <td>
                      <Address value={j.buyer} />
                    </td>
                    <td class="num">{token ? formatAmount(j.price, token) : formatNumber(j.price)}</td>
                    <td class="num">{formatNumber(j.split_count)}</td>
                    <td>{formatDate(j.deadline)}</td>
                  </tr>
                );
              })}
</Table>
      )}
    </>
  );
}

/** The API names a payout's purpose in English words: say it in the reader's language. */
function payoutRole(role: string): string {
  const m = /^factory of split (\d+) \((.*)\)$/.exec(role);
  if (m) return t("payout.role.factory", { split: m[1], step: m[2] });
  return label("payout.role", role.replace(/ /g, "_"));
}

function Graph({ job }: { job: Job }) {
  const edges = job.splits.flatMap((s) => s.depends_on.map((from) => ({ from, to: s.id })));
  const stepOf = (id: number) => job.splits.find((s) => s.id === id)?.step ?? "";
  if (edges.length === 0) return <p>{t("order.graph.none")}</p>;
  // splits in columns by depth: a split sits one column right of everything it waits for
  const depth = new Map<number, number>();
  const depthOf = (id: number): number => {
    if (!depth.has(id)) {
      const s = job.splits.find((x) => x.id === id);
      depth.set(id, s && s.depends_on.length ? 1 + Math.max(...s.depends_on.map(depthOf)) : 0);
    }
    return depth.get(id)!;
  };
  const rowsAt = new Map<number, number>();
  const pos = new Map<number, { x: number; y: number }>();
  for (const s of job.splits) {
    const d = depthOf(s.id);
    const r = rowsAt.get(d) ?? 0;
    rowsAt.set(d, r + 1);
    pos.set(s.id, { x: 10 + d * 190, y: 10 + r * 56 });
  }
  const width = 10 + (Math.max(...depth.values()) + 1) * 190;
  const height = 10 + Math.max(...rowsAt.values()) * 56;
  return (
    <>
      <svg class="graph" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-labelledby="graph-desc">
        {edges.map((e) => {
          const a = pos.get(e.from)!;
          const b = pos.get(e.to)!;
          return <line key={`${e.from}-${e.to}`} x1={a.x + 160} y1={a.y + 20} x2={b.x} y2={b.y + 20} class="edge" />;
        })}
        {job.splits.map((s) => {
          const p = pos.get(s.id)!;
          return (
            <g key={s.id} transform={`translate(${p.x},${p.y})`}>
              <rect width="160" height="40" rx="6" class={`node ${s.status}`} />
              <text x="8" y="25">
                {s.id}: {s.step.slice(0, 18)}
              </text>
            </g>
          );
        })}
      </svg>
      <ul id="graph-desc">
        {edges.map((e) => (
          <li key={`${e.from}-${e.to}`}>
            {t("order.graph.edge", { from: e.from, to: e.to, fromStep: stepOf(e.from), toStep: stepOf(e.to) })}
          </li>
        ))}
      </ul>
    </>
  );
}

/** The review window of a delivered split: when it ends, and how long is left. */
function Review({ split }: { split: Split }) {
  if (split.status !== "delivered" || !split.review_ends) return null;
  const left = split.review_ends - Date.now() / 1000;
  return (
    <span class="small review">
      {left > 0 ? (
        <>
          {t("order.reviewLeft", { time: formatDate(split.review_ends), days: formatNumber(Math.ceil(left / 86400)) })}{" "}
          {t("order.reviewCountdown")} <Countdown until={split.review_ends} />
        </>
      ) : (
        t("order.reviewOver", { time: formatDate(split.review_ends) })
      )}
    </span>
  );
}

interface Timeline {
  split_id: number;
  anchored_through: number;
  anchors: number;
  steps: { record: { seq: number; bizStep: string; time: number; member: string }; signer: string; anchored: boolean }[];
}

const anchorText = (block: number | undefined) =>
  block === undefined ? t("steps.anchored") : t("steps.anchoredAt", { block: formatNumber(block) });

/** Each split's production steps as the node journaled them, and the block of the anchor
 * that holds each one (or pending). */
function Steps({ job }: { job: Job }) {
  const timelines = useLoad(async () => {
    const [lines, events] = await Promise.all([
      Promise.all(job.splits.map((s) => get<Timeline>(`/jobs/${job.id}/splits/${s.id}/steps`))),
      get<ChainEvent[]>(`/jobs/${job.id}/events`),
    ]);
    return { lines, anchors: events.filter((e) => e.event === "StepsAnchored") };
  }, [job.id, job.splits.length]);
  /** The block of the anchor that holds step `seq` of split `split`. */
  const anchoredAt = (split: number, seq: number) =>
    timelines.data?.anchors.find(
      (e) => Number(e.args.splitId) === split && Number(e.args.fromSeq) <= seq && seq <= Number(e.args.toSeq),
    )?.block;
  if (timelines.loading && !timelines.data) return <Loading />;
  if (timelines.error) return <ErrorMessage text={timelines.error} />;
  return (
    <>
      {(timelines.data?.lines ?? []).map((tl) => {
        const split = job.splits[tl.split_id];
        const anchored = tl.steps.filter((x) => x.anchored).length;
        return (
          <div key={tl.split_id} data-testid={`steps-${tl.split_id}`}>
            <h3>
              {t("steps.split", { split: tl.split_id, step: split?.step ?? "" })}
            </h3>
            <p>
              {tl.steps.length === 0
                ? t("steps.none")
                : t("steps.count", { steps: formatNumber(tl.steps.length), anchored: formatNumber(anchored), anchors: formatNumber(tl.anchors) })}
            </p>
            {tl.steps.length > 0 && (
              <ol class="timeline">
                {tl.steps.map((x) => (
                  <li key={x.record.seq}>
                    <span class="seq">#{x.record.seq}</span> <strong>{x.record.bizStep}</strong> · {formatDate(x.record.time)} ·{" "}
                    <Address value={x.signer} /> ·{" "}
                    <span class={x.anchored ? "anchored" : "pending"}>
                      {x.anchored ? anchorText(anchoredAt(tl.split_id, x.record.seq)) : t("steps.pending")}
                    </span>
                  </li>
                ))}
              </ol>
            )}
          </div>
        );
      })}
    </>
  );
}

/** The buyer or the split's factory disputes a split, with an evidence file hashed here. */
function OpenDispute(props: { job: Job; split: Split; close: () => void; opened: (id: number) => void }) {
  const [reason, setReason] = useLocalState("");
  const [file, setFile] = useLocalState<File | null>(null);
  const action = useAction();
  async function submit(e: Event) {
    e.preventDefault();
    if (!reason.trim() || !file) {
      action.setError(t("dispute.needAll"));
      return;
    }
    await action.run(async () => {
      const evidence = await hashFile(file, () => undefined);
      const out = await post<{ id: number }>("/disputes", {
        job_id: props.job.id,
        split_id: props.split.id,
        reason: reason.trim(),
        evidence_hash: evidence,
      });
      props.opened(out.id);
    });
  }
  return (
    <div class="panel" role="region" aria-labelledby="dispute-title">
      <h3 id="dispute-title">{t("dispute.open")}</h3>
      <form onSubmit={submit}>
        <Field id="dispute-reason" label={t("dispute.reason")} value={reason} onValue={setReason} />
        <FileField id="dispute-evidence" label={t("dispute.evidence")} onFiles={(f) => setFile(f[0] ?? null)} />
        <div class="actions">
          <button type="submit">{t("dispute.submit", { split: props.split.id })}</button>
          <button type="button" class="secondary" onClick={props.close}>
            {t("common.cancel")}
          </button>
        </div>
      </form>
      <Outcome notice={null} error={action.error} />
    </div>
  );
}

/** What the signed-in member may do to this split now: deliver it, or accept its delivery. */
function SplitAction(props: {
  job: Job;
  split: Split;
  session: Session | null;
  act: (path: string, done: string) => void;
  dispute: () => void;
}) {
  const { job, split, session } = props;
  if (!session) return null;
  const me = session.me.address;
  const base = `/jobs/${job.id}/splits/${split.id}`;
  const disputeButton =
    (split.status === "accepted" || split.status === "delivered") && (same(job.buyer, me) || same(split.factory, me)) ? (
      <button type="button" class="secondary" onClick={props.dispute}>
        {t("dispute.open")}
      </button>
    ) : null;
  if (split.status === "accepted" && same(split.factory, me)) {
    return (
      <button type="button" onClick={() => props.act(`${base}/deliver`, t("order.delivered", { split: split.id }))}>
        {t("order.deliver")}
      </button>
    );
  }
  if (split.status === "delivered" && same(job.buyer, me)) {
    return (
      <div class="actions">
        <button type="button" onClick={() => props.act(`${base}/accept-delivery`, t("order.deliveryAccepted", { split: split.id }))}>
          {t("order.acceptDelivery")}
        </button>
        {disputeButton}
      </div>
    );
  }
  return disputeButton;
}

export function Order({ id }: { id: number }) {
  const session = useSession();
  const job = useLoad(() => get<Job>(`/jobs/${id}`), [id]);
  const action = useAction(job.reload);
  const [disputing, setDisputing] = useLocalState<number | null>(null);
  const act = (path: string, done: string) => action.run(() => post(path), done);
  if (job.loading && !job.data) return <Loading />;
  if (job.error || !job.data) {
    return (
      <>
        <h1>{t("order.title", { id })}</h1>
        <ErrorMessage text={job.error} />
      </>
    );
  }
  const j = job.data;
  const money = (n: string | number | bigint) => formatAmount(n, j.token);
  return (
    <>
      <h1>
        {t("order.title", { id })} <span class="badge" data-testid="job-status">{label("job.status", j.status)}</span>
      </h1>
      <p>
        <a href={`#/audit/${id}`}>{t("order.audit")}</a>
      </p>
      <Outcome notice={action.notice} error={action.error} />
      <Section id="summary" title={t("order.summary")}>
        <Facts
          rows={[
            [t("order.design"), <Hex value={j.design_id} />],
            [t("order.designer"), <Address value={j.designer} />],
            [t("orders.buyer"), <Address value={j.buyer} />],
            [t("order.quantity"), formatNumber(j.quantity)],
            [t("order.price"), money(j.price)],
            [t("order.deadline"), formatDate(j.deadline)],
            [t("order.review"), t("order.days", { days: formatNumber(Math.round(j.review_period / 86400)) })],
            [t("order.royalty"), formatPpm(j.royalty_ppm)],
            [t("order.fee"), formatPpm(j.platform_fee_ppm)],
          ]}
        />
      </Section>
      <Section id="money" title={t("order.money")}>
        <Facts
          rows={[
            [t("order.escrow.deposited"), money(j.escrow.deposited)],
            [t("order.escrow.held"), money(j.escrow.held)],
            [t("order.escrow.released"), money(j.escrow.released)],
            [t("order.escrow.refunded"), money(j.escrow.refunded)],
          ]}
        />
        <Withdrawn job={j} />
      </Section>
      <Section id="splits" title={t("order.splits")}>
        {j.splits.length === 0 ? (
          <p>{t("common.none")}</p>
        ) : (
          <Table
            headers={[
              t("work.split"),
              t("work.step"),
              t("order.factory"),
              t("work.quantity"),
              t("work.share"),
              t("work.amount"),
              t("work.state"),
              t("order.dependsOn"),
              t("order.custody"),
              session && t("work.action"),
            ]}
          >
                {j.splits.map((s) => (
                  <tr key={s.id} data-testid={`split-${s.id}`}>
                    <td>{s.id}</td>
                    <td>{s.step}</td>
                    <td>
                      <Address value={s.factory} />
                    </td>
                    <td class="num">{formatNumber(s.quantity)}</td>
                    <td class="num">{formatPpm(s.share_ppm)}</td>
                    <td class="num">{money(s.amount)}</td>
                    <td class="state">
                      {label("split.status", s.status)} <Review split={s} />
                    </td>
                    <td>{s.depends_on.length ? s.depends_on.join(", ") : "—"}</td>
                    <td>
                      {s.custody.map((c) => (
                        <Address key={c} value={c} />
                      ))}
                    </td>
                    {session && (
                      <td>
                        <SplitAction job={j} split={s} session={session} act={act} dispute={() => setDisputing(s.id)} />
                      </td>
                    )}
                  </tr>
                ))}
</Table>
        )}
      </Section>
      {disputing !== null && j.splits[disputing] && (
        <OpenDispute
          job={j}
          split={j.splits[disputing]}
          close={() => setDisputing(null)}
          opened={(disputeId) => {
            setDisputing(null);
            action.setNotice(t("dispute.opened", { id: disputeId }));
            job.reload();
          }}
        />
      )}
      {session && <Handovers job={j} session={session} done={job.reload} />}
      <Section id="graph" title={t("order.graph")}>
        <Graph job={j} />
      </Section>
      <Section id="steps" title={t("steps.title")}>
        <Steps job={j} />
      </Section>
      <Section id="events" title={t("events.title")}>
        <Events job={j} />
      </Section>
      <Section id="payouts" title={t("order.payouts")}>
        <Table
          headers={[
            t("order.payout.account"),
            t("order.payout.role"),
            t("work.share"),
            t("work.amount"),
            t("order.payout.state"),
          ]}
        >
              {j.payouts.map((p, i) => (
                <tr key={i}>
                  <td>
                    <Address value={p.account} />
                  </td>
                  <td>{payoutRole(p.role)}</td>
                  <td class="num">{formatPpm(p.share_ppm)}</td>
                  <td class="num">{money(p.amount)}</td>
                  <td>{label("payout.state", p.state)}</td>
                </tr>
              ))}
</Table>
      </Section>
    </>
  );
}


interface Balance {
  account: string;
  credited: string | number;
  withdrawn: string | number;
  withdrawable: string | number;
}

/** What each payee of the order has withdrawn from the Settlement (all its orders). */
function Withdrawn({ job }: { job: Job }) {
  const accounts = [...new Set(job.payouts.filter((p) => p.state === "credited").map((p) => p.account))];
  const balances = useLoad(
    () => Promise.all(accounts.map((a) => get<Balance>(`/pay/balances/${a}?token=${job.token.address}`))),
    [job.id, accounts.join()],
  );
  if (accounts.length === 0 || !balances.data) return null;
  return (
    <>
      <h3>{t("order.withdrawn")}</h3>
      <Table headers={[t("order.payout.account"), t("balance.credited"), t("balance.withdrawn"), t("balance.withdrawable")]}>
        {balances.data.map((b) => (
          <tr key={b.account} data-testid={`withdrawn-${b.account}`}>
            <td>
              <Address value={b.account} />
            </td>
            <td class="num">{formatAmount(b.credited, job.token)}</td>
            <td class="num">{formatAmount(b.withdrawn, job.token)}</td>
            <td class="num">{formatAmount(b.withdrawable, job.token)}</td>
          </tr>
        ))}
      </Table>
    </>
  );
}

interface ChainEvent {
  contract: string;
  event: string;
  args: Record<string, unknown>;
  block: number;
  tx: string;
  time: number;
}

/** The order's timeline: every chain event about it, oldest first. */
function Events({ job }: { job: Job }) {
  const events = useLoad(() => get<ChainEvent[]>(`/jobs/${job.id}/events`), [job.id, job.status, job.splits.map((s) => s.status).join()]);
  if (events.loading && !events.data) return <Loading />;
  if (events.error) return <ErrorMessage text={events.error} />;
  return (
    <ol class="timeline" data-testid="events">
      {(events.data ?? []).map((e, i) => (
        <li key={i}>
          <span class="seq">{formatDate(e.time)}</span> <strong>{label("event", e.event)}</strong>
          {"splitId" in e.args && <> · {t("events.split", { split: String(e.args.splitId) })}</>}
          {"amount" in e.args && <> · {formatAmount(String(e.args.amount), job.token)}</>} ·{" "}
          <span class="small">{t("events.block", { block: formatNumber(e.block), contract: e.contract })}</span>
        </li>
      ))}
    </ol>
  );
}
