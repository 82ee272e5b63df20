// Check a cofab step proof bundle with ethers v6 alone, from what the bundle itself says:
// each step's signer is recovered with `verifyTypedData(types.ethers.domain,
// types.ethers.types, record, signature)` and its hash is ethers' own EIP-712 hash.
//
// stdin: a bundle (GET /jobs/{job}/steps/export)
// stdout: {"steps": [{"split", "seq", "signer", "claimed_signer", "digest", "step_hash"}]}
import { readFileSync } from "node:fs";
import { TypedDataEncoder, verifyTypedData } from "ethers";

const bundle = JSON.parse(readFileSync(0, "utf8"));
const { domain, types } = bundle.types.ethers;
const steps = [];
for (const split of bundle.splits) {
  for (const step of split.steps) {
    steps.push({
      split: split.split_id,
      seq: step.record.seq,
      signer: verifyTypedData(domain, types, step.record, step.signature),
      claimed_signer: step.signer,
      digest: TypedDataEncoder.hash(domain, types, step.record),
      step_hash: step.step_hash,
    });
  }
}
process.stdout.write(JSON.stringify({ steps }));
