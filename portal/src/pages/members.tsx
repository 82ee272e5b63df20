// The consortium's members: who holds which roles, read from the chain.
import { get, type Member } from "../api";
import { label, t } from "../i18n";
import { ErrorMessage, Hex, Loading, Table, useLoad } from "../ui";

export function Members() {
  const members = useLoad(() => get<Member[]>("/members"), []);
  return (
    <>
      <h1>{t("members.title")}</h1>
      {members.loading && !members.data && <Loading />}
      <ErrorMessage text={members.error} />
      {members.data && (
        <Table
          headers={[
            t("members.address"),
            t("members.roles"),
            t("members.status"),
            t("members.record"),
          ]}
        >
              {members.data.map((m) => (
                <tr key={m.address}>
                  <td>
                    <Hex value={m.address} />
                  </td>
                  <td>{m.roles.map((r) => label("role", r)).join(", ") || t("session.noRoles")}</td>
                  <td>{label("member.status", m.status)}</td>
                  <td>
                    {m.roles.includes("factory") && (
                      <a href={`#/factories/${m.address}`} aria-label={`${t("members.record")} ${m.address}`}>
                        {t("members.record")}
                      </a>
                    )}
                  </td>
                </tr>
              ))}
</Table>
      )}
    </>
  );
}
