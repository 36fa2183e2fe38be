"""A training run's state on disk: what a checkpoint of a :class:`td3drive.train.Trainer` holds, writing it,
the replay saved beside the final checkpoint of a run a signal ended, and restoring all of it on ``--resume``
(the files themselves, atomic and verified: :mod:`td3drive.checkpoint`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from td3drive import checkpoint
from td3drive.collect import obs_checksum

if TYPE_CHECKING:
    from td3drive.train import Trainer


def capture(trainer: Trainer) -> dict:
    """What a checkpoint holds (``format`` :data:`td3drive.checkpoint.FORMAT`): config, agent, counters, the
    open episode's actions and its observation's checksum, every RNG, the replay's sampling RNG and the guard."""
    return {
        "format": checkpoint.FORMAT, "config": trainer.cfg.to_dict(), "agent": trainer.agent.state_dict(),
        "counters": trainer.c.state_dict(), "episode_actions": trainer.c.episode_actions_tensor(),
        "obs_checksum": obs_checksum(trainer.obs),
        "rng": {**checkpoint.capture_rng(), "trainer": trainer.rng.bit_generator.state},
        "replay_rng": trainer.buffer.rng_state(),
        "guard": trainer.guard.state_dict() if trainer.guard is not None else None,
    }


def save_checkpoint(trainer: Trainer, with_replay: bool = False) -> Path:
    replay = trainer.buffer.state_dict() if trainer.cfg.training.save_replay or with_replay else None
    path = checkpoint.save_step(trainer.run_dir, trainer.c.step, capture(trainer), replay)
    checkpoint.prune(path.parent, trainer.cfg.training.keep_checkpoints)
    trainer.last_good.written(path, trainer.agent.total_it)
    trainer.log(f"checkpoint: {path} (step {trainer.c.step})")
    return path


def save_replay_for_resume(trainer: Trainer) -> None:
    """Replay contents beside the final checkpoint of a run a signal ended: without them a resume starts
    from an empty buffer and is a different run (a budgeted run stopped to be extended, a preempted job)."""
    trainer.log(f"saving the replay ({len(trainer.buffer):,} transitions) beside the final checkpoint, so --resume "
             "continues this run (training.replay_on_stop=false skips this)")
    try:
        path = checkpoint.save_replay(trainer.run_dir, trainer.c.step, trainer.buffer.state_dict())
    except OSError as e:  # a full disk must not cost the report
        trainer.log(f"[yellow]warning: the replay could not be saved ({e}); --resume would start from an empty "
                 "buffer[/]")
        return
    trainer.log(f"replay: {path} ({path.stat().st_size / 2**20:,.0f} MiB)")


def restore(trainer: Trainer) -> int:
    """Load the run directory's newest checkpoint (and replay) into ``trainer``; return the step it resumes at.
    Contents with the right keys and the wrong shapes or types give one line (CheckpointError), exit 2."""
    path, state = checkpoint.resume_state(trainer.run_dir, trainer.device, trainer.log)
    try:
        trainer.agent.load_state_dict(state["agent"])
        trainer.c.load_state_dict(state["counters"])
        if not trainer.collector.restore(state["episode_actions"].numpy(), state["obs_checksum"]):
            trainer.log("[yellow]warning: the environment did not replay to the checkpointed state; "
                     "starting a new episode[/]")
        replay_note = checkpoint.restore_replay(trainer.buffer, path, state, trainer.cfg.training.batch_size)
        if trainer.guard is not None and state.get("guard"):
            trainer.guard.load_state_dict(state["guard"])
            trainer.last_good.kept = trainer.guard.first_alert_step is not None
        checkpoint.restore_rng(state["rng"])
        trainer.rng.bit_generator.state = state["rng"]["trainer"]
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise checkpoint.contents_error(path, e) from None  # right keys, wrong contents: one line
    trainer.last_good.written(path.resolve(), trainer.agent.total_it)
    trainer.log(f"resumed from {path.resolve().name} at step {trainer.c.step}; {replay_note}")
    return trainer.c.step
