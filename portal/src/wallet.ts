// Keys in the browser: an EIP-1193 wallet (window.ethereum), or a V3 keystore decrypted in
// this page. Either signs Sign-In with Ethereum messages and EIP-712 typed data; the key
// and the passphrase never leave the page.
import { getAddress, hexlify, toBeHex, toUtf8Bytes, Transaction, Wallet } from "ethers";
import type { TypedData } from "./api";

export interface Signer {
  address: string;
  kind: "wallet" | "keystore";
  signMessage(message: string): Promise<string>;
  signTypedData(data: TypedData): Promise<string>;
  /** A served unsigned transaction, signed (not sent): the raw bytes for POST /tx. */
  signTransaction(tx: UnsignedTx): Promise<string>;
}

/** What a write endpoint serves with `?unsigned=1` (quantities above 2^53 as strings). */
export interface UnsignedTx {
  from: string;
  to: string;
  data: string;
  value: string;
  chainId: number;
  nonce: number;
  gas: number;
  type: number;
  gasPrice?: string;
  maxFeePerGas?: string;
  maxPriorityFeePerGas?: string;
  summary: { contract: string; function: string; args: Record<string, string>; text: string };
}

const FEES = ["gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"] as const;

/** The transaction's fields as JSON-RPC quantities (what eth_signTransaction takes). */
export function rpcFields(tx: UnsignedTx): Record<string, string> {
  const out: Record<string, string> = {
    from: tx.from,
    to: tx.to,
    data: tx.data,
    value: toBeHex(BigInt(tx.value)),
    chainId: toBeHex(tx.chainId),
    nonce: toBeHex(tx.nonce),
    gas: toBeHex(tx.gas),
    type: toBeHex(tx.type),
  };
  for (const f of FEES) if (tx[f] !== undefined) out[f] = toBeHex(BigInt(tx[f] as string));
  return out;
}

/** The same fields for ethers' Transaction (a keystore signs them in this page). */
function ethersFields(tx: UnsignedTx): Transaction {
  const fees = Object.fromEntries(FEES.filter((f) => tx[f] !== undefined).map((f) => [f, BigInt(tx[f] as string)]));
  return Transaction.from({
    to: tx.to,
    data: tx.data,
    value: BigInt(tx.value),
    chainId: BigInt(tx.chainId),
    nonce: tx.nonce,
    gasLimit: BigInt(tx.gas),
    type: tx.type,
    ...fees,
  });
}

function checkSigned(raw: string, tx: UnsignedTx): string {
  const signed = Transaction.from(raw);
  const same =
    signed.from !== null &&
    getAddress(signed.from) === getAddress(tx.from) &&
    signed.to !== null &&
    getAddress(signed.to) === getAddress(tx.to) &&
    signed.data === tx.data.toLowerCase() &&
    signed.value === BigInt(tx.value) &&
    signed.chainId === BigInt(tx.chainId);
  if (!same) throw new Error("the wallet signed another transaction than the one shown");
  return raw;
}

interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

export function browserWallet(): Eip1193 | null {
  return ((window as unknown as { ethereum?: Eip1193 }).ethereum ?? null) || null;
}

export async function fromWallet(provider: Eip1193): Promise<Signer> {
  const accounts = (await provider.request({ method: "eth_requestAccounts" })) as string[];
  const address = getAddress(accounts[0]);
  return {
    address,
    kind: "wallet",
    signMessage: async (message) =>
      (await provider.request({
        method: "personal_sign",
        params: [hexlify(toUtf8Bytes(message)), address],
      })) as string,
    signTypedData: async (data) =>
      (await provider.request({
        method: "eth_signTypedData_v4",
        params: [address, JSON.stringify(data)],
      })) as string,
    signTransaction: async (tx) =>
      checkSigned(
        (await provider.request({ method: "eth_signTransaction", params: [rpcFields(tx)] })) as string,
        tx,
      ),
  };
}

export async function fromKeystore(
  json: string,
  passphrase: string,
  progress: (fraction: number) => void,
): Promise<Signer> {
  const wallet = await Wallet.fromEncryptedJson(json, passphrase, progress);
  return {
    address: getAddress(wallet.address),
    kind: "keystore",
    signMessage: (message) => wallet.signMessage(message),
    signTypedData: (data) => {
      const types = { ...data.types };
      delete types.EIP712Domain; // ethers derives it from the domain
      return wallet.signTypedData(data.domain, types, data.message);
    },
    signTransaction: async (tx) => checkSigned(await wallet.signTransaction(ethersFields(tx)), tx),
  };
}

export interface NonceOut {
  nonce: string;
  domain: string;
  uri: string;
  chain_id: number;
}

export const STATEMENT = "Sign in to the cofab consortium portal.";

/** The EIP-4361 message, laid out exactly as the specification (and the node) read it. */
export function siweMessage(n: NonceOut, address: string, issuedAt: Date): string {
  return [
    `${n.domain} wants you to sign in with your Ethereum account:`,
    getAddress(address),
    "",
    STATEMENT,
    "",
    `URI: ${n.uri}`,
    "Version: 1",
    `Chain ID: ${n.chain_id}`,
    `Nonce: ${n.nonce}`,
    `Issued At: ${issuedAt.toISOString()}`,
  ].join("\n");
}
