// Public verification, computed in this browser from the chain alone: a drawing (hashed
// here, never uploaded) with its optional certificate, and a step proof bundle. The page
// reads the chain through the node's read-only JSON-RPC window (POST /rpc, same origin)
// with ethers and the contracts' ABIs from GET /contracts; the node's own opinion is not
// asked. Only the file's fingerprint leaves the page, inside the chain reads.
import {
  AbiCoder,
  Contract,
  getAddress,
  JsonRpcProvider,
  keccak256,
  concat,
  sha256,
  TypedDataEncoder,
  verifyTypedData,
  ZeroAddress,
  ZeroHash,
  type Log,
} from "ethers";
import { useState } from "preact/hooks";
import { explain, get } from "../api";
import { formatDate, formatNumber, label, t } from "../i18n";
import { ErrorMessage, Facts, Hex, Section, Status } from "../ui";

interface Verdict {
  registered: boolean;
  design_id: string;
  designer: string;
  block_number: number;
  block_time: number;
  chain_id: number;
  contract: string;
  kind: string;
  tx_hash: string | null;
  status: string | null;
  priority: string;
  notes: string[];
  lineage: string[];
  successor: string | null;
}

interface StepVerdict {
  ok: boolean;
  steps: number;
  anchored: number;
  findings: { severity: string; code: string; message: string; split_id?: number; seq?: number }[];
}

// --- the chain, read here -----------------------------------------------------------------
interface Contracts {
  chain_id: number;
  contracts: Record<string, { address: string; abi: object[] }>;
}
const LOG_SPAN = 100_000; // POST /rpc answers eth_getLogs over at most this many blocks
const abi = AbiCoder.defaultAbiCoder();

export class Chain {
  constructor(
    readonly provider: JsonRpcProvider,
    readonly chainId: number,
    readonly deployed: Contracts,
  ) {}

  static async open(): Promise<Chain> {
    const deployed = await get<Contracts>("/contracts");
    const url = new URL("/rpc", location.href).href;
    const provider = new JsonRpcProvider(url, deployed.chain_id, { staticNetwork: true, batchMaxCount: 10 });
    return new Chain(provider, deployed.chain_id, deployed);
  }

  contract(name: string, address?: string): Contract {
    const c = this.deployed.contracts[name];
    return new Contract(address ?? c.address, c.abi as never, this.provider);
  }

  /** Every log of `filter`, asked in spans the node's window accepts. */
  async logs(c: Contract, filter: unknown): Promise<Log[]> {
    const latest = await this.provider.getBlockNumber();
    const out: Log[] = [];
    for (let from = 0; from <= latest; from += LOG_SPAN) {
      const to = Math.min(latest, from + LOG_SPAN - 1);
      out.push(...((await c.queryFilter(filter as never, from, to)) as Log[]));
    }
    return out;
  }
}

const FLAG_REVOKED = 1n;
const FLAG_SUPERSEDED = 2n;
const FLAG_BATCH = 4n;

function statusOf(flags: bigint, revokedAt: bigint): string {
  if (revokedAt > 0n || flags & FLAG_REVOKED) return "revoked";
  return flags & FLAG_SUPERSEDED ? "superseded" : "active";
}

/** The log where `designId` was recorded (revealed or claimed from a batch), if any. */
async function recordedLog(chain: Chain, registry: Contract, designId: string) {
  const revealed = await chain.logs(registry, registry.filters.DesignRegistered(designId));
  const claimed = await chain.logs(registry, registry.filters.DesignClaimed(designId));
  const log = [...revealed, ...claimed].at(-1) as (Log & { args?: { parentId: string } }) | undefined;
  return log;
}

/** The parents of `designId`, nearest first, from the registry's events. */
async function lineage(chain: Chain, registry: Contract, first: string | null): Promise<string[]> {
  const parents: string[] = [];
  let parent = first;
  while (parent && parent !== ZeroHash && parents.length < 32 && !parents.includes(parent)) {
    parents.push(parent);
    const log = await recordedLog(chain, registry, parent);
    parent = log?.args ? String(log.args.parentId) : null;
  }
  return parents;
}

