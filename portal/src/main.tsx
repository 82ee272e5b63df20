// The portal's shell: header (navigation, language, who is signed in) and the page the
// URL fragment names (#/verify, #/work, #/inbox, #/devices, #/designs, #/received, #/orders, #/orders/N, #/members, …).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { formatDate, LANGS, label, onLangChange, setLang, t, currentLang, type Lang } from "./i18n";
import { Audit } from "./pages/audit";
import { CouncilPage } from "./pages/council";
import { Designs } from "./pages/designs";
import { Devices } from "./pages/devices";
import { Disputes } from "./pages/disputes";
import { Factory } from "./pages/factory";
import { InboxPage } from "./pages/handover";
import { Members } from "./pages/members";
import { NewOrder } from "./pages/neworder";
import { ReceivedPage } from "./pages/received";
import { Order, Orders } from "./pages/orders";
import { SignIn } from "./pages/signin";
import { Verify } from "./pages/verify";
import { Work } from "./pages/work";
import { startLive, stopLive } from "./live";
import "./relay"; // signs in the browser what the node cannot sign for this member
import { signOut, useSession } from "./session";
import { useRoute } from "./ui";

function NeedSignIn() {
  return (
    <>
      <p>{t("common.needSignin")}</p>
      <p>
        <a href="#/signin">{t("common.goSignin")}</a>
      </p>
    </>
  );
}

function Page({ route }: { route: string[] }) {
  const session = useSession();
  const [head, arg] = route;
  switch (head) {
    case "signin":
      return <SignIn />;
    case "work":
      return session ? <Work /> : <NeedSignIn />;
    case "inbox":
      return session ? <InboxPage /> : <NeedSignIn />;
    case "devices":
      return session ? <Devices /> : <NeedSignIn />;
    case "orders":
      return arg && /^\d+$/.test(arg) ? <Order id={Number(arg)} /> : <Orders />;
    case "audit":
      return arg && /^\d+$/.test(arg) ? <Audit id={Number(arg)} /> : <Orders />;
    case "designs":
      return session ? <Designs /> : <NeedSignIn />;
    case "received":
      return session ? <ReceivedPage /> : <NeedSignIn />;
    case "disputes":
      return <Disputes />;
    case "new-order":
      return session ? <NewOrder /> : <NeedSignIn />;
    case "council":
      return <CouncilPage />;
    case "factories":
      return arg && /^0x[0-9a-fA-F]{40}$/.test(arg) ? <Factory address={arg} /> : <Members />;
    case "members":
      return <Members />;
    default:
      return <Verify />;
  }
}

function App() {
  const route = useRoute();
  const session = useSession();
  const [, bump] = useState(0);
  useEffect(() => onLangChange(() => bump((n) => n + 1)), []);
  useEffect(() => (session ? startLive() : stopLive()), [session?.me.address]); // live updates
  useEffect(() => {
    document.title = t("app.title");
  });
  const here = route[0] ?? "verify";
  const link = (to: string, text: string) => (
    <a href={`#/${to}`} aria-current={here === to ? "page" : undefined}>
      {text}
    </a>
  );
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        {t("app.skip")}
      </a>
      <header>
        <span class="brand">{t("app.title")}</span>
        <nav aria-label={t("nav.label")}>
          {link("verify", t("nav.verify"))}
          {session?.me.roles.includes("factory") && link("work", t("nav.work"))}
          {session?.me.roles.includes("factory") && link("inbox", t("nav.inbox"))}
          {session?.me.roles.includes("factory") && link("devices", t("nav.devices"))}
          {session?.me.roles.includes("designer") && link("designs", t("nav.designs"))}
          {session && link("received", t("nav.received"))}
          {link("orders", t("nav.orders"))}
          {session?.me.roles.includes("buyer") && link("new-order", t("nav.neworder"))}
          {link("disputes", t("nav.disputes"))}
          {link("members", t("nav.members"))}
          {link("council", t("nav.council"))}
          {!session && link("signin", t("nav.signin"))}
        </nav>
        <div class="lang">
          <label for="lang">{t("lang.label")}</label>
          <select id="lang" value={currentLang()} onChange={(e) => setLang((e.currentTarget as HTMLSelectElement).value as Lang)}>
            {LANGS.map((l) => (
              <option key={l.code} value={l.code} lang={l.code}>
                {l.name}
              </option>
            ))}
          </select>
        </div>
        {session && (
          <div class="who" data-testid="who">
            <span>{t("session.as", { address: session.me.address })}</span>
            <span>
              {t("session.roles", {
                roles: session.me.roles.map((r) => label("role", r)).join(", ") || t("session.noRoles"),
              })}
            </span>
            <span class="small">{t("session.expires", { time: formatDate(session.me.expires_at) })}</span>
            <button type="button" class="secondary" onClick={() => { signOut(); location.hash = "#/verify"; }}>
              {t("session.signout")}
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
