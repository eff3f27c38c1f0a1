"""The history of the runs of one output directory, read from its ML Metadata: when, data, encoder and key
settings, eval accuracy, baseline, verdict, pushed version, duration. Printed as a table and written as an HTML
page with a plot of eval accuracy across runs (blessed and rejected marked).

    .venv/bin/python -m runners.runs [--output-dir tfx_output]
"""

from __future__ import annotations

import argparse
import base64
import os
import time

from config import pipeline as configs
from modules import figures, templates
from runners.run_history import RunRecord, read_runs  # the store: ML Metadata read back

HISTORY_PAGE = "runs.html"
COLUMNS = ["when", "data", "encoder", "settings", "eval accuracy", "baseline", "verdict", "pushed", "duration"]


def cells(run: RunRecord) -> list[str]:
    """`run` as a row of the table, one text per column of COLUMNS."""
    return [
        time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started)),
        run.data,
        run.encoder,
        run.settings,
        "" if run.eval_accuracy is None else f"{run.eval_accuracy:.4f}",
        run.baseline,
        run.verdict,
        run.pushed,
        f"{run.seconds / 60:.1f} min",
    ]


def table(runs: list[RunRecord]) -> str:
    rows = [COLUMNS] + [cells(r) for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def accuracy_plot(runs: list[RunRecord]) -> bytes | None:
    """Eval accuracy across `runs` as a PNG (blessed and rejected marked); None if no run has one."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure to close
    from matplotlib.ticker import MaxNLocator

    scored = [(i + 1, r) for i, r in enumerate(runs) if r.eval_accuracy is not None]
    if not scored:
        return None
    figure = Figure(figsize=(8, 3.5))
    axes = figure.subplots()
    axes.plot([i for i, _ in scored], [float(r.eval_accuracy or 0) for _, r in scored], color="0.6", zorder=1)
    for verdict, marker, color in (("blessed", "o", "tab:green"), ("rejected", "x", "tab:red")):
        points = [(i, r.eval_accuracy) for i, r in scored if r.verdict == verdict]
        if points:
            axes.scatter(*zip(*points), marker=marker, color=color, label=verdict, zorder=2)
    axes.set(xlabel="run", ylabel="eval accuracy", title="Eval accuracy across runs", xlim=(0.5, len(runs) + 0.5))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # runs are counted: no 1.5
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best")  # clear of the points
    return figures.png_bytes(figure, dpi=100, tight=True)


def write_page(runs: list[RunRecord], output_dir: str) -> str:
    """The HTML page in `output_dir`: the plot and the table; returns its path."""
    path, png = os.path.join(output_dir, HISTORY_PAGE), accuracy_plot(runs)
    page = templates.render(
        "runners",
        "runs.html.j2",
        output_dir=output_dir,
        plot=base64.b64encode(png).decode() if png else "",
        columns=COLUMNS,
        rows=[cells(r) for r in runs],
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR, help="local_runner.py's --output-dir")
    args = parser.parse_args(argv)
    metadata_path = configs.metadata_path(args.output_dir)
    if not os.path.exists(metadata_path):
        parser.exit(2, f"{metadata_path}: no runs recorded; run local_runner.py --output-dir {args.output_dir}\n")
    runs = read_runs(metadata_path)
    print(table(runs))
    print(f"\n{len(runs)} runs; page: {write_page(runs, args.output_dir)}")


if __name__ == "__main__":
    main()
