"""The CUDA path: an update on the GPU matches the CPU update, bf16 autocast runs on CUDA, and a
checkpoint moves between devices. Skipped where no CUDA device is visible (CI has none)."""

import io

import numpy as np
import pytest
import torch

from td3drive.agent.replay import Batch, ReplayBuffer
from td3drive.agent.td3 import TD3
from td3drive.config import AgentConfig
from td3drive.core import tags

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")
B, K = 32, 3


@pytest.fixture(autouse=True)
def exact_fp32():
    # TF32 would put ~1e-3 relative error into convolutions and matmuls; compare true fp32.
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def batch(device: str) -> Batch:
    g = torch.Generator().manual_seed(0)
    img = lambda: torch.randint(0, 256, (B, 4, 84, 84), dtype=torch.uint8, generator=g)
    b = Batch(img(), torch.randn(B, K, generator=g), torch.rand(B, 2, generator=g) * 2 - 1,
              torch.randn(B, generator=g), img(), torch.randn(B, K, generator=g), torch.full((B,), 0.99))
    return Batch(*(x.to(device) for x in b))


def agent(device: str, **kw) -> TD3:
    torch.manual_seed(0)
    # No augmentation and no target smoothing noise: both draw from the device's own generator, so
    # only the deterministic part of the update is comparable across devices.
    return TD3(K, AgentConfig(augment_pad=0, policy_noise=0.0, **kw), device)


def test_two_updates_on_cuda_match_the_cpu_within_float_tolerance():
    cpu, gpu = agent("cpu"), agent("cuda")
    gpu.load_state_dict(cpu.state_dict())
    for _ in range(2):  # the second one also steps the actor and the targets (policy_freq 2)
        t_cpu, t_gpu = cpu.update(batch("cpu")), gpu.update(batch("cuda"))
    for tag in (tags.CRITIC_LOSS, tags.Q1, tags.TARGET_Q, tags.ACTOR_LOSS):
        assert t_gpu[tag] == pytest.approx(t_cpu[tag], rel=1e-4, abs=1e-5), tag
    for name in ("actor", "critic", "critic_target"):
        a, b = getattr(cpu, name).state_dict(), getattr(gpu, name).state_dict()
        for key in a:
            torch.testing.assert_close(b[key].cpu(), a[key], rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")


def test_bf16_on_cuda_runs_the_encoder_in_bfloat16_and_stays_close_to_fp32():
    fp32, bf16 = agent("cuda"), agent("cuda", precision="bf16")
    bf16.load_state_dict(fp32.state_dict())
    b = batch("cuda")
    with torch.no_grad():
        f32 = fp32._encode(fp32.critic.encoder, b.image, b.vector)
        f16 = bf16._encode(bf16.critic.encoder, b.image, b.vector)
    assert f16.dtype == torch.float32  # the heads read fp32 features
    assert (f16 - f32).abs().max().item() < 0.05  # LayerNorm + tanh features lie in [-1, 1]
    assert (f16 - f32).abs().max().item() > 0  # it did run in reduced precision
    telemetry = bf16.update(b)
    assert np.isfinite(list(telemetry.values())).all()
    assert all(p.dtype == torch.float32 for p in bf16.critic.parameters())


def test_checkpoint_saved_on_cuda_loads_on_cpu_and_back():
    gpu = agent("cuda")
    gpu.update(batch("cuda"))
    buf = io.BytesIO()
    torch.save(gpu.state_dict(), buf)
    buf.seek(0)
    cpu = agent("cpu")
    cpu.load_state_dict(torch.load(buf, map_location="cpu", weights_only=True))
    image = np.random.default_rng(0).integers(0, 256, (4, 84, 84), dtype=np.uint8)
    vector = np.zeros(K, np.float32)
    np.testing.assert_allclose(cpu.act(image, vector), gpu.act(image, vector), rtol=1e-4, atol=1e-5)
    back = agent("cuda")
    back.load_state_dict(cpu.state_dict())
    assert next(back.actor.parameters()).device.type == "cuda"
    np.testing.assert_allclose(back.act(image, vector), gpu.act(image, vector), rtol=1e-5, atol=1e-6)


def test_replay_sample_lands_on_cuda_with_the_same_values():
    buf = ReplayBuffer(64, K, seed=0, n_step=3, gamma=0.9)
    rng = np.random.default_rng(0)
    frame = lambda: rng.integers(0, 256, (4, 84, 84), dtype=np.uint8)
    obs = {"image": frame(), "vector": np.zeros(K, np.float32)}
    for i in range(40):
        nxt = {"image": frame(), "vector": np.full(K, i, np.float32)}
        buf.add(obs, np.zeros(2, np.float32), 1.0, nxt, terminated=False, truncated=i % 10 == 9)
        obs = nxt
    state = buf.rng_state()
    on_cpu = buf.sample(16, "cpu")
    buf.set_rng_state(state)
    on_gpu = buf.sample(16, "cuda")
    for a, b in zip(on_cpu, on_gpu):
        assert b.device.type == "cuda"
        torch.testing.assert_close(b.cpu(), a)
