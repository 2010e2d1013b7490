"""`python -m errormodel --clean DIR --out DIR [--scale 3] [--seed S]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from errormodel.deliveries import CleanPopulationError
from errormodel.generate import generate

app = typer.Typer(add_completion=False)


@app.command()
def main(
    clean: Annotated[Path, typer.Option("--clean", help="An `outcomes synth` output folder (noise 0)")],
    out: Annotated[Path, typer.Option("--out", help="Folder for landing/ and truth/")],
    scale: Annotated[float, typer.Option(help="Multiplier of every class's rate (1 = default)")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical files")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace earlier output in --out")] = False,
) -> None:
    """Rewrite a clean synthetic population with named identifier errors at set rates."""
    console = Console()
    try:
        result = generate(clean, out, scale=scale, seed=seed, overwrite=overwrite)
    except (CleanPopulationError, FileExistsError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table(title=f"error classes at scale {scale:g} (seed {seed})")
    for col in ("class", "source", "eligible", "applied", "rate", "target"):
        table.add_column(col, justify="left" if col in ("class", "source") else "right", no_wrap=True)
    for r in result.counts.itertuples(index=False):
        rate = "-" if r.eligible == 0 else f"{r.rate:.2%}"
        table.add_row(r.error_class, r.source, f"{r.eligible:,}", f"{r.applied:,}", rate, f"{r.target:.2%}")
    console.print(table)
    rows = sum(d.row_count for d in result.deliveries)
    console.print(
        f"{len(result.deliveries)} deliveries, {rows:,} rows, {len(result.namesakes)} namesake pairs -> {out}"
    )


if __name__ == "__main__":
    app()
