"""The observation/action contract's sizes (docs/ARCHITECTURE.md): one home for every module that shapes arrays."""

from __future__ import annotations

IMAGE_SIZE = 84  # pixels, each side of a camera frame (uint8 grayscale)
FRAME_STACK = 4  # frames per observation, oldest first: image is uint8 [FRAME_STACK, IMAGE_SIZE, IMAGE_SIZE]
ACTION_DIM = 2  # [steer, accel] in [-1, 1]: accel > 0 throttle, < 0 brake
