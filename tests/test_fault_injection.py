"""bench/fault_injection.py with a small N: kill -9 at fixed moments, every file intact, resume to the end."""

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "fault_injection", Path(__file__).parent.parent / "bench/fault_injection.py"
)
fault_injection = sys.modules["fault_injection"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(fault_injection)


@pytest.mark.parametrize("delay_s", [0.3, 7.0])  # while the interpreter starts; after checkpoints exist
def test_kill_9_leaves_intact_files_and_the_run_resumes_to_its_end(tmp_path, delay_s):
    t = fault_injection.trial(tmp_path / "run", delay_s, max_steps=300, checkpoint_freq=100)
    assert t.ok, t.problems
    if t.stage != "nothing":
        assert t.resume_rc in (0, 1) and t.final_step == 300
