"""Shared helpers for the CLI tests: run ``ldcodec`` in-process and check one-line errors."""
from __future__ import annotations

import contextlib
import io

from codec.cli import main


def run(*argv) -> tuple[int, str, str]:
    """``ldcodec *argv`` in-process → (exit code, stdout, stderr); no traceback may reach stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
    assert "Traceback" not in err.getvalue()
    return code, out.getvalue(), err.getvalue()


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ldcodec: error:"), err
    return lines[0]