interface Certificate {
  design_id: string;
  designer: string;
  metadata_hash: string;
  parent_id: string | null;
  chain_id: number;
  contract: string;
  tx_hash: string;
  block_number: number;
  block_hash: string;
  block_time: number;
  commitment?: { value: string; salt: string } | null;
  batch?: { root: string; count: number; manifest_hash: string; proof: string[] } | null;
}

class Refused extends Error {}

/** OpenZeppelin StandardMerkleTree: leaf = keccak(keccak(abi.encode(values))), sorted pairs. */
export function merkleRoot(types: string[], values: unknown[], proof: string[]): string {
  let node = keccak256(keccak256(abi.encode(types, values)));
  for (const sibling of proof) {
    node = keccak256(BigInt(node) < BigInt(sibling) ? concat([node, sibling]) : concat([sibling, node]));
  }
  return node;
}

function topicAddress(topic: string): string {
  return getAddress("0x" + topic.slice(26));
}

/** The certificate's claims, each checked against the chain (Refused names the first false one). */
async function checkCertificate(chain: Chain, digest: string, cert: Certificate, registry: Contract) {
  if (cert.design_id.toLowerCase() !== digest) throw new Refused(t("verify.x.fileMismatch"));
  if (Number(cert.chain_id) !== chain.chainId) throw new Refused(t("verify.x.chain", { chain: cert.chain_id }));
  if (getAddress(cert.contract) !== getAddress(await registry.getAddress())) {
    throw new Refused(t("verify.x.contract", { contract: cert.contract }));
  }
  const receipt = await chain.provider.getTransactionReceipt(cert.tx_hash);
  if (!receipt || receipt.status !== 1 || receipt.blockNumber !== Number(cert.block_number)) {
    throw new Refused(t("verify.x.tx", { tx: cert.tx_hash }));
  }
  const block = await chain.provider.getBlock(receipt.blockNumber);
  if (!block || block.hash?.toLowerCase() !== cert.block_hash.toLowerCase() || block.timestamp !== Number(cert.block_time)) {
    throw new Refused(t("verify.x.block", { block: cert.block_number }));
  }
  const parent = cert.parent_id ?? ZeroHash;
  const designer = getAddress(cert.designer);
  const ours = receipt.logs.filter((l) => getAddress(l.address) === getAddress(cert.contract));
  if (cert.commitment) {
    const value = keccak256(
      abi.encode(
        ["bytes32", "bytes32", "bytes32", "address", "bytes32"],
        [cert.design_id, cert.metadata_hash, parent, designer, cert.commitment.salt],
      ),
    );
    const topic = registry.interface.getEvent("DesignCommitted")!.topicHash;
    const log = ours.find((l) => l.topics[0] === topic && l.topics[1] === value);
    if (value !== cert.commitment.value.toLowerCase() || !log || topicAddress(log.topics[2]) !== designer) {
      throw new Refused(t("verify.x.commitment"));
    }
    return "single";
  }
  if (!cert.batch) throw new Refused(t("verify.x.commitment"));
  const topic = registry.interface.getEvent("BatchRegistered")!.topicHash;
  const log = ours.find((l) => l.topics[0] === topic && l.topics[1] === cert.batch!.root.toLowerCase());
  const root = merkleRoot(
    ["bytes32", "bytes32", "bytes32", "address"],
    [cert.design_id, cert.metadata_hash, parent, designer],
    cert.batch.proof,
  );
  if (!log || topicAddress(log.topics[2]) !== designer || root !== cert.batch.root.toLowerCase()) {
    throw new Refused(t("verify.x.batch"));
  }
  return "batch";
}

