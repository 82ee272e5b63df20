// Sign cofab's served EIP-712 typed data with ethers v6, as a browser or Node integrator would.
//
// stdin: {"requests": [{"key": "0x<private key>", "typed": <served document>, "message"?: {...}}]}
//   `typed` is what the node serves: GET /jobs/{job}/splits/{split}/acceptance,
//   POST /jobs/{job}/handover/typed-data (both carry their message), or GET /steps/types
//   (domain and types only: the step's message comes in `message`).
// stdout: {"results": [{"signature", "digest", "signer", "v4_types_error"}]}
//   signature: ethers' `Wallet.signTypedData(domain, types, message)` on the `ethers` shape;
//   digest: ethers' own EIP-712 hash of it; signer: the address ethers recovers;
//   v4_types_error: what ethers says when handed the eth_signTypedData_v4 `types` instead.
import { readFileSync } from "node:fs";
import { TypedDataEncoder, Wallet, verifyTypedData } from "ethers";

const input = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const { key, typed, message: given } of input.requests) {
  const { domain, types } = typed.ethers;
  const message = given ?? typed.ethers.message;
  const wallet = new Wallet(key);
  const signature = await wallet.signTypedData(domain, types, message);
  let v4TypesError = null;
  try {
    TypedDataEncoder.hash(typed.domain, typed.types, message);
  } catch (err) {
    v4TypesError = err.shortMessage ?? err.message;
  }
  results.push({
    signature,
    digest: TypedDataEncoder.hash(domain, types, message),
    signer: verifyTypedData(domain, types, message, signature),
    v4_types_error: v4TypesError,
  });
}
process.stdout.write(JSON.stringify({ results }));
