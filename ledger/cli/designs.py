"""`cofab design`: register drawings, prove priority, license and share them encrypted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ledger.cli.common import (
    App,
    JsonOpt,
    err,
    handled,
    out,
    print_json,
    shared,
)
from ledger.core.abi import hex32
from ledger.core.errors import InvalidInput
from ledger.core.types import Record
from ledger.designs.certificates import Certificate, CertificateInvalid, lookup, verify_certificate
from ledger.designs.client import design_id
from ledger.designs.crypto import encryption_key, public_bytes
from ledger.designs.files import NewDesign, sha256_file, sha256_files
from ledger.designs.service import DesignService, load_package
from ledger.eth.chain import attach
from ledger.eth.tx import Sender

app = App(help="Design files: registration, certificates, licences, encrypted sharing.")

IdArg = Annotated[str, typer.Argument(help="Design id: the file's SHA-256 (64 hex digits)")]


def _service(ctx: typer.Context) -> tuple[DesignService, Sender]:
    node = shared(ctx).signing()
    return node.design_service(), node.sender()


def _print(record: Record, as_json: bool) -> None:
    if as_json:
        print_json(record)
        return
    for name, value in record.model_dump(mode="json").items():
        out.print(f"{name:18} {value}", highlight=False)


def _hash_with_progress(paths: list[Path]) -> list[bytes]:
    total = sum(p.stat().st_size for p in paths)
    columns = (
        TextColumn("hashing {task.fields[files]} file(s)"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("hash", total=total, files=len(paths))
        return sha256_files(paths, lambda n: progress.advance(task, n))


@app.command("register")
def register(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Design files; several make one batch")],
    parent: Annotated[
        str | None, typer.Option("--parent", help="Id of the design these are versions of")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title kept in the metadata")] = None,
    bundle_dir: Annotated[
        Path | None,
        typer.Option("--bundle-dir", help="Also write each certificate here as <file>.cert.json"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Timestamp files on chain: one transaction for one file or for a whole batch.

    Only a commitment naming you goes on chain; the content hashes are revealed when a
    design is first licensed, shared or revoked (or with `cofab design reveal`).
    """
    with handled():
        for path in files:
            if not path.is_file():
                raise InvalidInput(f"{path} is not a readable file")
        if parent is not None:
            design_id(parent, "parent design id")
        svc, sender = _service(ctx)
        digests = _hash_with_progress(files)
        items = [
            NewDesign.from_path(p, d, title=title) for p, d in zip(files, digests, strict=True)
        ]
        with out.status(f"registering {len(items)} design(s)"):
            certs = svc.register(sender, items, parent)
        if bundle_dir is not None:
            bundle_dir.mkdir(parents=True, exist_ok=True)
            for path, cert in zip(files, certs, strict=True):
                (bundle_dir / f"{path.name}.cert.json").write_text(cert.dumps())
        if as_json:
            print_json([c.to_json() for c in certs])
            return
        first = certs[0]
        how = f"one batch of {len(certs)} files" if len(certs) > 1 else "one file"
        out.print(
            f"registered {how} by {first.designer} in block {first.block_number} "
            f"(tx {first.tx_hash}); committed, revealed when first used",
            highlight=False,
        )
        for path, cert in zip(files, certs, strict=True):
            out.print(f"  {cert.design_id.hex()}  {path}", highlight=False)
        where = bundle_dir or svc.certificates_dir
        out.print(f"certificates in {where}", highlight=False)


@app.command("show")
def show(
    ctx: typer.Context,
    design: IdArg,
    as_json: JsonOpt = False,
) -> None:
    """One design: registrant, time, block, status (and what this node knows of it)."""
    with handled():
        _print(shared(ctx).attach().design_service().show(design), as_json)


