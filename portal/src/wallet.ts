// Keys in the browser: an EIP-1193 wallet (window.ethereum), or a V3 keystore decrypted in
// this page. Either signs Sign-In with Ethereum messages and EIP-712 typed data; the key
// and the passphrase never leave the page.
import { getAddress, hexlify, toUtf8Bytes, Wallet } from "ethers";
import type { TypedData } from "./api";

export interface Signer {
  address: string;
  kind: "wallet" | "keystore";
  signMessage(message: string): Promise<string>;
  signTypedData(data: TypedData): Promise<string>;
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
