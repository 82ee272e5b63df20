// The council: its members and quorum, the proposals inbox (approve, cancel) and new
// proposals (admit, change roles, suspend, readmit, change the quorum).
import { isAddress } from "ethers";
import { useState } from "preact/hooks";
import { explain, get, post } from "../api";
import { formatDate, formatNumber, label, t } from "../i18n";
import { useSession } from "../session";
import { Address, ErrorMessage, Facts, Hex, Loading, Outcome, Section, Table, useAction, useLoad } from "../ui";

interface Council {
  members: string[];
  council_size: number;
  quorum: number;
  effective_quorum: number;
  proposal_ttl: number;
}

interface Proposal {
  id: number;
  kind: string;
  target: string;
  roles: string[];
  quorum_value: number;
  proposer: string;
  expires_at: number;
  approvals: number;
  state: string;
}

const ROLES = ["council", "factory", "designer", "auditor", "buyer"];
const KINDS = ["admit", "set_roles", "suspend", "readmit", "set_quorum"];

function Propose({ done }: { done: (id: number) => void }) {
  const [kind, setKind] = useState("admit");
  const [target, setTarget] = useState("");
  const [roles, setRoles] = useState<string[]>([]);
  const [quorum, setQuorum] = useState("1");
  const [error, setError] = useState<string | null>(null);
  const needsRoles = kind === "admit" || kind === "set_roles";
  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    if (kind !== "set_quorum" && !isAddress(target.trim())) {
      setError(t("council.badAddress"));
      return;
    }
    const body =
      kind === "set_quorum"
        ? { kind, quorum: Number(quorum) }
        : { kind, target: target.trim(), roles: needsRoles ? roles : [] };
    try {
      const out = await post<Proposal>("/proposals", body);
      setTarget("");
      setRoles([]);
      done(out.id);
    } catch (err) {
      setError(explain(err));
    }
  }
  return (
    <Section id="propose" title={t("council.propose")}>
      <form onSubmit={submit}>
        <label for="proposal-kind">{t("council.kind")}</label>
        <select id="proposal-kind" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value)}>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {label("council.kindIs", k)}
            </option>
          ))}
        </select>
        {kind === "set_quorum" ? (
          <>
            <label for="proposal-quorum">{t("council.newQuorum")}</label>
            <input id="proposal-quorum" type="number" min="1" value={quorum} onInput={(e) => setQuorum((e.currentTarget as HTMLInputElement).value)} />
          </>
        ) : (
          <>
            <label for="proposal-target">{t("council.target")}</label>
            <input id="proposal-target" type="text" spellcheck={false} value={target} onInput={(e) => {
                setTarget((e.currentTarget as HTMLInputElement).value);
                setError(null);
              }}
            />
          </>
        )}
        {needsRoles && (
          <fieldset>
            <legend>{t("members.roles")}</legend>
            {ROLES.map((r) => (
              <span key={r} class="check">
                <input
                  id={`role-${r}`}
                  type="checkbox"
                  checked={roles.includes(r)}
                  onChange={() => setRoles(roles.includes(r) ? roles.filter((x) => x !== r) : [...roles, r])}
                />
                <label for={`role-${r}`}>{label("role", r)}</label>
              </span>
            ))}
          </fieldset>
        )}
        <button type="submit">{t("council.submit")}</button>
      </form>
      <ErrorMessage text={error} />
    </Section>
  );
}

export function CouncilPage() {
  const session = useSession();
  const data = useLoad(async () => {
    const [council, proposals] = await Promise.all([get<Council>("/council"), get<Proposal[]>("/proposals")]);
    return { council, proposals };
  }, []);
  const action = useAction(data.reload);
  const me = session?.me.address.toLowerCase();
  const onCouncil = session?.me.roles.includes("council") ?? false;
  const act = (path: string, done: string) => action.run(() => post(path), done);
  const d = data.data;
  const now = Date.now() / 1000;
  return (
    <>
      <h1>{t("council.title")}</h1>
      <Outcome notice={action.notice} error={action.error ?? data.error} />
      {data.loading && !d && <Loading />}
      {d && (
        <>
          <Section id="council" title={t("council.who")}>
            <Facts
              rows={[
                [t("council.members"), <ul class="plain">{d.council.members.map((m) => <li key={m}><Hex value={m} /></li>)}</ul>],
                [t("council.quorum"), t("council.quorumIs", { n: formatNumber(d.council.effective_quorum), size: formatNumber(d.council.council_size), configured: formatNumber(d.council.quorum) })],
                [t("council.ttl"), t("order.days", { days: formatNumber(Math.round(d.council.proposal_ttl / 86400)) })],
              ]}
            />
          </Section>
          <Section id="proposals" title={t("council.inbox")}>
            {d.proposals.length === 0 ? (
              <p>{t("council.noProposals")}</p>
            ) : (
              <Table
                headers={[
                  "#",
                  t("council.kind"),
                  t("council.target"),
                  t("members.roles"),
                  t("council.approvals"),
                  t("council.expires"),
                  t("members.status"),
                  onCouncil && t("work.action"),
                ]}
              >
                    {d.proposals
                      .slice()
                      .reverse()
                      .map((p) => {
                        const open = p.state === "open" && p.expires_at > now;
                        return (
                          <tr key={p.id} data-testid={`proposal-${p.id}`}>
                            <td>{p.id}</td>
                            <td>{label("council.kindIs", p.kind)}</td>
                            <td>{p.kind === "set_quorum" ? formatNumber(p.quorum_value) : <Address value={p.target} />}</td>
                            <td>{p.roles.map((r) => label("role", r)).join(", ") || "—"}</td>
                            <td class="num">{t("council.approvalsOf", { n: formatNumber(p.approvals), q: formatNumber(d.council.effective_quorum) })}</td>
                            <td>{formatDate(p.expires_at)}</td>
                            <td>{label("council.state", open || p.state !== "open" ? p.state : "expired")}</td>
                            {onCouncil && (
                              <td class="actions">
                                {open && (
                                  <button type="button" onClick={() => act(`/proposals/${p.id}/approve`, t("council.approved", { id: p.id }))}>
                                    {t("council.approve")}
                                  </button>
                                )}
                                {open && p.proposer.toLowerCase() === me && (
                                  <button type="button" class="secondary" onClick={() => act(`/proposals/${p.id}/cancel`, t("council.cancelled", { id: p.id }))}>
                                    {t("council.cancel")}
                                  </button>
                                )}
                              </td>
                            )}
                          </tr>
                        );
                      })}
</Table>
            )}
          </Section>
          {onCouncil && (
            <Propose
              done={(id) => {
                action.setNotice(t("council.proposed", { id }));
                data.reload();
              }}
            />
          )}
        </>
      )}
    </>
  );
}