@app.command("list")
def list_(
    ctx: typer.Context,
    designer: Annotated[str | None, typer.Option(help="Only this designer's designs")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Designs recorded on chain, and this node's designs not revealed yet."""
    with handled():
        rows = shared(ctx).attach().design_service().listing(designer)
        if as_json:
            print_json(rows)
            return
        table = Table("design id", "designer", "block", "status", "title")
        for r in rows:
            meta = r.metadata or {}
            table.add_row(
                hex32(r.design_id)[:18] + "…",
                r.designer,
                str(r.block_number),
                r.status,
                str(meta.get("title") or meta.get("file_name") or ""),
            )
        out.print(table)


@app.command("certificate")
def certificate(
    ctx: typer.Context,
    design: IdArg,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write it to this file")] = None,
) -> None:
    """Print (or write) the certificate this node issued for a design."""
    with handled():
        cert = shared(ctx).attach().design_service().certificate(design)
        if cert is None:
            raise InvalidInput(f"this node holds no certificate for design {design}")
        if out_file is None:
            typer.echo(cert.dumps(), nl=False)
        else:
            out_file.write_text(cert.dumps())
            out.print(f"wrote {out_file}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The design file")],
    proof: Annotated[
        Path | None, typer.Option("--proof", help="The certificate (proof bundle) JSON")
    ] = None,
    contract: Annotated[
        str | None,
        typer.Option(help="DesignRegistry address, when checking without a bundle"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a file against the chain: exit 0 registered, 1 not registered, 2 bundle mismatch.

    Needs only the file, the bundle and a JSON-RPC endpoint.
    """
    with handled():
        if not file.is_file():
            raise InvalidInput(f"{file} is not a readable file")
        cert = None
        if proof is not None:
            try:
                cert = Certificate.loads(proof.read_bytes())
            except OSError as exc:
                raise CertificateInvalid(f"cannot read bundle {proof}: {exc.strerror}") from None
        digest = sha256_file(file)
        chain = attach(shared(ctx).endpoint())
        if cert is not None:
            verdict = verify_certificate(chain.w3, digest, cert)
        else:
            address = contract or _local_registry(shared(ctx).directory, chain.chain_id)
            verdict = lookup(chain.w3, address, digest)
        data = verdict.model_dump(mode="json")
        if as_json:
            print_json(data)
            return
        out.print(
            f"registered: {file} (sha256 {digest.hex()})\n"
            f"  by       {verdict.designer}\n"
            f"  block    {verdict.block_number} on chain {verdict.chain_id}\n"
            f"  time     {verdict.block_time} ({_utc(verdict.block_time)})\n"
            f"  kind     {verdict.kind}"
            + (f", tx {verdict.tx_hash}" if verdict.tx_hash else "")
            + f"\n  priority {verdict.priority}"
            + (f", status {verdict.status}" if verdict.status else ""),
            highlight=False,
        )
        for note in verdict.notes:
            out.print(f"  note     {note}", highlight=False)


def _utc(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _local_registry(directory: Path, chain_id: int) -> str:
    from ledger.eth import deployment as deploy_mod

    record = deploy_mod.load(directory, chain_id)
    if record is None or "DesignRegistry" not in record.contracts:
        raise InvalidInput("without --proof, give the registry address with --contract")
    return record.contracts["DesignRegistry"].address


@app.command("reveal")
def reveal(
    ctx: typer.Context,
    design: IdArg,
    proof: Annotated[
        Path | None,
        typer.Option("--proof", help="The certificate, if this node did not issue it"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a committed design (or batch member) on chain now, dated at its commitment.

    Licensing, sharing, revoking and versioning do this by themselves when first needed.
    """
    with handled():
        cert = None
        if proof is not None:
            try:
                cert = Certificate.loads(proof.read_bytes())
            except OSError as exc:
                raise CertificateInvalid(f"cannot read bundle {proof}: {exc.strerror}") from None
        svc, sender = _service(ctx)
        _print(svc.reveal(sender, design, cert), as_json)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    design: IdArg,
    as_json: JsonOpt = False,
) -> None:
    """Revoke your design: no new licences, shares or versions; its licences lapse."""
    with handled():
        svc, sender = _service(ctx)
        _print(svc.revoke(sender, design), as_json)


@app.command("supersede")
def supersede(
    ctx: typer.Context,
    design: IdArg,
    by: Annotated[str, typer.Option("--by", help="Id of the newer version")],
    as_json: JsonOpt = False,
) -> None:
    """Mark your design as superseded by a newer version (no new licences of the old one)."""
    with handled():
        svc, sender = _service(ctx)
        _print(svc.supersede(sender, design, by), as_json)


@app.command("license")
def license_(
    ctx: typer.Context,
    design: IdArg,
    to: Annotated[str, typer.Option("--to", help="Member address of the licensee")],
    royalty_ppm: Annotated[
        int | None, typer.Option("--royalty-ppm", help="Grant: royalty, parts per million")
    ] = None,
    revoke_: Annotated[bool, typer.Option("--revoke", help="Revoke the licence")] = False,
    block: Annotated[
        int | None, typer.Option("--block", help="Show the licence at this past block")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant (--royalty-ppm), revoke (--revoke) or show (neither) a licence of your design."""
    with handled():
        if royalty_ppm is not None and revoke_:
            raise InvalidInput("give --royalty-ppm to grant or --revoke to revoke, not both")
        if royalty_ppm is None and not revoke_:
            node = shared(ctx).attach()
            _print(node.designs.licence(design, to, block), as_json)
            return
        svc, sender = _service(ctx)
        if revoke_:
            licence = svc.revoke_licence(sender, design, to)
        else:
            assert royalty_ppm is not None
            licence = svc.grant_licence(sender, design, to, royalty_ppm)
        _print(licence, as_json)


@app.command("key")
def key_(
    ctx: typer.Context,
    publish: Annotated[
        bool, typer.Option("--publish", help="Publish it as your Consortium encryption key")
    ] = False,
) -> None:
    """Show (or publish) your X25519 encryption key, derived from your Ethereum key."""
    with handled():
        node = shared(ctx).signing()
        sender = node.sender()
        if publish:
            public, receipt = node.design_service().publish_key(sender)
            out.print(
                f"published encryption key 0x{public.hex()} for {sender.address} "
                f"(tx {receipt['transactionHash'].to_0x_hex()})",
                highlight=False,
            )
        else:
            public = public_bytes(encryption_key(bytes(sender.account.key)))
            out.print(f"0x{public.hex()}", highlight=False)


@app.command("share")
def share(
    ctx: typer.Context,
    design: IdArg,
    to: Annotated[list[str], typer.Option("--to", help="Licensed member address (repeatable)")],
    file: Annotated[
        Path | None, typer.Option("--file", help="The design file, if this node lacks it")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt your design for licensed members and record the share on chain."""
    with handled():
        plaintext = None
        if file is not None:
            try:
                plaintext = file.read_bytes()
            except OSError as exc:
                raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
        svc, sender = _service(ctx)
        shares = svc.share(sender, design, to, plaintext)
        if as_json:
            print_json(shares)
            return
        for s in shares:
            out.print(
                f"shared {hex32(s.design_id)} with {s.recipient} at block {s.block_number}: "
                f"ciphertext {s.ciphertext_hash.hex()}",
                highlight=False,
            )


@app.command("import-share")
def import_share(
    ctx: typer.Context,
    package: Annotated[
        Path, typer.Argument(help="A share package downloaded from the designer's node")
    ],
) -> None:
    """Keep a share package in this node (checked against the chain): `fetch` decrypts it."""
    with handled():
        data = load_package(package)
        options = shared(ctx)
        key = options.key
        node = options.attach()
        share = node.design_service().import_package(data, node.keyring.find(key).address)
        out.print(
            f"imported the share of {hex32(share.design_id)} to {share.recipient}: "
            f"`cofab design fetch {hex32(share.design_id)} --from {key}` decrypts it",
            highlight=False,
        )


@app.command("fetch")
def fetch(
    ctx: typer.Context,
    design: IdArg,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Where to write the file \\[default: ./<id>]")
    ] = None,
    package: Annotated[
        Path | None,
        typer.Option("--package", help="A share package downloaded from GET /designs/{id}/share"),
    ] = None,
) -> None:
    """Decrypt a design shared with you, after checking the share against the chain."""
    with handled():
        did = design_id(design)
        target = out_file or Path(did.hex())
        if target.exists():
            raise InvalidInput(f"{target} exists; not overwriting it")
        data = load_package(package) if package is not None else None
        options = shared(ctx)
        node = options.attach()
        account = node.keyring.unlock(options.key, options.passphrase(node))
        plaintext = node.design_service().fetch(account, did, data)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(plaintext)
        os.replace(tmp, target)
        out.print(f"wrote {target} ({len(plaintext)} bytes, sha256 {did.hex()})", highlight=False)
