"""``ailedger fingerprint model``: a model-signing compatible manifest of a file or directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from ailedger.cli._cache import default_cache_path, open_stat_cache
from ailedger.cli._common import JsonOpt, byte_bar, console, emit, err_console
from ailedger.cli._fingerprint import fingerprint_app
from ailedger.fingerprint.model import (
    HashingConfig,
    ModelFingerprint,
    fingerprint_model,
)

__all__ = ["default_cache_path", "fingerprint_model_command"]

_PROGRESS_FROM = 64 << 20  # show a bar only when there is this much to read


class _Bar:
    """Adapts rich's progress bar to :class:`ailedger.fingerprint.model.Progress` (thread-safe)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def start(self, total_bytes: int) -> None:
        if total_bytes >= _PROGRESS_FROM:
            self._progress.start()
            self._task = self._progress.add_task("hashing", total=total_bytes)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)


def _human(fp: ModelFingerprint) -> None:
    stats = fp.stats
    console.print(f"[bold]model[/bold]          {fp.model_name}")
    console.print(f"[bold]hashing[/bold]        {fp.hashing}")
    console.print(f"[bold]subject sha256[/bold] {fp.subject_digest.hex()}")
    if stats is not None:
        rate = stats.bytes_read / stats.seconds / 1e9 if stats.seconds > 0 else 0.0
        console.print(
            f"[bold]files[/bold]          {stats.files} ({stats.bytes_total:,} bytes), "
            f"{stats.cached_items} digests from cache, {stats.bytes_read:,} bytes read "
            f"in {stats.seconds:.2f} s ({rate:.2f} GB/s)"
        )
    console.print(f"[bold]resources[/bold]      {len(fp.resources)}")
    if fp.tensor_root is not None and fp.tensor_files is not None:
        count = len(fp.tensor_leaves or ())
        console.print(
            f"[bold]tensor root[/bold]    {fp.tensor_root.hex()} "
            f"({count} tensors in {len(fp.tensor_files)} safetensors files)"
        )


@fingerprint_app.command("model")
def fingerprint_model_command(
    path: Annotated[Path, typer.Argument(help="A model file or directory.", show_default=False)],
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="Digest per file: sha256 or blake3.")
    ] = "sha256",
    shard_size: Annotated[
        int | None,
        typer.Option("--shard-size", min=1, help="Hash files in shards of this many bytes."),
    ] = None,
    tensors: Annotated[
        bool,
        typer.Option("--tensors/--no-tensors", help="Add per-tensor leaves of .safetensors."),
    ] = True,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Read every file (no stat cache).")
    ] = False,
    allow_symlinks: Annotated[
        bool, typer.Option("--allow-symlinks", help="Hash the files symlinks point to.")
    ] = False,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="A path (relative to the model) to leave out; repeatable."),
    ] = None,
    leaves: Annotated[
        bool, typer.Option("--leaves", help="With --json, list every tensor leaf.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fingerprint a model: per-file digests and a subject digest that OpenSSF model-signing
    reproduces, plus a Merkle root over the tensors of its safetensors files."""
    if algorithm not in ("sha256", "blake3"):
        raise typer.BadParameter("use sha256 or blake3", param_hint="--algorithm")
    config = HashingConfig(
        algorithm="sha256" if algorithm == "sha256" else "blake3",
        shard_size=shard_size,
        allow_symlinks=allow_symlinks,
        ignore_paths=tuple(ignore or ()),
    )
    cache = open_stat_cache(no_cache)
    progress = byte_bar(disable=not err_console.is_terminal, auto_refresh=True)
    try:
        fp = fingerprint_model(path, config, tensors=tensors, cache=cache, progress=_Bar(progress))
    finally:
        progress.stop()
        if cache is not None:
            cache.close()
    emit(fp.to_dict(leaves=leaves), as_json, lambda: _human(fp))
