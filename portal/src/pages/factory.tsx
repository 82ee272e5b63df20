// A factory's track record, from the chain: splits taken and delivered, deadlines kept,
// disputes, and what it was paid.
import { get } from "../api";
import { formatAmount, formatDate, formatNumber, t } from "../i18n";
import { ErrorMessage, Facts, Hex, Loading, payConfig, Section, useLoad } from "../ui";

interface Reputation {
  factory: string;
  as_of_block: number;
  as_of_time: number;
  splits: { assigned: number; accepted: number; delivered: number };
  deadlines: { on_time: number; late: number; on_time_rate: number | null };
  disputes: { against: number; opened: number; ruled: number; lost: number; lapsed: number; open: number };
  paid: Record<string, string | number>;
}

export function Factory({ address }: { address: string }) {
  const data = useLoad(async () => {
    const [rep, config] = await Promise.all([
      get<Reputation>(`/members/${address}/reputation`),
      payConfig(),
    ]);
    return { rep, token: config.default_token };
  }, [address]);
  if (data.loading && !data.data) return <Loading />;
  const d = data.data;
  const paid = (amount: string | number, token: string) =>
    d?.token && d.token.address.toLowerCase() === token.toLowerCase() ? formatAmount(amount, d.token) : `${formatNumber(amount)} (${token})`;
  return (
    <>
      <h1>{t("factory.title")}</h1>
      <p>
        <Hex value={address} />
      </p>
      <ErrorMessage text={data.error} />
      {d && (
        <Section id="record" title={t("factory.record")}>
          <div data-testid="reputation">
            <Facts
              rows={[
                [t("factory.assigned"), formatNumber(d.rep.splits.assigned)],
                [t("factory.accepted"), formatNumber(d.rep.splits.accepted)],
                [t("factory.delivered"), formatNumber(d.rep.splits.delivered)],
                [t("factory.onTime"), formatNumber(d.rep.deadlines.on_time)],
                [t("factory.late"), formatNumber(d.rep.deadlines.late)],
                [t("factory.against"), formatNumber(d.rep.disputes.against)],
                [t("factory.lost"), formatNumber(d.rep.disputes.lost)],
                [t("factory.open"), formatNumber(d.rep.disputes.open)],
                [
                  t("factory.paid"),
                  Object.entries(d.rep.paid).map(([token, amount]) => paid(amount, token)).join(", ") || t("common.none"),
                ],
                [t("factory.asOf"), t("factory.asOfIs", { block: formatNumber(d.rep.as_of_block), time: formatDate(d.rep.as_of_time) })],
              ]}
            />
          </div>
        </Section>
      )}
    </>
  );
}
