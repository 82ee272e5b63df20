// Disputes: what auditors must rule on (evidence, deadlines, votes) and the vote panel.
import { useState } from "preact/hooks";
import { explain, get, post } from "../api";
import { formatDate, formatNumber, formatPpm, label, t } from "../i18n";
import { useSession } from "../session";
import { hashFile } from "./verify";
import { Address, ErrorMessage, Facts, Field, FileField, Hex, Loading, Outcome, Section, Status, useAction, useLoad } from "../ui";

interface Dispute {
  id: number;
  job_id: number;
  split_id: number;
  status: string;
  phase: string;
  claimant: string;
  respondent: string;
  reason: string;
  evidence_hash: string;
  opened_at: number;
  evidence_deadline: number;
  ruling_deadline: number;
  votes: number;
  quorum: number;
  ruling: { payout_ppm: number; fault: string } | null;
  evidence: { party: string; evidence_hash: string; uri: string; time: number }[];
  vote_list: { auditor: string; payout_ppm: number; fault: string }[];
}

function VotePanel({ d, voted }: { d: Dispute; voted: () => void }) {
  const [percent, setPercent] = useState("50");
  const [fault, setFault] = useState("none");
  const [error, setError] = useState<string | null>(null);
  async function vote(e: Event) {
    e.preventDefault();
    setError(null);
    const value = Number(percent);
    if (!Number.isFinite(value) || value < 0 || value > 100) {
      setError(t("disputes.badPercent"));
      return;
    }
    try {
      await post(`/disputes/${d.id}/votes`, { payout_ppm: Math.round(value * 10_000), fault });
      voted();
    } catch (err) {
      setError(explain(err));
    }
  }
  return (
    <form onSubmit={vote} class="vote">
      <label for={`payout-${d.id}`}>{t("disputes.payout")}</label>
      <input
        id={`payout-${d.id}`}
        type="number"
        min="0"
        max="100"
        step="0.0001"
        value={percent}
        onInput={(e) => setPercent((e.currentTarget as HTMLInputElement).value)}
      />
      <label for={`fault-${d.id}`}>{t("disputes.fault")}</label>
      <select id={`fault-${d.id}`} value={fault} onChange={(e) => setFault((e.currentTarget as HTMLSelectElement).value)}>
        {["none", "buyer", "factory"].map((f) => (
          <option key={f} value={f}>
            {label("disputes.faultIs", f)}
          </option>
        ))}
      </select>
      <button type="submit">{t("disputes.vote", { id: d.id })}</button>
      <ErrorMessage text={error} />
    </form>
  );
}

/** A party (claimant or respondent) adds evidence: a file hashed here, and where to get it. */
function EvidencePanel({ d, added }: { d: Dispute; added: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [uri, setUri] = useState("");
  const action = useAction();
  async function submit(e: Event) {
    e.preventDefault();
    if (!file) return action.setError(t("disputes.needFile"));
    const ok = await action.run(async () => {
      const evidence_hash = await hashFile(file, () => undefined);
      await post(`/disputes/${d.id}/evidence`, { evidence_hash, uri: uri.trim() });
    });
    if (ok) added();
  }
  return (
    <form onSubmit={submit} class="vote">
      <FileField id={`evidence-file-${d.id}`} label={t("dispute.evidence")} onFiles={(f) => setFile(f[0] ?? null)} />
      <Field id={`evidence-uri-${d.id}`} label={t("disputes.evidenceUri")} value={uri} onValue={setUri} />
      <button type="submit">{t("disputes.addEvidence", { id: d.id })}</button>
      <Outcome notice={null} error={action.error} />
    </form>
  );
}

export function Disputes() {
  const session = useSession();
  const list = useLoad(() => get<Dispute[]>("/disputes"), []);
  const [notice, setNotice] = useState<string | null>(null);
  const me = session?.me.address.toLowerCase();
  const auditor = session?.me.roles.includes("auditor");
  return (
    <>
      <h1>{t("disputes.title")}</h1>
      <p>{t("disputes.intro")}</p>
      <Status text={notice} />
      {list.loading && !list.data && <Loading />}
      <ErrorMessage text={list.error} />
      {list.data && list.data.length === 0 && <p>{t("disputes.none")}</p>}
      {(list.data ?? [])
        .slice()
        .sort((a, b) => Number(b.status === "open") - Number(a.status === "open") || b.id - a.id)
        .map((d) => {
          const votedAlready = d.vote_list.some((v) => v.auditor.toLowerCase() === me);
          return (
            <Section key={d.id} id={`dispute-${d.id}`} title={t("disputes.one", { id: d.id, job: d.job_id, split: d.split_id })}>
              <div data-testid={`dispute-${d.id}`}>
                <Facts
                  rows={[
                    [t("disputes.phase"), label("disputes.phaseIs", d.phase)],
                    [t("disputes.reason"), d.reason],
                    [t("disputes.claimant"), <Address value={d.claimant} />],
                    [t("disputes.respondent"), <Address value={d.respondent} />],
                    [t("disputes.opened"), formatDate(d.opened_at)],
                    [t("disputes.evidenceUntil"), formatDate(d.evidence_deadline)],
                    [t("disputes.rulingUntil"), formatDate(d.ruling_deadline)],
                    [t("disputes.votes"), t("disputes.votesOf", { votes: formatNumber(d.votes), quorum: formatNumber(d.quorum) })],
                    [
                      t("disputes.ruling"),
                      d.ruling
                        ? t("disputes.ruled", { payout: formatPpm(d.ruling.payout_ppm), fault: label("disputes.faultIs", d.ruling.fault) })
                        : t("common.none"),
                    ],
                  ]}
                />
                <h3>{t("disputes.evidence")}</h3>
                <ul>
                  <li>
                    <Address value={d.claimant} />: <Hex value={d.evidence_hash} />
                  </li>
                  {d.evidence.map((e, i) => (
                    <li key={i}>
                      <Address value={e.party} />: <Hex value={e.evidence_hash} /> {e.uri} ({formatDate(e.time)})
                    </li>
                  ))}
                </ul>
                {auditor && d.phase === "voting" && !votedAlready && (
                  <VotePanel
                    d={d}
                    voted={() => {
                      setNotice(t("disputes.voted", { id: d.id }));
                      list.reload();
                    }}
                  />
                )}
                {votedAlready && <p>{t("disputes.youVoted")}</p>}
                {d.phase === "evidence" && (d.claimant.toLowerCase() === me || d.respondent.toLowerCase() === me) && (
                  <EvidencePanel
                    d={d}
                    added={() => {
                      setNotice(t("disputes.evidenceAdded", { id: d.id }));
                      list.reload();
                    }}
                  />
                )}
              </div>
            </Section>
          );
        })}
    </>
  );
}
