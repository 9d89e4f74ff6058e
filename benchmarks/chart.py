"""``benchmarks.png``: one panel per measured part, drawn from the result JSON (matplotlib, no display)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Panel = Callable[[Any, dict[str, Any]], None]


def _stages(ax: Any, result: dict[str, Any]) -> None:
    sizes = result["pipeline"]["sizes"]
    largest = str(max(result["pipeline"]["gallery_identities"]))
    labels = list(sizes)
    detect = [sizes[s]["detect_ms"]["median"] for s in labels]
    embed = [sizes[s]["align_embed_ms"]["median"] for s in labels]
    match = [sizes[s]["match_ms"][largest]["median"] for s in labels]
    ax.bar(labels, detect, label="detect")
    ax.bar(labels, embed, bottom=detect, label="align+embed")
    ax.bar(
        labels,
        match,
        bottom=[d + e for d, e in zip(detect, embed, strict=True)],
        label=f"match ({largest} ids)",
    )
    ax.set_title("rollcall per frame, median stages (CPU)")
    ax.set_ylabel("ms per frame")
    ax.legend(fontsize=8)


def _seed(ax: Any, result: dict[str, Any]) -> None:
    identities = str(result["speedup_vs_seed_identities"])
    sizes = result["seed"]["sizes"]
    labels = list(sizes)
    seed = [sizes[s][identities]["seed_ms"]["median"] for s in labels]
    ours = [sizes[s][identities]["rollcall_ms"]["median"] for s in labels]
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], seed, width=0.4, label="seed's way")
    ax.bar([x + 0.2 for x in xs], ours, width=0.4, label="rollcall")
    for x, s in zip(xs, labels, strict=True):
        ax.annotate(
            f"{sizes[s][identities]['speedup']:.2f}x",
            (x, max(seed[x], ours[x])),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(list(xs), labels)
    ax.set_title(f"attendance per frame vs the seed's way ({identities} ids)")
    ax.set_ylabel("median ms per frame")
    ax.legend(fontsize=8)


def _matching(ax: Any, result: dict[str, Any]) -> None:
    for size, report in result["pipeline"]["sizes"].items():
        ids = sorted(int(n) for n in report["match_ms"])
        ax.plot(ids, [report["match_ms"][str(n)]["median"] for n in ids], marker="o", label=size)
    ax.set_xscale("log")
    ax.set_title("matching cost vs facebank size")
    ax.set_xlabel("identities")
    ax.set_ylabel("median ms per frame")
    ax.legend(fontsize=8)


def _throughput(ax: Any, result: dict[str, Any]) -> None:
    levels = result["system"]["levels"]
    for workers in sorted({lv["workers"] for lv in levels}):
        mine = [lv for lv in levels if lv["workers"] == workers]
        ax.plot(
            [lv["clients"] for lv in mine],
            [lv["throughput_jobs_per_s"] for lv in mine],
            marker="o",
            label=f"{workers} worker(s)",
        )
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0)
    ax.set_title("system throughput (attendance jobs over HTTP)")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("jobs/s")
    ax.legend(fontsize=8)


def _latency(ax: Any, result: dict[str, Any]) -> None:
    levels = result["system"]["levels"]
    for workers in sorted({lv["workers"] for lv in levels}):
        mine = [lv for lv in levels if lv["workers"] == workers]
        clients = [lv["clients"] for lv in mine]
        ax.plot(clients, [lv["latency_ms"]["median"] for lv in mine], marker="o", label=f"{workers}w p50")
        ax.plot(
            clients,
            [lv["latency_ms"]["p95"] for lv in mine],
            marker="x",
            linestyle="--",
            label=f"{workers}w p95",
        )
        ax.plot(
            clients,
            [lv["queue_overhead_ms"]["median"] for lv in mine],
            marker=".",
            linestyle=":",
            label=f"{workers}w queue overhead p50",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title("end-to-end latency")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("ms")
    ax.legend(fontsize=7)


def _memory(ax: Any, result: dict[str, Any]) -> None:
    curve = result["memory"]["curve"]
    ax.plot([p["jobs"] for p in curve], [p["rss_mib"] for p in curve], marker="o")
    ax.set_ylim(bottom=0)
    ax.set_title("worker RSS (solo pool)")
    ax.set_xlabel("jobs run")
    ax.set_ylabel("MiB")


def _gpu(ax: Any, result: dict[str, Any]) -> None:
    sweep = result["gpu"]["embed_batch_sweep"]
    batches = sorted(int(b) for b in sweep)
    ax.plot(batches, [sweep[str(b)]["faces_per_s"] for b in batches], marker="o")
    ax.set_xscale("log", base=2)
    ax.set_title(f"embedding on {result['gpu']['device_name']}")
    ax.set_xlabel("faces per forward")
    ax.set_ylabel("faces/s")


def _panels(result: dict[str, Any]) -> list[Panel]:
    panels: list[Panel] = []
    if result.get("pipeline"):
        panels += [_stages, _matching]
    if result.get("seed"):
        panels.append(_seed)
    if result.get("system"):
        panels += [_throughput, _latency]
    if result.get("memory"):
        panels.append(_memory)
    if result.get("gpu") and "embed_batch_sweep" in result["gpu"]:
        panels.append(_gpu)
    return panels


def draw(result: dict[str, Any], path: Path) -> Path:
    """Write the chart to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(result)
    columns = min(3, max(1, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.5 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        panel(ax, result)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    machine = result["machine"]
    figure.suptitle(
        f"rollcall benchmarks — {machine['cpu_count']} CPUs, torch {machine['torch']}, "
        f"commit {machine['git_commit']}, {machine['date_utc']}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
