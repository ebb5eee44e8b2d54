"""Bulk transcoding on a Dask cluster: the CLI's per-file work, shipped to workers in batches.

    ldcodec encode ARCHIVE/ -o LDC/ --kbps 1.5 --scheduler tcp://scheduler:8786 --resume

Why Dask: transcoding an archive is an embarrassingly parallel map over files with no shared
state, which is exactly ``Client.map`` + ``as_completed``; ``distributed`` is pure Python (one
pip install, no object store or daemons to run), deploys the same scheduler on a laptop
(``LocalCluster``), over SSH, on Slurm/PBS (dask-jobqueue) or Kubernetes (dask-kubernetes),
and retries the tasks of a worker that dies. Ray would also work but brings a much heavier
runtime for no feature this job needs.

From Python, with a ``distributed.Client`` (or a scheduler address)::

    from distributed import Client
    import codec.cluster
    client = Client("tcp://scheduler:8786")
    for source, result, error in codec.cluster.encode_files(client, ["recordings/"], "archive/", kbps=1.2):
        print(error or result)
    codec.cluster.decode_files(client, ["archive/"], "restored/")

Files travel as absolute paths (relative ones are resolved here, against this process's working
folder), so workers must see the same file system (NFS, a cluster volume, or a FUSE-mounted
bucket). Files are grouped into batches so a million-file archive is a few tens of thousands of
tasks, not a million; each file's outcome (result line or error) comes back on its own.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

INSTALL_HINT = "pip install 'ldcodec[cluster]' (Dask distributed)"


class Outcome(NamedTuple):
    """One file's outcome: its ``source`` path, the ``result`` line, or the ``error`` (one of the two is None)."""

    source: str
    result: str | None
    error: str | None


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
    """Run ``fn(src, dst, *extra, threads)`` over (source, destination) pairs on the cluster; yields
    :class:`Outcome` (src, result, error) as batches finish. Paths are made absolute before they travel."""
    from distributed import as_completed

    client = connect(scheduler)
    tasks = [(Path(src).absolute(), Path(dst).absolute()) for src, dst in tasks]
    try:
        chunks = [tasks[i:i + batch] for i in range(0, len(tasks), batch)]
        futures = client.map(_batch, [fn] * len(chunks), chunks, [extra] * len(chunks), retries=2, pure=False)
        for future in as_completed(futures):
            yield from (Outcome(*o) for o in future.result())
    finally:
        if client is not scheduler:
            client.close()


def encode_files(client, inputs: list, out_dir, kbps: float = 3.0, *, representation: str | None = None,
                 bundle=None, resume: bool = False, batch: int = 32) -> list[Outcome]:
    """Encode audio files and folders (mirrored) into ``.ldc`` files under ``out_dir`` on the cluster
    (``client``: a ``distributed.Client`` or a scheduler address) → one :class:`Outcome` per file.
    Settings as :func:`codec.encode`; ``resume`` as ``ldcodec encode --resume`` (an output made
    with other settings is a ``ValueError`` before any work). Bad settings raise before any work too."""
    from .files import encode_file, encode_plan

    tasks, settings = encode_plan(inputs, out_dir, kbps, representation, bundle, resume, folder=True)
    return list(map_files(client, encode_file, tasks, settings, batch))


def decode_files(client, inputs: list, out_dir, *, decoder: str | None = None, steps: int | None = None,
                 bundle=None, allow_damaged: bool = False, resume: bool = False, batch: int = 32) -> list[Outcome]:
    """Decode ``.ldc`` files and folders (mirrored) into 16 kHz WAVs under ``out_dir`` on the cluster
    → one :class:`Outcome` per file. Settings as :func:`codec.decode` (``allow_damaged`` is
    ``strict=False``); ``resume`` leaves WAVs that hold every sample."""
    from .files import decode_file, decode_plan

    tasks, settings = decode_plan(inputs, out_dir, decoder, steps, allow_damaged, bundle, resume, folder=True)
    return list(map_files(client, decode_file, tasks, settings, batch))
