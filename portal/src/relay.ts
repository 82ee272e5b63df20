// Transactions signed in the browser for members whose key the node does not hold. When a
// write is refused because the node lacks the member's key, the same endpoint is asked for
// the unsigned transaction (`?unsigned=1`), the person is shown what it does in words, signs
// it with their wallet or keystore, and the node relays it (`POST /tx`). An action that
// takes two transactions (funding approves the token first) is served one at a time.
import { get, request, setRelayer, type Job, type Token } from "./api";
import { formatAmount, t } from "./i18n";
import { currentSession } from "./session";
import type { UnsignedTx } from "./wallet";

export interface Relayed {
  tx_hash: string;
  block_number: number;
  status: number;
  events: { contract: string; event: string; args: Record<string, string> }[];
  id?: number;
}

/** The key-missing refusal (api/deps: "this node does not hold the key of ..."). */
export function needsOwnKey(status: number, detail: string | undefined): boolean {
  return status === 403 && !!detail && detail.includes("does not hold the key");
}

let token: Token | null | undefined;
async function paymentToken(): Promise<Token | null> {
  if (token === undefined) {
    token = (await get<{ default_token: Token | null }>("/pay/config")).default_token;
  }
  return token;
}

/** What the transaction does, in words (amounts in the token's units). */
export async function describe(tx: UnsignedTx): Promise<string> {
  const { function: fn, args, contract } = tx.summary;
  const job = args.jobId ?? args.job_id;
  switch (fn) {
    case "createJob": {
      const tok = await paymentToken();
      const price = tok ? formatAmount(args.price, tok) : args.price;
      return t("relay.do.createJob", { quantity: args.quantity, price });
    }
    case "fund": {
      const j = await get<Job>(`/jobs/${job}`);
      return t("relay.do.fund", { job, amount: formatAmount(j.price, j.token) });
    }
    case "approve": {
      const tok = await paymentToken();
      const amount = tok ? formatAmount(args.amount ?? args.value, tok) : (args.amount ?? args.value);
      return t("relay.do.approve", { amount });
    }
    case "split":
      return t("relay.do.split", { job });
    case "acceptSplit":
    case "acceptSplitWithSig":
      return t("relay.do.accept", { job, split: args.splitId });
    case "registerBatch":
      return t("relay.do.registerBatch", { count: args.count });
    case "commit":
      return t("relay.do.commit");
    case "claim":
    case "reveal":
      return t("relay.do.reveal", { design: args.designId });
    case "supersede":
      return t("relay.do.supersede", { design: args.designId, successor: args.successorId });
    case "revoke":
      return t("relay.do.revoke", { design: args.designId });
    case "withdraw": {
      const tok = await paymentToken();
      return t("relay.do.withdraw", { amount: tok ? formatAmount(args.amount, tok) : args.amount });
    }
    default:
      return t("relay.do.other", { contract, fn, job: job ?? "" });
  }
}

/** Ask the person, in a modal dialog, whether to sign; resolves true to sign. */
function confirmSign(words: string, tx: UnsignedTx): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.setAttribute("aria-labelledby", "relay-title");
    dialog.className = "relay-dialog";
    const title = document.createElement("h2");
    title.id = "relay-title";
    title.textContent = t("relay.title");
    const what = document.createElement("p");
    what.textContent = words;
    what.dataset.testid = "relay-words";
    const detail = document.createElement("p");
    detail.className = "hash";
    detail.textContent = t("relay.detail", { contract: tx.summary.contract, to: tx.to, nonce: tx.nonce });
    const sign = document.createElement("button");
    sign.type = "button";
    sign.textContent = t("relay.sign");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.textContent = t("relay.cancel");
    const close = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    sign.onclick = () => close(true);
    cancel.onclick = () => close(false);
    dialog.oncancel = () => close(false);
    dialog.append(title, what, detail, sign, cancel);
    document.body.append(dialog);
    dialog.showModal();
    sign.focus();
  });
}

class Declined extends Error {
  code = "ACTION_REJECTED";
}

/** Transactions after which the same request has more to do: the payment after the token's
 * approval, the certificate after a registration, the change after revealing a version. */
const FIRST_OF_MORE = new Set(["approve", "registerBatch", "commit", "claim", "reveal"]);

/** Build, show, sign and relay the transactions of `path` until its last one is mined. An
 * answer that is no transaction is the endpoint's own result: nothing was left to sign. */
export async function relayWrite(path: string, body: unknown): Promise<unknown> {
  const session = currentSession();
  if (!session) throw new Error(t("relay.noSession"));
  const sep = path.includes("?") ? "&" : "?";
  for (let i = 0; i < 4; i++) {
    const tx = await request<UnsignedTx | null>("POST", `${path}${sep}unsigned=1`, body);
    if (!tx || typeof tx !== "object" || !("summary" in tx)) return tx;
    if (!(await confirmSign(await describe(tx), tx))) throw new Declined(t("error.rejected"));
    const raw = await session.signer.signTransaction(tx);
    const out = await request<Relayed>("POST", "/tx", { raw });
    if (!FIRST_OF_MORE.has(tx.summary.function)) {
      const created = out.events.find((e) => e.event === "JobCreated");
      return created ? { ...out, id: Number(created.args.jobId) } : out;
    }
  }
  throw new Error(t("relay.tooMany"));
}

setRelayer(relayWrite);
