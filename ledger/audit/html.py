"""The audit report as a page a person reads: findings first, then the story."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1d2430}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ccd}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid #dde;
padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f4f8}
code{font-size:.85em;word-break:break-all}.muted{color:#667}
.sev{font-weight:600;padding:.1rem .4rem;border-radius:.3rem;color:#fff}
.critical{background:#b3261e}.major{background:#c25e00}.minor{background:#6b6f7a}
.info{background:#2f6fb3}.verdict-clean{color:#1b7f3b}.verdict-findings{color:#b3261e}
"""


def _t(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 20 else text[:12] + "…" + text[-6:]


def _evidence(ev: dict[str, Any]) -> str:
    parts = []
    for key in ("split", "seq", "anchor", "block", "tx", "step", "signer"):
        if key in ev and ev[key] is not None:
            parts.append(
                f"{key} <code title='{escape(str(ev[key]))}'>{escape(_short(ev[key]))}</code>"
            )
    return ", ".join(parts)


def render(report: dict[str, Any]) -> str:
    job, summary = report["job"], report["summary"]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Audit of job {job['id']}</title><style>{STYLE}</style></head><body>",
        f"<h1>Audit of job {job['id']}</h1>",
        f"<p class='muted'>chain {report['chain_id']} · JobBoard "
        f"<code>{escape(report['contracts']['JobBoard'])}</code> · report hash "
        f"<code>{escape(report.get('report_hash', ''))}</code></p>",
        f"<p class='verdict-{summary['verdict']}'><strong>Verdict: {summary['verdict']}"
        f"</strong> — {summary['critical']} critical, {summary['major']} major, "
        f"{summary['minor']} minor, {summary['info']} informational finding(s).</p>",
        "<h2>Findings</h2>",
    ]
    if report["findings"]:
        out.append("<table><tr><th>severity</th><th>finding</th><th>evidence</th></tr>")
        for f in report["findings"]:
            out.append(
                f"<tr><td><span class='sev {f['severity']}'>{f['severity']}</span></td>"
                f"<td>{escape(f['statement'])}<br><span class='muted'>{escape(f['code'])}"
                f"</span></td><td>{_evidence(f['evidence'])}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>None: every check passed.</p>")
    out += [
        "<h2>The order</h2><table>",
        f"<tr><th>buyer</th><td><code>{escape(job['buyer'])}</code></td></tr>",
        f"<tr><th>design</th><td><code>{escape(str(job['design']))}</code> by "
        f"<code>{escape(job['designer'])}</code></td></tr>",
        f"<tr><th>quantity · price</th><td>{job['quantity']} · {job['price']:,} "
        f"(token <code>{escape(job['token'])}</code>)</td></tr>",
        f"<tr><th>deadline</th><td>{_t(job['deadline'])}</td></tr>",
        f"<tr><th>status</th><td>{escape(job['status'])}</td></tr></table>",
        "<h2>Splits and their chains of steps</h2><table><tr><th>split</th><th>factory · step"
        "</th><th>status</th><th>share</th><th>steps (bundled / anchored / proven)</th>"
        "<th>anchors</th></tr>",
    ]
    for s in report["splits"]:
        deps = f" after {', '.join(map(str, s['depends_on']))}" if s["depends_on"] else ""
        anchors = (
            "<br>".join(
                f"#{a['index']}: {a['from_seq']}&ndash;{a['to_seq']} at {_t(a['time'])}"
                for a in s.get("anchors", [])
            )
            or "—"
        )
        out.append(
            f"<tr><td>{s['split']}{deps}</td><td><code>{escape(s['factory'])}</code><br>"
            f"{escape(s['step'])} &times; {s['quantity']}</td><td>{escape(s['status'])}</td>"
            f"<td>{s['share_ppm'] / 10_000:.2f} %</td><td>{s.get('steps_in_bundles', 0)} / "
            f"{s.get('steps_anchored_on_chain', 0)} / {s.get('steps_proven', 0)}</td>"
            f"<td>{anchors}</td></tr>"
        )
    out.append("</table><h2>Custody</h2>")
    if report.get("custody"):
        out.append(
            "<table><tr><th>time</th><th>lot</th><th>from &rarr; to</th><th>signed by</th></tr>"
        )
        for h in report["custody"]:
            out.append(
                f"<tr><td>{_t(h['time'])}</td><td><code>{escape(_short(h['lot']))}</code> &times; "
                f"{h['quantity']}</td><td>split {h['from_split']} &rarr; split {h['to_split']}</td>"
                f"<td><code>{escape(_short(h['from_signer']))}</code> and <code>"
                f"{escape(_short(h['to_signer']))}</code></td></tr>"
            )
        out.append("</table><table style='display:none'>")
    else:
        out.append("<p>No lot changed hands between splits.</p><table style='display:none'>")
    m = report["money"]
    out += [
        "</table><h2>Money</h2><table>",
        f"<tr><th>price</th><td>{m['price']:,}</td></tr>",
        f"<tr><th>shares</th><td>factories {m['shares_ppm']:,} + royalty {m['royalty_ppm']:,}"
        f" + fee {m['fee_ppm']:,} ppm</td></tr>",
        f"<tr><th>escrow</th><td>deposited {m['deposited']:,} = released {m['released']:,} + "
        f"refunded {m['refunded']:,} + held {m['held']:,}</td></tr></table>",
        "<h2>Timeline</h2><table><tr><th>time</th><th>block</th><th>event</th><th>details</th>"
        "</tr>",
    ]
    for e in report["timeline"]:
        details = ", ".join(
            f"{k}={escape(_short(v))}" for k, v in e["args"].items() if k != "jobId"
        )
        out.append(
            f"<tr><td>{_t(e['time'])}</td><td>{e['block']}</td><td>{escape(e['contract'])}"
            f".{escape(e['event'])}</td><td><span class='muted'>{details}</span></td></tr>"
        )
    out.append("</table>")
    inputs = report["inputs"]
    out.append(
        f"<p class='muted'>Inputs: {len(inputs['bundles'])} bundle(s), "
        f"{len(inputs['design_files'])} design file(s). Re-run "
        f"<code>cofab audit job {job['id']}</code> with the same inputs to get the same "
        "report hash.</p></body></html>"
    )
    return "\n".join(out)
