// Sign the unsigned transactions a cofab node serves (`?unsigned=1` on a write endpoint)
// with ethers v6, as a wallet or a Node integrator would, for relaying through POST /tx.
//
// stdin: {"requests": [{"key": "0x<private key>", "tx": <served unsigned transaction>}]}
// stdout: {"results": [{"raw", "hash", "from"}]}
//   raw: ethers' `Wallet.signTransaction` of the served fields (summary dropped); hash: its
//   transaction hash; from: the sender ethers recovers from it.
import { readFileSync } from "node:fs";
import { Transaction, Wallet } from "ethers";

const FIELDS = ["to", "data", "value", "chainId", "nonce", "gas", "type",
  "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"];

const input = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const { key, tx } of input.requests) {
  const fields = Object.fromEntries(FIELDS.filter((f) => f in tx).map((f) => [f, tx[f]]));
  fields.gasLimit = fields.gas;
  delete fields.gas;
  const raw = await new Wallet(key).signTransaction(fields);
  const parsed = Transaction.from(raw);
  results.push({ raw, hash: parsed.hash, from: parsed.from });
}
process.stdout.write(JSON.stringify({ results }));
