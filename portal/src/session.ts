// Who is signed in: the signer (kept in memory only) and the node's bearer token.
import { useEffect, useState } from "preact/hooks";
import { get, post, setToken, type Me } from "./api";
import { siweMessage, type NonceOut, type Signer } from "./wallet";

export interface Session {
  signer: Signer;
  me: Me;
}

let session: Session | null = null;
const listeners = new Set<() => void>();

function emit(): void {
  listeners.forEach((f) => f());
}

export function currentSession(): Session | null {
  return session;
}

export function useSession(): Session | null {
  const [, bump] = useState(0);
  useEffect(() => {
    const f = () => bump((n) => n + 1);
    listeners.add(f);
    return () => void listeners.delete(f);
  }, []);
  return session;
}

/** Sign in with EIP-4361: nonce and origin from the node, the message signed here. */
export async function signIn(signer: Signer): Promise<Session> {
  const n = await get<NonceOut>("/auth/nonce");
  const message = siweMessage(n, signer.address, new Date());
  const signature = await signer.signMessage(message);
  const out = await post<{ token: string }>("/auth/login", { message, signature });
  setToken(out.token);
  const me = await get<Me>("/auth/me");
  session = { signer, me };
  emit();
  return session;
}

export function signOut(): void {
  setToken(null);
  session = null;
  emit();
}
