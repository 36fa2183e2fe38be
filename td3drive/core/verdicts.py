"""Verdicts and exit codes: the one place they are defined (docs/ARCHITECTURE.md, "Exit codes").

Every command exits 0 on success / GO, 1 when the run or its report says NO-GO or the guard stopped
training, 2 on bad input (a one-line message naming the value and what is allowed; nothing written),
and 128 + the signal's number when SIGINT (130) or SIGTERM (143) stopped it after a checkpoint.
Only the standard library: the analysis side uses it without torch.
"""

from __future__ import annotations

import signal

GO = "GO"
GO_WITH_WARNINGS = "GO WITH WARNINGS"
NO_GO = "NO-GO"

EXIT_OK = 0
EXIT_NO_GO = 1  # the report says NO-GO, the guard stopped the run, or a sweep trial failed
EXIT_BAD_INPUT = 2
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


def verdict_exit(verdict: str | None, strict: bool = False) -> int:
    """The exit code of a report's verdict: 1 for NO-GO (and, with ``strict``, for GO WITH WARNINGS)."""
    return EXIT_NO_GO if verdict == NO_GO or (strict and verdict == GO_WITH_WARNINGS) else EXIT_OK
