"""`params`: the 45 pose parameters by name, with their ranges and groups (what a poses file or set_pose names)."""
from __future__ import annotations

import json

import typer

from .app import app


def params_rows() -> list[dict]:
    """One row per parameter in pose order: index, name, group, lower, upper, neutral."""
    from ..pose import GROUPS, LOWER, NEUTRAL, PARAMETER_NAMES, UPPER

    group_of = {int(i): g for g, idx in GROUPS.items() for i in idx}
    return [{"index": i, "name": n, "group": group_of.get(i, "breathing"), "lower": float(LOWER[i]),
             "upper": float(UPPER[i]), "neutral": float(NEUTRAL[i])} for i, n in enumerate(PARAMETER_NAMES)]


@app.command()
def params(as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table.")) -> None:
    """List the 45 pose parameters with their ranges (use these names in poses files and set_pose)."""
    rows = params_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    typer.echo(f"{'#':>2}  {'name':<32} {'group':<9} {'range':<9} neutral")
    for r in rows:
        span = f"[{r['lower']:g}, {r['upper']:g}]"
        typer.echo(f"{r['index']:>2}  {r['name']:<32} {r['group']:<9} {span:<9} {r['neutral']:g}")
    typer.echo("A poses file is a JSON list of {name: value} objects; names left out stay neutral "
               "(example: examples/poses.json; render it with `tha4bridge render --poses examples/poses.json "
               "--out frames/`).")
