"""The scoreboard: per skill x variant x metric, the mean score with its 95% bootstrap interval, and the paired
difference against the base model (same prompt, same seed) with its interval.

Written as scoreboard.json (everything), scoreboard.csv (one row per skill x variant x metric), scoreboard.md
(a table a person reads) and scoreboard.png (grouped bars with intervals), each atomically.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..atomic_files import write_bytes_atomic, write_text_atomic
from .statistics import Estimate, bootstrap, paired_difference

BASE = "base"
METRIC_NAMES = {"dsg": "DSG", "vqascore": "VQAScore", "clipscore": "CLIPScore"}


@dataclass(frozen=True)
class ItemScore:
    """One image's score: `item` names the prompt and seed, shared by every variant that rendered it."""

    skill: str
    variant: str
    metric: str
    item: str
    score: float


@dataclass(frozen=True)
class Row:
    skill: str
    variant: str
    metric: str
    estimate: Estimate
    vs_base: Estimate | None

    def to_json(self) -> dict:
        data = {"skill": self.skill, "variant": self.variant, "metric": self.metric, **self.estimate.to_json()}
        if self.vs_base is not None:
            data["vs_base"] = {k: v for k, v in self.vs_base.to_json().items()}
        return data


def build_scoreboard(scores: Iterable[ItemScore], *, seed: int = 0, base: str = BASE) -> list[Row]:
    """Rows in a stable order: skills and metrics as first seen, `base` first (the variant the others are
    compared with), then the variants as first seen."""
    grouped: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    order: dict[str, list[str]] = {"skill": [], "variant": [], "metric": []}
    for s in scores:
        for key in order:
            if getattr(s, key) not in order[key]:
                order[key].append(getattr(s, key))
        grouped[s.skill, s.variant, s.metric][s.item] = s.score
    variants = sorted(order["variant"], key=lambda v: (v != base, order["variant"].index(v)))
    rows = []
    for skill in order["skill"]:
        for metric in order["metric"]:
            reference = grouped.get((skill, base, metric))
            for variant in variants:
                values = grouped.get((skill, variant, metric))
                if not values:
                    continue
                vs_base = paired_difference(values, reference, seed=seed) if reference and variant != base else None
                rows.append(Row(skill, variant, metric, bootstrap(list(values.values()), seed=seed), vs_base))
    return rows


def _fmt(e: Estimate) -> str:
    return f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _signed(e: Estimate) -> str:
    return f"{e.mean:+.3f} [{e.low:+.3f}, {e.high:+.3f}]"


def scoreboard_markdown(rows: Sequence[Row], title: str = "Scoreboard") -> str:
    lines = [
        f"# {title}",
        "",
        "Mean with 95% bootstrap interval; vs base: paired difference (same prompt and seed).",
        "",
    ]
    lines += ["| skill | variant | metric | n | mean [95% CI] | vs base [95% CI] |", "|---|---|---|---:|---|---|"]
    for r in rows:
        diff = _signed(r.vs_base) if r.vs_base else "—"
        metric = METRIC_NAMES.get(r.metric, r.metric)
        lines.append(f"| {r.skill} | {r.variant} | {metric} | {r.estimate.n} | {_fmt(r.estimate)} | {diff} |")
    return "\n".join(lines) + "\n"


def scoreboard_csv(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["skill", "variant", "metric", "n", "mean", "ci_low", "ci_high", "vs_base", "vs_base_low", "vs_base_high"]
    )
    for r in rows:
        e, d = r.estimate, r.vs_base
        diff = [f"{d.mean:.6f}", f"{d.low:.6f}", f"{d.high:.6f}"] if d else ["", "", ""]
        writer.writerow([r.skill, r.variant, r.metric, e.n, f"{e.mean:.6f}", f"{e.low:.6f}", f"{e.high:.6f}", *diff])
    return buffer.getvalue()


def scoreboard_png(rows: Sequence[Row], title: str = "") -> bytes:
    """Grouped bars: one panel per metric, skills along x, one bar per variant, 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(r.metric for r in rows))
    skills = list(dict.fromkeys(r.skill for r in rows))
    variants = list(dict.fromkeys(r.variant for r in rows))
    width_inches = 2.4 + max(3.0, 0.45 * len(skills) * max(1, len(variants)))  # room for the legend on the right
    figure = Figure(figsize=(width_inches, 3.0 * max(1, len(metrics))))
    width = 0.8 / max(1, len(variants))
    for m, metric in enumerate(metrics):
        axes = figure.add_subplot(len(metrics), 1, m + 1)
        for v, variant in enumerate(variants):
            found = {r.skill: r.estimate for r in rows if r.metric == metric and r.variant == variant}
            xs = [s + (v - (len(variants) - 1) / 2) * width for s, skill in enumerate(skills) if skill in found]
            es = [found[skill] for skill in skills if skill in found]
            errors = [[e.mean - e.low for e in es], [e.high - e.mean for e in es]]
            axes.bar(xs, [e.mean for e in es], width, yerr=errors, capsize=3, label=variant)
        axes.set_xticks(range(len(skills)), skills)
        axes.set_ylabel(METRIC_NAMES.get(metric, metric))
        axes.grid(axis="y", alpha=0.3)
        if m == 0:
            axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), title="variant")
            if title:
                axes.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def scoreboard_paths(folder: str | Path) -> dict[str, Path]:
    return {ext: Path(folder) / f"scoreboard.{ext}" for ext in ("json", "csv", "md", "png")}


def write_scoreboard(rows: Sequence[Row], folder: str | Path, title: str = "Scoreboard") -> dict[str, Path]:
    if not rows:
        raise ValueError("nothing was scored, so there is no scoreboard (no images, or every skill was empty)")
    paths = scoreboard_paths(folder)
    write_text_atomic(
        paths["json"], json.dumps({"title": title, "rows": [r.to_json() for r in rows]}, indent=2) + "\n"
    )
    write_text_atomic(paths["csv"], scoreboard_csv(rows))
    write_text_atomic(paths["md"], scoreboard_markdown(rows, title))
    write_bytes_atomic(paths["png"], scoreboard_png(rows, title))
    return paths
