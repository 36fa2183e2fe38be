import numpy as np
import torch

from td3drive.agent.augment import random_shift


def shifted(image: np.ndarray, dy: int, dx: int, pad: int = 4) -> np.ndarray:
    """Reference: pad with edge replication, crop the window at offset (dy, dx) in [-pad, pad]."""
    p = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    h, w = image.shape[1:]
    return p[:, pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def offsets_of(images: torch.Tensor, out: torch.Tensor) -> list[tuple[int, int]]:
    """The one (dy, dx) each sample was shifted by, found by comparing with every reference crop."""
    found = []
    for x, y in zip(images.numpy(), out.numpy()):
        match = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if np.array_equal(shifted(x, dy, dx), y)]
        assert len(match) == 1, match  # exactly one shift explains all 4 stacked frames at once
        found.append(match[0])
    return found


def test_each_sample_is_one_edge_replicated_shift_shared_by_its_stacked_frames():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 4, 20, 20), dtype=torch.uint8, generator=g)
    out = random_shift(images, 4, generator=g)
    assert out.shape == images.shape and out.dtype == torch.uint8
    offs = offsets_of(images, out)
    assert len(set(offs)) > 30  # different across samples (64 draws from 81 offsets)


def test_offsets_cover_minus_pad_to_pad_uniformly():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (1500, 1, 12, 12), dtype=torch.uint8, generator=g)
    offs = np.array(offsets_of(images, random_shift(images, 4, generator=g)))
    assert offs.min() == -4 and offs.max() == 4
    counts = np.bincount(offs[:, 0] + 4, minlength=9)
    assert counts.min() > 1500 / 9 * 0.7 and counts.max() < 1500 / 9 * 1.3


def test_pad_zero_is_the_identity_and_a_constant_image_is_unchanged():
    images = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    assert random_shift(images, 0) is images
    flat = torch.full((5, 4, 84, 84), 7, dtype=torch.uint8)
    assert torch.equal(random_shift(flat, 4), flat)  # edge replication adds no new pixel values
