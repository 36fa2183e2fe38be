"""How the trainer runs the updates a step owes: at once (:class:`InlineUpdates`, the default) or on a second
thread, overlapped with the env steps that follow (:class:`UpdateThread`, ``training.overlap_updates``).

On a CPU the simulator steps on one core while an update wants every core; run one after the other, each waits
for the other. With this, the updates a step owes are launched on a worker thread and the trainer goes on to
store the step, act and step the env again; they are joined where the next updates fall due (or before
anything reads the agent: an evaluation, a checkpoint, the end of the run). Torch and the simulators release
the interpreter lock in their kernels, so both run at once.

What stays exact:

- every update gets the batch it would get without overlap: batches are sampled on the trainer's thread at
  launch, from the replay as it is then (nothing is written to the replay rows a launched batch has copied);
- the behaviour policy is a :class:`~td3drive.agent.td3.PolicySnapshot` refreshed at each join, so acting
  never reads weights an update is writing; it lags the learner by the updates in flight (one launch:
  ``gradient_steps`` updates), the same lag on every run, so a seeded run is reproducible;
- only the worker uses torch's random generator while updates are in flight (acting draws none; the
  exploration noise has its own numpy stream), so the updates' random shifts and target noise are the same
  draws on every run;
- the guard checks each update's telemetry at the join, in order, and a stop still stops the run before
  anything else reads that state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from td3drive.agent.replay import Batch
from td3drive.agent.td3 import TD3, PolicySnapshot

# sample(reuse) -> a batch; reuse: into the same host arrays as the last one (which must then be consumed).
Sample = Callable[[bool], Batch]
# check(telemetry) -> False when the guard asks to stop.
Check = Callable[[dict[str, float]], bool]


class InlineUpdates:
    """The updates run at once, one after the other, acting with the agent itself."""

    in_flight = False

    def __init__(self, agent: TD3):
        self.agent = self.policy = agent

    def run(self, sample: Sample, n: int, check: Check) -> bool:
        """``n`` updates now, each guard-checked; False at the first one the guard stops on."""
        # reuse: each batch is consumed by its update before the next sample overwrites its host arrays.
        return all(check(self.agent.update(sample(True))) for _ in range(n))

    def settle(self, check: Check) -> bool:
        return True  # nothing is ever in flight


class UpdateThread:
    """Runs ``agent.update`` on a list of batches on a worker thread; :meth:`join` waits and refreshes the
    behaviour snapshot. At most one launch is in flight."""

    def __init__(self, agent: TD3):
        self.agent = agent
        self.policy: PolicySnapshot = agent.snapshot()
        self._thread: threading.Thread | None = None
        self._results: list[dict[str, float]] = []
        self._error: BaseException | None = None

    @property
    def in_flight(self) -> bool:
        return self._thread is not None

    def run(self, sample: Sample, n: int, check: Check) -> bool:
        """Land the last launch (guard-checked) and, unless the guard stopped on it, launch ``n`` updates."""
        if not self.settle(check):
            return False
        self.launch(lambda: sample(n == 1), n)  # one batch may reuse the host arrays; several may not
        return True

    def settle(self, check: Check) -> bool:
        """Wait for the updates in flight and guard-check each in order; False when the guard stops on one."""
        return all(check(telemetry) for telemetry in self.join())

    def launch(self, sample: Callable[[], Batch], n: int) -> None:
        """Sample ``n`` batches now (on this thread) and run their updates on the worker."""
        if self._thread is not None:
            raise RuntimeError("UpdateThread.launch: join the updates in flight first")
        batches = [sample() for _ in range(n)]
        self._results, self._error = [], None

        def run() -> None:
            try:
                for b in batches:
                    self._results.append(self.agent.update(b))
            except BaseException as e:  # re-raised on the trainer's thread at the join
                self._error = e

        self._thread = threading.Thread(target=run, name="td3drive-updates", daemon=True)
        self._thread.start()

    def join(self) -> list[dict[str, float]]:
        """Wait for the updates in flight (none: returns ``[]``), refresh the behaviour policy, and return their
        telemetry in update order."""
        if self._thread is None:
            return []
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error
        self.policy.refresh()
        return self._results