/** Who registered the file hashing to `digest`, when, its lineage and status: from the chain. */
export async function designVerdict(digest: string, cert: Certificate | null): Promise<Verdict | null> {
  const chain = await Chain.open();
  const registry = chain.contract("DesignRegistry", cert?.contract);
  const [designer, registeredAt, blockNumber, flags] = (await registry.design(digest)) as [string, bigint, bigint, bigint];
  const known = designer !== ZeroAddress;
  const revokedAt = known ? ((await registry.revokedAt(digest)) as bigint) : 0n;
  const log = known ? await recordedLog(chain, registry, digest) : undefined;
  const superseded = known ? await chain.logs(registry, registry.filters.DesignSuperseded(digest)) : [];
  const successor = (superseded.at(-1) as { args?: { successorId: string } } | undefined)?.args?.successorId ?? null;
  const parents = await lineage(chain, registry, log?.args ? String(log.args.parentId) : (cert?.parent_id ?? null));
  const notes: string[] = [];
  if (revokedAt > 0n) notes.push(t("verify.x.revokedAt", { block: formatNumber(revokedAt) }));
  const base = {
    registered: true,
    design_id: digest,
    chain_id: chain.chainId,
    contract: await registry.getAddress(),
    lineage: parents,
    successor,
    notes,
  };
  if (cert) {
    const kind = await checkCertificate(chain, digest, cert, registry);
    const certDesigner = getAddress(cert.designer);
    let priority = "held";
    let status: string | null = null;
    if (!known) priority = "unrevealed";
    else if (designer === certDesigner && Number(blockNumber) === Number(cert.block_number)) status = statusOf(flags, revokedAt);
    else if (Number(blockNumber) <= Number(cert.block_number)) priority = "preceded";
    else priority = "unrevealed";
    return {
      ...base,
      designer: certDesigner,
      block_number: Number(cert.block_number),
      block_time: Number(cert.block_time),
      kind,
      tx_hash: cert.tx_hash,
      status,
      priority,
    };
  }
  if (!known) return null;
  return {
    ...base,
    designer: getAddress(designer),
    block_number: Number(blockNumber),
    block_time: Number(registeredAt),
    kind: flags & FLAG_BATCH ? "batch" : "single",
    tx_hash: log?.transactionHash ?? null,
    status: statusOf(flags, revokedAt),
    priority: "held",
  };
}

// --- a step proof bundle, checked here ------------------------------------------------------
interface BundleStep {
  record: Record<string, unknown>;
  step_hash: string;
  signature: string | null;
  signer: string | null;
  anchor_index: number | null;
  proof: string[] | null;
}
interface Bundle {
  chain_id: number;
  traceability: string;
  job_id: number;
  domain: Record<string, unknown> | null;
  types: { ethers?: { domain: Record<string, unknown>; types: Record<string, { name: string; type: string }[]> } } | null;
  splits: { split_id: number; anchors: { index: number; root: string; head: string; from_seq: number; to_seq: number }[]; steps: BundleStep[] }[];
}

const STEP_TYPES = {
  ProductionStep: [
    { name: "jobId", type: "uint256" },
    { name: "splitId", type: "uint256" },
    { name: "seq", type: "uint64" },
    { name: "prevHash", type: "bytes32" },
    { name: "bizStep", type: "string" },
    { name: "payloadHash", type: "bytes32" },
    { name: "evidenceHash", type: "bytes32" },
    { name: "time", type: "uint64" },
    { name: "member", type: "address" },
  ],
};
const ROLE_FACTORY = 2;

/** Each step's signature recovered here, its place in the chain of hashes, and its Merkle
 * proof against a root the Traceability contract holds. */
