"""Replay buffer that stores each 84x84 frame once and rebuilds the 4-frame stacks by index.

A slot holds the newest frame and the vector of one observation, plus the transition that starts
from it (action, reward, terminated, truncated). The next observation of the transition in slot
``i`` is slot ``i + 1``; when an episode ends, its final observation gets a slot of its own that
is never sampled as a transition start. Older frames of a stack are the preceding slots of the
same episode, clamped at the episode's first frame, which is exactly gymnasium's
``FrameStackObservation`` padding (``padding_type="reset"``).

Memory: about 7.1 KB per transition for ``uint8[4, 84, 84]`` + ``float32[k]`` (one 7,056-byte
frame, the vector, action, reward, flags), against 56 KB for storing ``obs`` and ``next_obs`` stacks.
Observations are stored as uint8, never float.

n-step returns (``n_step`` > 1, DrQ-v2 uses 3) are built at sampling time from the same slots: the
reward of a sampled transition is ``sum_{k<m} gamma^k r_{t+k}`` and its bootstrap observation is
slot ``t + m``, where ``m`` is n, or fewer when the episode ends inside the n steps (a termination
zeroes the discount; a time-limit truncation bootstraps from the final observation), or when the
newest transitions of the running episode are not written yet. It never crosses into the next
episode, because an episode's final observation is a slot of its own.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

import numpy as np
import torch

from td3drive.core import seeding
from td3drive.core.spec import FRAME_STACK, IMAGE_SIZE

STACK = FRAME_STACK


class ReplayMemoryError(MemoryError):
    """The requested buffer does not fit in the memory that is available."""


class Batch(NamedTuple):
    """A sampled minibatch, as torch tensors: B transitions."""

    image: torch.Tensor  # uint8 [B, 4, 84, 84]
    vector: torch.Tensor  # float32 [B, k]
    action: torch.Tensor  # float32 [B, 2]
    reward: torch.Tensor  # float32 [B]
    next_image: torch.Tensor  # uint8 [B, 4, 84, 84]: the bootstrap observation, m <= n steps later
    next_vector: torch.Tensor  # float32 [B, k]
    discount: torch.Tensor  # float32 [B]: gamma^m for a bootstrapped target, 0 after a termination


def batch_to(arrays: Batch, device: torch.device | str) -> Batch:
    """A batch of numpy arrays as tensors on ``device`` (shared with the arrays on the CPU)."""
    return Batch(*(torch.from_numpy(a).to(device, non_blocking=True) for a in arrays))


class Staging:
    """Host arrays that every ``sample(..., reuse=True)`` gathers into, one set per batch size.

    A fresh batch is ~7 MB of new pages at batch 128; touching them for the first time cost most of a
    sample (5.7 ms with fresh arrays, 1.3 ms with reused ones: ``bench/replay_memory.py --transitions
    20000 --episode 250`` on a 2-core CPU, docs/BENCHMARKS.md section 12b). The next sample overwrites
    the arrays, so a reused batch is valid until then: on the CPU its tensors share the arrays; a copy
    to a GPU reads them before ``sample`` returns (pageable memory). The trainer consumes each batch in
    one update before it samples the next.
    """

    def __init__(self, make: Callable[[int], Batch]):
        self.make, self.reused = make, {}

    def arrays(self, batch_size: int, reuse: bool) -> Batch:
        """Arrays for a batch of ``batch_size``: this size's reused set, or a fresh one (``reuse`` False)."""
        if not reuse:
            return self.make(batch_size)
        if batch_size not in self.reused:
            self.reused[batch_size] = self.make(batch_size)
        return self.reused[batch_size]


def available_memory_bytes() -> int:
    """Memory the OS can give us now (MemAvailable on Linux, free pages elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def slots_for(capacity: int) -> int:
    """Slots needed to keep ``capacity`` transitions: one extra per episode end, 5% headroom
    (exact for episodes of 20+ steps), and the few slots at the ring's seam that are never sampled."""
    return capacity + capacity // 20 + 16


def bytes_per_slot(frame_shape: tuple[int, int], vector_dim: int, action_dim: int) -> int:
    """Bytes of one slot: frame + vector + action + reward + flags and bookkeeping."""
    return int(np.prod(frame_shape)) + 4 * vector_dim + 4 * action_dim + 4 + 3 + 4


