"""Event-file reader speed: td3drive's reader vs tbparse vs TensorBoard's EventAccumulator, side by side.

Generates one event file of N scalar events (20 tags, simple_value, the layout torch's
SummaryWriter writes), then reads it with each reader several times and reports the median.

    python bench/event_reader.py --scalars 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary

from td3drive.analysis.events import masked_crc, read_run


def generate(path: Path, n: int) -> None:
    def record(event: Event) -> bytes:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))

    tags = [f"train/metric_{i:02d}" for i in range(20)]
    values = np.random.default_rng(0).normal(size=n)
    chunks = [record(Event(wall_time=1.7e9, file_version="brain.Event:2"))]
    for i in range(n):
        summary = Summary(value=[Summary.Value(tag=tags[i % 20], simple_value=values[i])])
        chunks.append(record(Event(wall_time=1.7e9 + i * 1e-3, step=(i // 20) * 10, summary=summary)))
    path.write_bytes(b"".join(chunks))


def timed(fn, repeats: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), count


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scalars", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-accumulator", action="store_true")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "events.out.tfevents.1700000000.bench"
        generate(f, a.scalars)
        print(f"file: {a.scalars:,} scalars, {f.stat().st_size / 2**20:.1f} MiB")
        results = {}
        results["td3drive (C fast path)"] = timed(
            lambda: sum(len(s.values) for s in read_run(d).series.values()), a.repeats
        )
        results["td3drive (pure Python)"] = timed(
            lambda: sum(len(s.values) for s in read_run(d, pure_python=True).series.values()), a.repeats)
        from tbparse import SummaryReader

        results["tbparse SummaryReader"] = timed(lambda: len(SummaryReader(d).scalars), a.repeats)
        if not a.skip_accumulator:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

            def acc() -> int:
                ea = EventAccumulator(d, size_guidance={"scalars": 0})
                ea.Reload()
                return sum(len(ea.Scalars(t)) for t in ea.Tags()["scalars"])

            results["TensorBoard EventAccumulator"] = timed(acc, a.repeats)
        base = results["td3drive (C fast path)"][0]
        print(f"| reader | median s ({a.repeats} runs) | scalars read | vs td3drive |")
        print("|---|---|---|---|")
        for name, (t, n) in results.items():
            print(f"| {name} | {t:.2f} | {n:,} | {t / base:.1f}x |")


if __name__ == "__main__":
    main()