export async function stepsVerdict(bundle: Bundle): Promise<StepVerdict> {
  const chain = await Chain.open();
  const findings: StepVerdict["findings"] = [];
  const bad = (code: string, message: string, split_id?: number, seq?: number) =>
    findings.push({ severity: "error", code, message, split_id, seq });
  if (Number(bundle.chain_id) !== chain.chainId) bad("wrong-chain", t("verify.x.chain", { chain: bundle.chain_id }));
  const trace = chain.contract("Traceability", bundle.traceability);
  const board = chain.contract("JobBoard");
  const consortium = chain.contract("Consortium");
  const domain = bundle.types?.ethers?.domain ?? { name: "cofab", version: "1", chainId: chain.chainId, verifyingContract: bundle.traceability };
  const types = bundle.types?.ethers?.types ?? STEP_TYPES;
  const latest = await chain.provider.getBlock("latest");
  let steps = 0;
  let anchored = 0;
  for (const split of bundle.splits) {
    const sid = Number(split.split_id);
    const factory = getAddress((await board.splitFactory(bundle.job_id, sid)) as string);
    const roots = new Map<number, string>();
    for (const a of split.anchors) {
      if (await trace.isAnchor(bundle.job_id, sid, a.index, a.root, a.head)) roots.set(Number(a.index), a.root.toLowerCase());
      else bad("anchor-not-on-chain", t("verify.x.anchor", { index: a.index, split: sid }), sid);
    }
    let prev: string = ZeroHash;
    const sorted = [...split.steps].sort((x, y) => Number(x.record.seq) - Number(y.record.seq));
    for (const [i, s] of sorted.entries()) {
      steps++;
      const seq = Number(s.record.seq);
      if (seq !== i) bad("gap", t("verify.x.gap", { seq: i, split: sid }), sid, i);
      const digest = TypedDataEncoder.hash(domain, types, s.record);
      if (digest !== s.step_hash.toLowerCase()) bad("hash", t("verify.x.hash", { seq, split: sid }), sid, seq);
      if (String(s.record.prevHash).toLowerCase() !== prev) bad("chain", t("verify.x.link", { seq, split: sid }), sid, seq);
      prev = digest;
      let signer = "";
      try {
        signer = verifyTypedData(domain, types, s.record, s.signature ?? "0x");
      } catch {
        bad("signature", t("verify.x.signature", { seq, split: sid }), sid, seq);
        continue;
      }
      const member = getAddress(String(s.record.member));
      const allowed =
        member === factory &&
        (signer === factory ||
          ((await consortium.isAuthorizedSigner(factory, signer, ROLE_FACTORY, latest!.number, latest!.timestamp)) as boolean));
      if (!allowed) bad("signer", t("verify.x.signer", { seq, split: sid, signer }), sid, seq);
      if (s.anchor_index !== null && s.proof) {
        const root = roots.get(Number(s.anchor_index));
        if (root && merkleRoot(["uint64", "bytes32"], [seq, digest], s.proof) === root) anchored++;
        else bad("proof", t("verify.x.proof", { seq, split: sid }), sid, seq);
      }
    }
  }
  return { ok: findings.length === 0, steps, anchored, findings };
}

/** SHA-256 of a file, read in slices so a large drawing shows progress. */
export async function hashFile(file: File, progress: (f: number) => void): Promise<string> {
  const bytes = new Uint8Array(file.size);
  const slice = 8 * 1024 * 1024;
  for (let at = 0; at < file.size; at += slice) {
    const part = new Uint8Array(await file.slice(at, at + slice).arrayBuffer());
    bytes.set(part, at);
    progress(Math.min(1, (at + part.length) / Math.max(1, file.size)));
  }
  if (crypto.subtle) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return "0x" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return sha256(bytes); // a page served over plain HTTP to another host has no crypto.subtle
}

function DropZone(props: { id: string; label: string; accept?: string; file: File | null; onFile: (f: File | null) => void }) {
  const [over, setOver] = useState(false);
  return (
    <div
      class={over ? "drop over" : "drop"}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        props.onFile(e.dataTransfer?.files?.[0] ?? null);
      }}
    >
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="file"
        accept={props.accept}
        onChange={(e) => props.onFile((e.currentTarget as HTMLInputElement).files?.[0] ?? null)}
      />
      {props.file && <span class="file-name">{props.file.name}</span>}
    </div>
  );
}

function DesignVerdict({ v }: { v: Verdict }) {
  return (
    <div class="verdict ok" data-testid="design-verdict">
      <p class="verdict-title">✔ {t("verify.design.registered")}</p>
      <Facts
        rows={[
          [t("verify.designer"), <Hex value={v.designer} />],
          [t("verify.when"), formatDate(v.block_time)],
          [t("verify.block"), formatNumber(v.block_number)],
          [t("verify.status"), v.status ? label("design.status", v.status) : label("design.status", "unrevealed")],
          [t("verify.kind"), label("verify.kind", v.kind)],
          [t("verify.priority"), label("verify.priority", v.priority)],
          [t("verify.tx"), v.tx_hash ? <Hex value={v.tx_hash} /> : t("common.none")],
          [t("verify.contract"), <Hex value={v.contract} />],
          [t("verify.chain"), String(v.chain_id)],
          [t("verify.x.lineage"), v.lineage.length ? v.lineage.map((p) => <Hex value={p} />) : t("verify.x.original")],
          [t("verify.x.successor"), v.successor ? <Hex value={v.successor} /> : t("common.none")],
          [t("verify.notes"), v.notes.length ? v.notes.join("; ") : t("common.none")],
        ]}
      />
    </div>
  );
}

