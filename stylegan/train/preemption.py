"""Preemption: SIGTERM or SIGUSR1 asks the run to stop; it checkpoints and exits with EXIT_PREEMPTED.

SLURM sends the signal ahead of a time limit (`--signal=USR1@...`) or on
preemption; the exit status tells SLURM/Snakemake to requeue, and the next start
resumes from the checkpoint.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

log = logging.getLogger(__name__)

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpoint written after SIGTERM/SIGUSR1; run again to resume


class StopFlag:
    """Set by SIGTERM/SIGUSR1; checked at the end of each step so no step is left half done."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        log.warning("received %s: checkpointing at the end of this step", signal.Signals(signum).name)
        self.raised = True
