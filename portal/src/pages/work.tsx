// A factory's work: the splits assigned to it, accepted by an EIP-712 signature made here.
import { getAddress } from "ethers";
import { useState } from "preact/hooks";
import { explain, get, post, type Job, type JobSummary, type Split, type TypedData } from "../api";
import { formatAmount, formatDate, formatNumber, formatPpm, label, t } from "../i18n";
import { currentSession, type Session } from "../session";
import { ErrorMessage, Facts, Loading, Outcome, payConfig, sameAddress as same, Section, Status, Table, useAction, useLoad } from "../ui";

async function myJobs(address: string): Promise<Job[]> {
  const list = await get<JobSummary[]>(`/jobs?party=${address}`);
  const jobs = await Promise.all(list.map((j) => get<Job>(`/jobs/${j.id}`)));
  return jobs.filter((j) => j.splits.some((s) => same(s.factory, address)));
}

function AcceptPanel(props: { job: Job; split: Split; session: Session; done: () => void; close: () => void }) {
  const { job, split, session } = props;
  const [typed, setTyped] = useState<TypedData | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const loaded = useLoad(async () => {
    const data = await get<TypedData>(`/jobs/${job.id}/splits/${split.id}/acceptance`);
    const m = data.message;
    // what is signed must be this split, for this factory, at this share: else refuse
    if (
      Number(m.jobId) !== job.id ||
      Number(m.splitId) !== split.id ||
      !same(String(m.factory), session.signer.address) ||
      Number(m.sharePpm) !== split.share_ppm
    ) {
      throw new Error(t("accept.mismatch"));
    }
    setTyped(data);
    return data;
  }, [job.id, split.id]);

  async function sign() {
    if (!typed) return;
    setError(null);
    try {
      setStatus(t("accept.signing"));
      const signature = await session.signer.signTypedData(typed);
      await post(`/jobs/${job.id}/splits/${split.id}/accept-signed`, {
        nonce: BigInt(String(typed.message.nonce)),
        deadline: BigInt(String(typed.message.deadline)),
        signature,
      });
      setStatus(t("accept.done", { job: job.id, split: split.id }));
      props.done();
    } catch (err) {
      setStatus(null);
      setError(explain(err));
    }
  }

  const deadline = typed ? Number(typed.message.deadline) : 0;
  return (
    <div class="panel" role="region" aria-labelledby="accept-title">
      <h3 id="accept-title">{t("accept.title", { job: job.id, split: split.id })}</h3>
      {loaded.loading && !typed && <Loading />}
      {typed && (
        <>
          <p class="signing-words" data-testid="accept-words">
            {t("accept.words", {
              factory: getAddress(session.signer.address),
              step: split.step,
              quantity: formatNumber(split.quantity),
              split: split.id,
              job: job.id,
              share: formatPpm(split.share_ppm),
              amount: formatAmount(split.amount, job.token),
              deadline: formatDate(job.deadline),
            })}
          </p>
          <p>{t("accept.valid", { deadline: formatDate(deadline) })}</p>
          <p class="small">
            {t("accept.what", {
              contract: String(typed.domain.verifyingContract),
              chain: String(typed.domain.chainId),
            })}
          </p>
          <div class="actions">
            <button type="button" onClick={sign}>
              {t("accept.sign")}
            </button>
            <button type="button" class="secondary" onClick={props.close}>
              {t("common.cancel")}
            </button>
          </div>
        </>
      )}
      <Status text={status} />
      <ErrorMessage text={error ?? loaded.error} />
    </div>
  );
}

interface Balance {
  withdrawable: string | number;
  credited: string | number;
  withdrawn: string | number;
  wallet: string | number;
}

/** What the Settlement credited to this member, and the withdrawal of it. */
function Balances({ address }: { address: string }) {
  const data = useLoad(async () => {
    const config = await payConfig();
    const balance = await get<Balance>(`/pay/balances/${address}`);
    return { token: config.default_token!, balance };
  }, [address]);
  const action = useAction(data.reload);
  const d = data.data;
  function withdraw() {
    action.run(async () => {
      const out = await post<{ amount: string | number }>("/pay/withdraw", {});
      action.setNotice(t("balance.done", { amount: formatAmount(out.amount, d!.token) }));
    });
  }
  return (
    <Section id="balance" title={t("balance.title")}>
      {data.loading && !d && <Loading />}
      {d && (
        <>
          <div data-testid="balance">
            <Facts
              rows={[
                [t("balance.withdrawable"), formatAmount(d.balance.withdrawable, d.token)],
                [t("balance.credited"), formatAmount(d.balance.credited, d.token)],
                [t("balance.withdrawn"), formatAmount(d.balance.withdrawn, d.token)],
                [t("balance.wallet"), formatAmount(d.balance.wallet, d.token)],
              ]}
            />
          </div>
          {BigInt(d.balance.withdrawable) > 0n ? (
            <button type="button" onClick={withdraw}>
              {t("balance.withdraw", { amount: formatAmount(d.balance.withdrawable, d.token) })}
            </button>
          ) : (
            <p>{t("balance.nothing")}</p>
          )}
        </>
      )}
      <Outcome notice={action.notice} error={action.error ?? data.error} />
    </Section>
  );
}

export function Work() {
  const session = currentSession()!;
  const address = session.me.address;
  const jobs = useLoad(() => myJobs(address), [address]);
  const [open, setOpen] = useState<{ job: number; split: number } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const rows = (jobs.data ?? []).flatMap((job) =>
    job.splits.filter((s) => same(s.factory, address)).map((split) => ({ job, split })),
  );
  const current = rows.find((r) => open && r.job.id === open.job && r.split.id === open.split);

  return (
    <>
      <h1>{t("work.title")}</h1>
      <p>{t("work.intro")}</p>
      <Status text={notice} />
      {current && (
        <AcceptPanel
          job={current.job}
          split={current.split}
          session={session}
          close={() => setOpen(null)}
          done={() => {
            setNotice(t("accept.done", { job: current.job.id, split: current.split.id }));
            setOpen(null);
            jobs.reload();
          }}
        />
      )}
      <Section id="splits" title={t("order.splits")}>
        {jobs.loading && !jobs.data && <Loading />}
        <ErrorMessage text={jobs.error} />
        {jobs.data && rows.length === 0 && <p>{t("work.none", { address })}</p>}
        {rows.length > 0 && (
          <Table
            headers={[
              t("work.order"),
              t("work.split"),
              t("work.step"),
              t("work.quantity"),
              t("work.share"),
              t("work.amount"),
              t("work.state"),
              t("work.action"),
            ]}
          >
                {rows.map(({ job, split }) => (
                  <tr key={`${job.id}-${split.id}`} data-testid={`work-${job.id}-${split.id}`}>
                    <td>
                      <a href={`#/orders/${job.id}`} aria-label={t("work.open", { id: job.id })}>
                        #{job.id}
                      </a>
                    </td>
                    <td>{split.id}</td>
                    <td>{split.step}</td>
                    <td class="num">{formatNumber(split.quantity)}</td>
                    <td class="num">{formatPpm(split.share_ppm)}</td>
                    <td class="num">{formatAmount(split.amount, job.token)}</td>
                    <td class="state">{label("split.status", split.status)}</td>
                    <td>
                      {split.status === "assigned" && (
                        <button type="button" onClick={() => setOpen({ job: job.id, split: split.id })}>
                          {t("work.review")}
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
</Table>
        )}
      </Section>
      <Balances address={address} />
    </>
  );
}