function DesignCheck() {
  const [file, setFile] = useState<File | null>(null);
  const [cert, setCert] = useState<File | null>(null);
  const [hash, setHash] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [verdict, setVerdict] = useState<Verdict | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function check(e: Event) {
    e.preventDefault();
    setVerdict(null);
    setMissing(false);
    setError(null);
    if (!file) {
      setError(t("verify.design.pick"));
      return;
    }
    try {
      const digest = await hashFile(file, (f) =>
        setStatus(t("verify.design.hashing", { percent: `${Math.round(f * 100)} %` })),
      );
      setHash(digest);
      let certificate: Certificate | null = null;
      if (cert) {
        try {
          certificate = JSON.parse(await cert.text()) as Certificate;
        } catch {
          throw new Refused(t("verify.x.certJson"));
        }
      }
      setStatus(t("verify.x.reading"));
      const found = await designVerdict(digest, certificate); // the drawing stays here
      setStatus(null);
      if (found) setVerdict(found);
      else setMissing(true);
    } catch (err) {
      setStatus(null);
      setError(err instanceof Refused ? t("verify.x.refused", { why: err.message }) : explain(err));
    }
  }

  return (
    <Section id="design" title={t("verify.design.title")}>
      <form onSubmit={check}>
        <p>{t("verify.design.drop")}</p>
        <DropZone id="design-file" label={t("verify.design.file")} file={file} onFile={setFile} />
        <DropZone id="design-cert" label={t("verify.design.cert")} accept=".json,application/json" file={cert} onFile={setCert} />
        <button type="submit">{t("verify.design.button")}</button>
      </form>
      <Status text={status} />
      {hash && <p class="hash">{t("verify.design.hash", { hash })}</p>}
      {verdict && <DesignVerdict v={verdict} />}
      {missing && (
        <p class="verdict bad" role="alert" data-testid="design-verdict">
          ✘ {t("verify.design.notRegistered")}
        </p>
      )}
      <ErrorMessage text={error} />
    </Section>
  );
}

function StepsCheck() {
  const [file, setFile] = useState<File | null>(null);
  const [verdict, setVerdict] = useState<StepVerdict | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function check(e: Event) {
    e.preventDefault();
    setVerdict(null);
    setError(null);
    if (!file) {
      setError(t("verify.steps.pick"));
      return;
    }
    let bundle: Bundle;
    try {
      bundle = JSON.parse(await file.text()) as Bundle;
      if (!Array.isArray(bundle.splits)) throw new Error("no splits");
    } catch {
      setError(t("verify.steps.notJson"));
      return;
    }
    try {
      setVerdict(await stepsVerdict(bundle)); // the bundle stays here
    } catch (err) {
      setError(explain(err));
    }
  }

  return (
    <Section id="steps" title={t("verify.steps.title")}>
      <form onSubmit={check}>
        <DropZone id="steps-file" label={t("verify.steps.file")} accept=".json,application/json" file={file} onFile={setFile} />
        <button type="submit">{t("verify.steps.button")}</button>
      </form>
      {verdict && (
        <div class={verdict.ok ? "verdict ok" : "verdict bad"} data-testid="steps-verdict" role="status">
          <p class="verdict-title">
            {verdict.ok ? `✔ ${t("verify.steps.ok")}` : `✘ ${t("verify.steps.bad")}`}
          </p>
          <p>{t("verify.steps.count", { steps: formatNumber(verdict.steps), anchored: formatNumber(verdict.anchored) })}</p>
          {verdict.findings.length > 0 && (
            <>
              <h3>{t("verify.steps.findings")}</h3>
              <ul>
                {verdict.findings.map((f, i) => (
                  <li key={i}>
                    <strong>{f.code}</strong>: {f.message}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
      <ErrorMessage text={error} />
    </Section>
  );
}

export function Verify() {
  return (
    <>
      <h1>{t("verify.title")}</h1>
      <p>{t("verify.intro")}</p>
      <p>{t("verify.x.browser")}</p>
      <DesignCheck />
      <StepsCheck />
    </>
  );
}
