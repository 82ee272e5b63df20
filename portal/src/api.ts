// The node's public API, same origin. Problems (RFC 9457) become ApiError, whose
// `sentence()` tells the person what happened and what to do.
import { t } from "./i18n";

export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  error?: string;
  errors?: { field: string | null; message: string }[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | null,
  ) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
  }

  sentence(): string {
    const p = this.problem;
    if (this.status === 0) return t("error.network");
    let detail = p?.detail ?? p?.title ?? "";
    if (this.status === 422 && p?.errors?.length) {
      detail = p.errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ");
    }
    if (this.status === 403 && detail.includes("not an active member")) return t("error.notMember");
    switch (this.status) {
      case 401:
        return t("error.401");
      case 403:
      case 404:
      case 409:
      case 413:
      case 422:
        return t(`error.${this.status}`, { detail });
      case 502:
      case 503:
        return t("error.503");
      default:
        return t("error.other", { status: this.status, detail });
    }
  }
}

/** What to say about any error caught in the portal. */
export function explain(err: unknown): string {
  if (err instanceof ApiError) return err.sentence();
  const e = err as { code?: unknown; message?: string; info?: { error?: { code?: number } } };
  if (e?.code === 4001 || e?.code === "ACTION_REJECTED" || e?.info?.error?.code === 4001) {
    return t("error.rejected");
  }
  return t("error.unknown", { detail: e?.message ?? String(err) });
}

let token: string | null = null;
export function setToken(next: string | null): void {
  token = next;
}

// Integers beyond 2^53 (nonces, amounts of 18-decimal tokens) would lose digits in
// JSON.parse: they are read as strings instead.
const BIG_INT = /([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g;
function parse(text: string): unknown {
  return JSON.parse(text.replace(BIG_INT, '$1"$2"'));
}

// ...and BigInt values are sent as JSON integers (the API refuses numbers in strings).
const BIG_MARK = "\u0000big:";
function stringify(body: unknown): string {
  return JSON.stringify(body, (_k, v) => (typeof v === "bigint" ? BIG_MARK + v.toString() : v)).replace(
    /"\\u0000big:(-?\d+)"/g,
    "$1",
  );
}

// --- relaying (portal/src/relay.ts): a write the node cannot sign is signed here ---------
type Relayer = (path: string, body: unknown) => Promise<unknown>;
let relayer: Relayer | null = null;
export function setRelayer(next: Relayer | null): void {
  relayer = next;
}
/** The node's refusal to sign for a member whose key it does not hold. */
const OWN_KEY = "does not hold the key";

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  opts: { form?: FormData } = {},
): Promise<T> {
  try {
    return await send<T>(method, path, body, opts);
  } catch (err) {
    const relayable = method === "POST" && !opts.form && path !== "/tx" && !path.includes("unsigned=");
    if (relayer && relayable && err instanceof ApiError && err.status === 403 && err.problem?.detail?.includes(OWN_KEY)) {
      return (await relayer(path, body)) as T;
    }
    throw err;
  }
}

async function send<T>(
  method: string,
  path: string,
  body: unknown,
  opts: { form?: FormData },
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload: BodyInit | undefined;
  if (opts.form) payload = opts.form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await res.text();
  if (!res.ok) throw refusal(res.status, text);
  return (text ? parse(text) : null) as T;
}

/** A file the node serves (not JSON): its bytes, or the node's refusal as an ApiError. */
export async function getBytes(path: string): Promise<ArrayBuffer> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, { headers });
  } catch {
    throw new ApiError(0, null);
  }
  if (!res.ok) throw refusal(res.status, await res.text());
  return res.arrayBuffer();
}

/** The node's problem (RFC 9457) as an ApiError; a body that is not JSON as its detail. */
function refusal(status: number, text: string): ApiError {
  let problem: Problem;
  try {
    problem = parse(text) as Problem;
  } catch {
    problem = { status, detail: text.slice(0, 200) };
  }
  return new ApiError(status, problem);
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => request<T>("POST", path, body);

// --- shapes of the API's answers the portal reads ---------------------------------------
export interface Token {
  address: string;
  symbol: string;
  decimals: number;
}
export interface Split {
  id: number;
  factory: string;
  step: string;
  quantity: number;
  share_ppm: number;
  amount: string | number;
  depends_on: number[];
  status: string;
  received_from: number[];
  handed_to: number[];
  custody: string[];
  payout: string | number | null;
  handed_quantity: number;
  delivered_at: number | null;
  review_ends: number | null;
}
export interface Payout {
  account: string;
  role: string;
  share_ppm: number;
  amount: string | number;
  state: string;
}
export interface Job {
  id: number;
  status: string;
  buyer: string;
  design_id: string;
  designer: string;
  royalty_ppm: number;
  platform: string;
  platform_fee_ppm: number;
  token: Token;
  quantity: number;
  price: string | number;
  deadline: number;
  review_period: number;
  escrow: { deposited: string | number; held: string | number; released: string | number; refunded: string | number };
  splits: Split[];
  payouts: Payout[];
}
export interface JobSummary {
  id: number;
  buyer: string;
  status: string;
  price: string | number;
  token: string;
  split_count: number;
  deadline: number;
}
export interface TypedData {
  types: Record<string, { name: string; type: string }[]>;
  primaryType: string;
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
}
export interface Member {
  address: string;
  roles: string[];
  status: string;
}
export interface Me {
  address: string;
  expires_at: number;
  roles: string[];
}
