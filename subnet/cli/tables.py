"""The command line's tables: readable in 80 columns, and every fault shown with its reason.

Rules every table here keeps: numbers never wrap and are never cut (the score and the weight above
all); names are shortened on purpose (`short_ref`), not cut by the terminal; free text (a fault's
reason, what happened to the weights) wraps onto more lines instead of ending in "…". The tables
are drawn without side borders so that the text columns get the room.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from rich import box
from rich.table import Table


def compact_table(title: str = "") -> Table:
    return Table(title=title or None, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False,
                 collapse_padding=True)


def add_number(table: Table, name: str) -> None:
    table.add_column(name, justify="right", no_wrap=True)


def add_text(table: Table, name: str, *, wrap: bool = True, max_width: int | None = None) -> None:
    table.add_column(name, justify="left", no_wrap=not wrap, overflow="fold" if wrap else "ellipsis",
                     max_width=max_width, ratio=1 if wrap else None)


def ms(value: float | None) -> str:
    """Milliseconds in at most 6 characters below 1000 s: 93.1, 12093, -."""
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def short_ref(ref: str, width: int = 28) -> str:
    """`ghcr.io/acme/env:tag@sha256:<64 hex>` → `acme/env@3f2a9c1b` (at most `width` chars)."""
    name, _, digest = ref.partition("@")
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # the registry host: the digest already pins the content
    short = "/".join(parts)
    tail = f"@{digest.split(':', 1)[-1][:8]}" if digest else ""
    room = max(4, width - len(tail))
    if len(short) > room:
        short = "…" + short[-(room - 1):]
    return short + tail


def fault_text(miner: Mapping[str, Any]) -> str:
    """Each fault kind with its count and its reason, e.g.
    `unreachable×8: OOM-killed: the Actor exceeded its 2g memory limit`."""
    faults = miner.get("faults") or {}
    if not faults:
        return "-"
    reasons = miner.get("reasons") or {}
    fallback = miner.get("reason") or ""  # stored by versions without per-kind reasons
    parts = []
    for kind, count in faults.items():
        why = reasons.get(kind) or (fallback if len(faults) == 1 else "")
        parts.append(f"{kind}×{count}: {why}" if why else f"{kind}×{count}")
    return "; ".join(parts)


def leaderboard_table(miners: Iterable[Mapping[str, Any]], title: str = "", llm: bool = False) -> Table:
    """uid, miner, verified/tasks, p50, score, weight, and the faults with their reasons; with
    `llm`, the LLM dollars the gateway metered for each miner too."""
    table = compact_table(title)
    add_number(table, "uid")
    add_text(table, "miner", wrap=False, max_width=24)
    for column in ("ok", "p50 ms", *(("LLM $",) if llm else ()), "score", "weight"):
        add_number(table, column)
    add_text(table, "faults: why")
    for m in miners:
        cached = "*" if m.get("cached") else ""
        spend = (usd(m.get("llm_usd")),) if llm else ()
        table.add_row(str(m["uid"]), short_ref(m.get("env") or m.get("digest", ""), width=23) + cached,
                      f"{m.get('verified', 0)}/{m.get('tasks', 0)}", ms(m.get("latency_ms_p50")), *spend,
                      f"{m.get('score', 0):.3f}", f"{m.get('weight', 0):.3f}", fault_text(m))
    return table


def usd(value: float | None) -> str:
    """Dollars with the cents' hundredths a small LLM bill needs: 0.000412, 1.25."""
    if value is None:
        return "-"
    return f"{value:.6f}" if value < 1 else f"{value:.2f}"


def rounds_table(rounds: Iterable[Mapping[str, Any]], now: float) -> Table:
    table = compact_table("recent rounds")
    for column in ("round", "block", "ran", "cached", "age"):
        add_number(table, column)
    add_text(table, "weights")
    for r in rounds:
        age = f"{(now - r['started_at']) / 60:.0f}m" if r.get("started_at") else "-"
        what = r.get("weights") or (f"abandoned: {r['abandoned']}" if r.get("abandoned") else "(unfinished)")
        table.add_row(str(r["round"]), str(r["block"]), str(r.get("evaluated") or 0), str(r.get("cached") or 0),
                      age, what)
    return table


def spread_table(rows: list[Mapping[str, Any]]) -> Table:
    """Per env over several dry-run rounds: p50 min/median/max, score and weight ranges, worst accuracy."""
    rounds = rows[0]["rounds"] if rows else 0
    table = compact_table(f"spread over {rounds} rounds (p50 ms per round; acc: worst accuracy)")
    add_text(table, "env", wrap=False, max_width=20)
    for column in ("p50 min", "median", "max", "score", "weight", "acc"):
        add_number(table, column)
    for r in rows:
        table.add_row(short_ref(r["env"], width=20), ms(r["p50_ms_min"]), ms(r["p50_ms_median"]), ms(r["p50_ms_max"]),
                      f"{r['score_min']:.3f}–{r['score_max']:.3f}", f"{r['weight_min']:.3f}–{r['weight_max']:.3f}",
                      f"{r['accuracy_min']:.2f}")
    return table
