"""Bulk transcoding on a Dask cluster: the CLI's per-file work, shipped to workers in batches.

    ldcodec encode ARCHIVE/ -o LDC/ --kbps 1.5 --scheduler tcp://scheduler:8786 --resume

Why Dask: transcoding an archive is an embarrassingly parallel map over files with no shared
state, which is exactly ``Client.map`` + ``as_completed``; ``distributed`` is pure Python (one
pip install, no object store or daemons to run), deploys the same scheduler on a laptop
(``LocalCluster``), over SSH, on Slurm/PBS (dask-jobqueue) or Kubernetes (dask-kubernetes),
and retries the tasks of a worker that dies. Ray would also work but brings a much heavier
runtime for no feature this job needs.

Files travel as paths, so workers must see the same file system (NFS, a cluster volume, or a
FUSE-mounted bucket). Files are grouped into batches so a million-file archive is a few tens of
thousands of tasks, not a million; each file's outcome (result line or error) comes back on its own.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

INSTALL_HINT = "pip install 'ldcodec[cluster]' (Dask distributed)"


def error_text(exc: Exception) -> str:
    """One line for a failed file: the message of an expected error (BitstreamError,
    AudioInputError, OSError: all ValueError/OSError), else the type and message."""
    return str(exc) if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {exc}"


def _batch(fn: Callable, pairs: list[tuple[Path, Path]], extra: tuple) -> list[tuple[str, str | None, str | None]]:
    """Runs on a worker: ``fn(src, dst, *extra, threads=1)`` per pair → (src, result, error)."""
    out = []
    for src, dst in pairs:
        try:
            out.append((str(src), fn(src, dst, *extra, 1), None))
        except Exception as exc:  # noqa: BLE001 - one file's failure must not sink its batch
            out.append((str(src), None, error_text(exc)))
    return out


def connect(scheduler):
    """A ``dask.distributed.Client`` for an address (``tcp://host:8786``) or an existing client/cluster."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(f"--scheduler needs Dask distributed: {INSTALL_HINT}") from None
    if isinstance(scheduler, Client):
        return scheduler
    try:
        return Client(scheduler, timeout="10s")
    except OSError as exc:
        raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None


def map_files(scheduler, fn: Callable, tasks: list[tuple[Path, Path]], extra: tuple,
              batch: int = 32) -> Iterator[tuple[str, str | None, str | None]]:
    """Run ``fn`` over (source, destination) pairs on the cluster; yields (src, result, error) as batches finish."""
    from distributed import as_completed

    client = connect(scheduler)
    try:
        chunks = [tasks[i:i + batch] for i in range(0, len(tasks), batch)]
        futures = client.map(_batch, [fn] * len(chunks), chunks, [extra] * len(chunks), retries=2, pure=False)
        for future in as_completed(futures):
            yield from future.result()
    finally:
        if client is not scheduler:
            client.close()
