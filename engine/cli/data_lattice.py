"""`logg-engine data lattice status|build|clear`: the workspace's persistent node lattice
of generator v2 (engine/generator/lte/node_store.py; docs/generator-v2.md, "Node lattice").

Why a command: a `bosz-1m` build synthesises the lattice's nodes on first use; building it
ahead (possibly in pieces: `--limit`), seeing how much of it exists, and removing stale
lattices (a new generator version or data file gives a new key) are separate chores."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from engine.cli.app import GeneratorDeviceOpt, WorkspaceOpt, data_app

lattice_app = typer.Typer(help="The persistent node lattice of generator v2 (--physics lte).",
                          no_args_is_help=True)
data_app.add_typer(lattice_app, name="lattice")


@lattice_app.command("status")
def status_cmd(as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
               workspace: Path = WorkspaceOpt) -> None:
    """How many of the lattice's nodes are stored, where, and their size on disk."""
    from engine.generator.lte.node_store import lattice_root, lattice_status
    from engine.io.diskspace import fmt_bytes
    st = lattice_status(lattice_root(workspace))
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    pct = 100.0 * st["nodes_stored"] / st["nodes_total"]
    typer.echo(f"lattice {st['key']} in {st['root']}")
    typer.echo(f"  {st['nodes_stored']} of {st['nodes_total']} nodes stored ({pct:.1f} %), "
               f"{st['segments']} segments, {fmt_bytes(st['bytes'])}")
    for name in st["discarded"]:
        typer.echo(f"  deleted {name}: it failed verification (its nodes will be rebuilt)")
    for key, size in st["other_keys"].items():
        typer.echo(f"  stale lattice {key}: {fmt_bytes(size)} (`logg-engine data lattice "
                   "clear --all` removes it)")


@lattice_app.command("build")
def build_cmd(
    limit: int = typer.Option(None, "--limit", help="Synthesise at most N missing nodes "
                              "(in node order); rerun to continue."),
    batch: int = typer.Option(64, "--batch", help="Spectra per forward-model batch."),
    compile_: str = typer.Option("auto", "--compile", help="torch.compile: auto | on | off "
                                 "(auto: on for ≥ 2000 nodes)."),
    device: str = GeneratorDeviceOpt,
    workspace: Path = WorkspaceOpt,
) -> None:
    """Synthesise the lattice's missing nodes (all 30,240 by default: ~0.5 GB). Resumable:
    a killed build keeps every finished segment."""
    import numpy as np

    from engine.cli.progress import RichProgress
    from engine.errors import SpecError
    from engine.generator.lte.node_store import N_TOTAL, NodeLattice, lattice_root
    if compile_ not in ("auto", "on", "off"):
        raise SpecError(f"bad --compile {compile_!r}", key="compile", hint="auto, on or off")
    if batch < 1 or (limit is not None and limit < 1):
        raise SpecError("--batch and --limit must be ≥ 1", key="batch/limit")
    from engine.devices import describe, resolve_device
    dev = resolve_device(device)                    # a missing GPU: one clear error, no work
    with RichProgress("node lattice") as cb:
        lat = NodeLattice(lattice_root(workspace), callbacks=[cb])
        todo = lat.missing(np.arange(N_TOTAL))[:limit]
        if len(todo):
            from engine.generator.lte.synth import BatchSynth
            use = compile_ == "on" or (compile_ == "auto" and len(todo) >= 2000)
            synth = BatchSynth(batch, compile=use, device=dev)
            mode = "torch.compile'd" if synth.compiled else \
                "eager" + (" (torch.compile failed)" if use else "")
            cb("log", message=f"forward model on {describe(dev)}: {mode}")
            lat.ensure(todo, synth, [cb])
    typer.echo(f"lattice {lat.key}: {lat.n_stored} of {N_TOTAL} nodes stored in {lat.dir}")


@lattice_app.command("clear")
def clear_cmd(all_keys: bool = typer.Option(False, "--all", help="Also remove stale "
                                            "lattices (other generator versions/data)."),
              workspace: Path = WorkspaceOpt) -> None:
    """Delete the lattice (it is a cache: the next snapped v2 build synthesises it again)."""
    from engine.generator.lte.node_store import clear_lattice, lattice_root
    root = lattice_root(workspace)
    gone = clear_lattice(root, all_keys=all_keys)
    typer.echo(f"removed {', '.join(gone)} from {root}" if gone
               else f"no lattice to remove in {root}")