class ReplayBuffer:
    """Frame-deduplicated replay for dict observations ``{"image": uint8[4,H,W], "vector": float32[k]}``."""

    def __init__(
        self,
        capacity: int,
        vector_dim: int,
        frame_shape: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
        action_dim: int = 2,
        seed: int = 0,
        memory_limit_bytes: int | None = None,
        n_step: int = 1,
        gamma: float = 0.99,
    ):
        """``n_step``: rewards summed per sampled transition (1 = plain TD3); ``gamma``: their discount."""
        if n_step < 1:
            raise ValueError(f"n_step = {n_step}: must be >= 1")
        self.n_step, self.gamma = n_step, gamma
        self.capacity = capacity
        self.n_slots = slots_for(capacity)
        need = self.n_slots * bytes_per_slot(frame_shape, vector_dim, action_dim)
        limit = available_memory_bytes() if memory_limit_bytes is None else memory_limit_bytes
        if need > 0.9 * limit:
            raise ReplayMemoryError(
                f"replay buffer of {capacity:,} transitions needs {need / 2**30:.2f} GiB but only "
                f"{limit / 2**30:.2f} GiB of memory is available; lower training.buffer_size "
                f"(at most about {int(0.9 * limit / need * capacity):,} fits)"
            )
        self.nbytes = need
        s = self.n_slots
        self.frames = np.zeros((s, *frame_shape), np.uint8)
        self.vectors = np.zeros((s, vector_dim), np.float32)
        self.actions = np.zeros((s, action_dim), np.float32)
        self.rewards = np.zeros(s, np.float32)
        self.terminated = np.zeros(s, bool)
        self.truncated = np.zeros(s, bool)
        self.episode_pos = np.zeros(s, np.int32)  # index of this frame within its episode segment
        self.is_transition = np.zeros(s, bool)  # slot starts a sampleable transition
        self.ptr = 0  # next slot to write
        self.filled = 0  # slots written, up to n_slots
        self.size = 0  # sampleable transitions
        self.rng = np.random.default_rng(seed)
        self._open = False  # the last written slot is an observation awaiting its transition
        self.staging = Staging(self.empty_batch)

    def __len__(self) -> int:
        return self.size

    def _write_frame(self, frame: np.ndarray, vector: np.ndarray, pos: int) -> int:
        i = self.ptr
        # The oldest slots after i lose the frame their stacks start from: never sample them again.
        for j in range(i, i + STACK):
            k = j % self.n_slots
            if self.is_transition[k]:
                self.is_transition[k] = False
                self.size -= 1
        self.frames[i] = frame
        self.vectors[i] = vector
        self.episode_pos[i] = pos
        self.ptr = (i + 1) % self.n_slots
        self.filled = min(self.filled + 1, self.n_slots)
        return i

    def _start_segment(self, obs: dict[str, np.ndarray]) -> None:
        image = obs["image"]
        # Frames before the first one that differs from the oldest are reset padding; the rest are
        # history that the stacks of this segment's first transitions need (e.g. after a resume).
        first = 0
        while first < STACK - 1 and np.array_equal(image[first + 1], image[0]):
            first += 1
        for pos, frame in enumerate(image[first:]):
            self._write_frame(frame, obs["vector"], pos)
        self._open = True

    def add(
        self,
        obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: float,
        next_obs: dict[str, np.ndarray],
        terminated: bool,
        truncated: bool,
    ) -> None:
        """Store one transition. ``obs`` must be the ``next_obs`` of the previous call unless that
        call ended an episode (then a new episode segment starts from ``obs``)."""
        if not self._open:
            self._start_segment(obs)
        i = (self.ptr - 1) % self.n_slots
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = terminated
        self.truncated[i] = truncated
        self._write_frame(next_obs["image"][-1], next_obs["vector"], int(self.episode_pos[i]) + 1)
        self.is_transition[i] = True
        self.size += 1
        self._open = not (terminated or truncated)

    def cut(self) -> None:
        """End the running episode's segment where it stands (its env was lost, e.g. an actor's simulator died):
        the transitions stored stay, their n-step targets stop at the last stored observation, and the next
        :meth:`add` starts a new segment instead of chaining onto this one."""
        self._open = False

    def _stack(self, last: np.ndarray) -> np.ndarray:
        """Slots ``[B, 4]`` of the frame stacks that end at slots ``last`` (clamped at the episode start)."""
        back = np.minimum(np.arange(STACK - 1, -1, -1)[None, :], self.episode_pos[last][:, None])
        return (last[:, None] - back) % self.n_slots

    def n_step_targets(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For transition slots ``idx``: (discounted reward sum ``float32[B]``, bootstrap discount
        ``float32[B]`` = gamma^m or 0 after a termination, bootstrap observation slot ``int[B]``).

        Vectorised over the batch; the loop runs over the n steps only.
        """
        reward = np.zeros(len(idx), np.float64)
        scale = np.ones(len(idx), np.float64)  # gamma^k for the k-th reward, then gamma^m
        terminal = np.zeros(len(idx), bool)
        boot = idx.copy()
        alive = np.ones(len(idx), bool)  # still summing rewards
        j = idx.copy()
        for _ in range(self.n_step):
            a = np.flatnonzero(alive)
            reward[a] += scale[a] * self.rewards[j[a]]
            scale[a] *= self.gamma
            nxt = (j + 1) % self.n_slots
            boot[a] = nxt[a]
            terminal[a] = self.terminated[j[a]]
            ended = self.terminated[j] | self.truncated[j]
            # Stop at the episode's end, and before a slot whose transition is not written yet (the
            # running episode's newest observation): it has no action or reward to sum.
            alive &= ~ended & self.is_transition[nxt]
            j = nxt
        return reward.astype(np.float32), (scale * ~terminal).astype(np.float32), boot

    def sample_indices(self, batch_size: int) -> np.ndarray:
        """Uniform sample of transition slots (rejection sampling over the few non-transition slots)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        out = np.empty(0, np.int64)
        while len(out) < batch_size:
            cand = self.rng.integers(0, self.filled, size=batch_size)
            out = np.concatenate([out, cand[self.is_transition[cand]]])
        return out[:batch_size]

    def empty_batch(self, batch_size: int) -> Batch:
        """Uninitialised numpy arrays of a batch of ``batch_size``, the fields of :class:`Batch`."""
        frame, k, a = self.frames.shape[1:], self.vectors.shape[1], self.actions.shape[1]
        return Batch(np.empty((batch_size, STACK, *frame), np.uint8), np.empty((batch_size, k), np.float32),
                     np.empty((batch_size, a), np.float32), np.empty(batch_size, np.float32),
                     np.empty((batch_size, STACK, *frame), np.uint8), np.empty((batch_size, k), np.float32),
                     np.empty(batch_size, np.float32))

    def sample_into(self, out: Batch, start: int, n: int) -> None:
        """Sample ``n`` transitions uniformly (n-step targets when ``n_step`` > 1) into rows
        ``[start, start + n)`` of the numpy arrays ``out`` (:meth:`empty_batch`)."""
        idx = self.sample_indices(n)
        reward, discount, boot = self.n_step_targets(idx)
        rows = slice(start, start + n)
        # Gathers straight into the batch's rows. mode="clip" because numpy buffers ``out`` in the default
        # mode "raise" (3x slower here); the slots are valid by construction (taken modulo n_slots).
        gather = lambda src, index, dst: np.take(src, index, axis=0, out=dst[rows], mode="clip")
        gather(self.frames, self._stack(idx), out.image)
        gather(self.vectors, idx, out.vector)
        gather(self.actions, idx, out.action)
        out.reward[rows], out.discount[rows] = reward, discount
        gather(self.frames, self._stack(boot), out.next_image)
        gather(self.vectors, boot, out.next_vector)

    def sample(self, batch_size: int, device: torch.device | str = "cpu", reuse: bool = False) -> Batch:
        """Sample ``batch_size`` transitions uniformly (n-step targets when ``n_step`` > 1), as tensors on
        ``device``. ``reuse``: gather into the same host arrays every call (see :class:`Staging`)."""
        out = self.staging.arrays(batch_size, reuse)
        self.sample_into(out, 0, batch_size)
        return batch_to(out, device)

    _ARRAYS = ("frames", "vectors", "actions", "rewards", "terminated", "truncated", "episode_pos", "is_transition")

    def state_dict(self) -> dict:
        """Contents and RNG as tensors and plain values (loadable with ``torch.load(weights_only=True)``).

        The tensors are views of the buffer's arrays, not copies (a 1M-transition CarRacing replay is ~7 GB,
        and a copy at a Ctrl-C could exhaust memory): save them before the buffer takes another transition.
        """
        n = self.filled
        state = {name: torch.from_numpy(getattr(self, name)[:n]) for name in self._ARRAYS}
        state.update(
            capacity=self.capacity, ptr=self.ptr, filled=self.filled, size=self.size, open=self._open,
            rng=self.rng.bit_generator.state,
        )
        return state

    def load_state_dict(self, state: dict) -> None:
        """Load saved contents; a buffer of another capacity keeps the most recent slots that fit."""
        n, ptr = state["filled"], state["ptr"]
        # Slots in the order they were written (oldest first), whatever the saved ring's size.
        order = np.concatenate([np.arange(ptr, n), np.arange(ptr)])
        keep = order[-self.n_slots :]
        m = len(keep)
        for name in self._ARRAYS:
            getattr(self, name)[:m] = state[name].numpy()[keep]
        if m < n:  # the oldest kept slots lost the frames their stacks start from
            self.is_transition[: min(STACK, m)] = False
        self.ptr, self.filled = m % self.n_slots, m
        self.size = int(self.is_transition[:m].sum())
        self._open = state["open"]
        self.rng.bit_generator.state = state["rng"]

    def rng_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


class VectorReplay:
    """One :class:`ReplayBuffer` per parallel env (stacks are rebuilt within one env's stream), sampled
    as one: each batch draws from the streams in proportion to the transitions they hold."""

    def __init__(self, num_envs: int, capacity: int, vector_dim: int, seed: int = 0,
                 memory_limit_bytes: int | None = None, n_step: int = 1, gamma: float = 0.99):
        limit = available_memory_bytes() if memory_limit_bytes is None else memory_limit_bytes
        per_env = -(-capacity // num_envs)
        self.buffers = [ReplayBuffer(per_env, vector_dim, seed=seeding.replay_stream_seed(seed, i),
                                     memory_limit_bytes=limit // num_envs,
                                     n_step=n_step, gamma=gamma) for i in range(num_envs)]
        self.staging = Staging(self.buffers[0].empty_batch)
        # Its own stream for choosing streams: apart from the per-env buffers' and the trainer's exploration
        # noise, so that adding an env changes no other draw.
        self.rng = seeding.rng(seed, seeding.REPLAY_STREAMS)

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers)

    def add(self, env: int, *transition) -> None:
        """``transition`` as for :meth:`ReplayBuffer.add`, from env ``env``."""
        self.buffers[env].add(*transition)

    def cut(self, env: int) -> None:
        """:meth:`ReplayBuffer.cut` on env ``env``'s stream."""
        self.buffers[env].cut()

    def sample(self, batch_size: int, device: torch.device | str = "cpu", reuse: bool = False) -> Batch:
        """As :meth:`ReplayBuffer.sample`, drawing from the streams in proportion to their sizes."""
        sizes = np.array([len(b) for b in self.buffers], np.float64)
        counts = self.rng.multinomial(batch_size, sizes / sizes.sum())
        # Each stream gathers into its rows of one batch (no per-stream tensors to concatenate).
        out = self.staging.arrays(batch_size, reuse)
        start = 0
        for b, n in zip(self.buffers, counts):
            if n > 0:
                b.sample_into(out, start, int(n))
                start += int(n)
        return batch_to(out, device)

    def rng_state(self) -> dict:
        return {"sampler": self.rng.bit_generator.state, "streams": [b.rng_state() for b in self.buffers]}

    def set_rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["sampler"]
        for b, s in zip(self.buffers, state["streams"]):
            b.set_rng_state(s)

    def state_dict(self) -> dict:
        return {"streams": [b.state_dict() for b in self.buffers],
                "sampler": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        for b, s in zip(self.buffers, state["streams"]):
            b.load_state_dict(s)
        self.rng.bit_generator.state = state["sampler"]
