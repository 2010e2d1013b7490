"""The printed summary of a synthesis run."""

from __future__ import annotations

from rich.table import Table


def summary_table(result) -> Table:
    cfg = result.config
    table = Table(
        title=f"Synthetic population of {cfg.persons:,}",
        caption=f"seed {cfg.seed}, {cfg.months} monthly deliveries from {cfg.start}, noise {cfg.noise}",
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("imitates")
    for source, rows in sorted(result.rows_by_source.items()):
        table.add_row(f"{source} rows delivered", f"{rows:,}", f"{cfg.months} deliveries")
    for f in result.stats.figures():
        value = f"{f.value:,.0f}" if f.unit == "n" else f"{f.value:.1f}{'%' if f.unit == '%' else ' ' + f.unit}"
        table.add_row(f.measure, value, f.imitates)
    return table
