// Check cofab's design certificates and batch manifests with @openzeppelin/merkle-tree, as a
// third party would, using nothing from cofab.
//
// stdin: {"certificates": [<certificate>...], "batch"?: <GET /designs/batches/{root} body>,
//         "prove"?: ["0x<design id>"...]}
// stdout: {"verified": [true|"<error>"...],      one per batch certificate, in order:
//            StandardMerkleTree.verify(root, leaf_encoding,
//                                      [design_id, metadata_hash, parent_id, designer], proof)
//          "root": "0x…",                         the loaded manifest's root
//          "proofs": [{"value": [...], "proof": [...], "ok": true}...]}  for `prove`
import { readFileSync } from "node:fs";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const input = JSON.parse(readFileSync(0, "utf8"));
const out = { verified: [] };
for (const c of input.certificates ?? []) {
  const leaf = c.batch.leaf_fields.map((field) => c[field]);
  try {
    out.verified.push(StandardMerkleTree.verify(c.batch.root, c.batch.leaf_encoding, leaf, c.batch.proof));
  } catch (err) {
    out.verified.push(String(err.message ?? err));
  }
}
if (input.batch) {
  const tree = StandardMerkleTree.load(input.batch.manifest);
  tree.validate();
  out.root = tree.root;
  out.proofs = [];
  for (const id of input.prove ?? []) {
    const [, value] = [...tree.entries()].find(([, v]) => v[0] === id);
    const proof = tree.getProof(value);
    out.proofs.push({ value, proof, ok: StandardMerkleTree.verify(tree.root, tree.leafEncoding, value, proof) });
  }
}
process.stdout.write(JSON.stringify(out));
