import struct

import numpy as np
import pytest
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto

from td3drive.analysis import events
from td3drive.analysis.events import EventReadError, find_event_files, masked_crc, read_run

both_paths = pytest.mark.parametrize("pure_python", [False, True], ids=["c", "python"])


def record(event: Event) -> bytes:
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


def scalar(tag, step, value, wall=1.0):
    return Event(wall_time=wall, step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]))


def write(path, events_):
    path.write_bytes(b"".join(record(e) for e in events_))
    return path


def test_c_fast_path_is_built():
    assert events._scan is not events._scan_py, "the C reader was not built; install with a C compiler"


@both_paths
def test_reads_torch_summary_writer_files(tmp_path, pure_python):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    for i in range(50):
        w.add_scalar("train/critic_loss", 1.0 / (i + 1), i * 10)
        w.add_scalar("train/q1_value", float(i), i * 10)
    w.add_scalars("pair", {"a": 1.0, "b": 2.0}, 7)
    w.close()
    r = read_run(tmp_path, pure_python=pure_python)
    assert r.warnings == []
    s = r["train/critic_loss"]
    assert s.steps.tolist() == list(range(0, 500, 10))
    np.testing.assert_allclose(s.values, [np.float32(1.0 / (i + 1)) for i in range(50)])
    assert r["train/q1_value"].values[-1] == 49.0
    # add_scalars writes one subdirectory per key: kept as their own series
    assert r["pair_a/pair"].values.tolist() == [1.0] and r["pair_b/pair"].values.tolist() == [2.0]
    df = r.to_frame()
    assert list(df.columns) == ["tag", "step", "wall_time", "value"] and len(df) == 102


@both_paths
def test_reads_tensorboardx_files(tmp_path, pure_python):
    from tensorboardX import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    for i in range(5):
        w.add_scalar("x", i * 0.5, i)
    w.close()
    assert read_run(tmp_path, pure_python=pure_python)["x"].values.tolist() == [0, 0.5, 1.0, 1.5, 2.0]


@both_paths
def test_tensor_scalars_float_double_and_content(tmp_path, pure_python):
    def tensor_event(tag, step, proto):
        return Event(step=step, wall_time=2.0, summary=Summary(value=[Summary.Value(tag=tag, tensor=proto)]))

    write(tmp_path / "events.out.tfevents.1.h", [
        Event(wall_time=1.0, file_version="brain.Event:2"),
        tensor_event("f", 1, TensorProto(dtype=1, float_val=[1.5])),
        tensor_event("d", 1, TensorProto(dtype=2, double_val=[2.25])),
        tensor_event("d", 2, TensorProto(dtype=2, tensor_content=struct.pack("<d", 1e300))),
        tensor_event("f", 2, TensorProto(dtype=1, tensor_content=struct.pack("<f", -3.0))),
        tensor_event("s", 1, TensorProto(dtype=7, string_val=[b"text"])),  # not a scalar: ignored
    ])
    r = read_run(tmp_path, pure_python=pure_python)
    assert r["f"].values.tolist() == [1.5, -3.0]
    assert r["d"].values.tolist() == [2.25, 1e300] and r["d"].steps.tolist() == [1, 2]
    assert "s" not in r.series


@both_paths
def test_truncated_tail_is_a_warning_and_data_kept(tmp_path, pure_python):
    f = write(tmp_path / "events.out.tfevents.1.h", [scalar("a", i, float(i)) for i in range(10)])
    f.write_bytes(f.read_bytes()[:-7])
    r = read_run(tmp_path, pure_python=pure_python)
    assert r["a"].values.tolist() == [float(i) for i in range(9)]
    assert len(r.warnings) == 1 and "truncated last record" in r.warnings[0]


@both_paths
def test_flipped_byte_mid_file_is_reported_and_later_records_read(tmp_path, pure_python):
    recs = [record(scalar("a", i, float(i))) for i in range(10)]
    buf = bytearray(b"".join(recs))
    offset = sum(len(r) for r in recs[:4]) + 20  # inside the payload of record 4
    buf[offset] ^= 0xFF
    (tmp_path / "events.out.tfevents.1.h").write_bytes(bytes(buf))
    r = read_run(tmp_path, pure_python=pure_python)
    assert r["a"].steps.tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    start4 = sum(len(r) for r in recs[:4])
    assert len(r.warnings) == 1
    assert (
        f"corrupt record payload at byte {start4}" in r.warnings[0]
        and f"resumed at byte {start4 + len(recs[4])}" in r.warnings[0]
    )


@both_paths
def test_corrupt_length_header_resynchronises(tmp_path, pure_python):
    recs = [record(scalar("a", i, float(i))) for i in range(6)]
    buf = bytearray(b"".join(recs))
    buf[len(recs[0]) + 2] ^= 0x40  # the length field of record 1
    (tmp_path / "events.out.tfevents.1.h").write_bytes(bytes(buf))
    r = read_run(tmp_path, pure_python=pure_python)
    assert r["a"].steps.tolist() == [0, 2, 3, 4, 5]
    assert "corrupt record header at byte" in r.warnings[0]


def test_empty_garbage_and_missing_paths(tmp_path):
    (tmp_path / "events.out.tfevents.1.empty").write_bytes(b"")
    (tmp_path / "events.out.tfevents.2.junk").write_bytes(b"this is not an event file at all, just text\n" * 20)
    write(tmp_path / "events.out.tfevents.3.ok", [scalar("a", 1, 1.0)])
    r = read_run(tmp_path)
    assert r["a"].values.tolist() == [1.0]
    assert any("empty file" in w for w in r.warnings)
    assert any("not a TensorBoard event file" in w for w in r.warnings)
    with pytest.raises(EventReadError, match="no such file"):
        read_run(tmp_path / "nope")
    (tmp_path / "sub").mkdir()
    with pytest.raises(EventReadError, match="no TensorBoard event files"):
        read_run(tmp_path / "sub")


@both_paths
def test_files_merge_in_order_and_purge_step_drops_orphans(tmp_path, pure_python):
    write(tmp_path / "events.out.tfevents.100.h", [scalar("a", s, float(s)) for s in (10, 20, 30, 40)])
    write(tmp_path / "events.out.tfevents.200.h", [
        Event(step=30, session_log=SessionLog(status=SessionLog.START)),
        scalar("a", 30, 300.0), scalar("a", 40, 400.0),
    ])
    r = read_run(tmp_path, pure_python=pure_python)
    assert r["a"].steps.tolist() == [10, 20, 30, 40]
    assert r["a"].values.tolist() == [10.0, 20.0, 300.0, 400.0]


@both_paths
def test_non_finite_and_large_steps_survive(tmp_path, pure_python):
    write(tmp_path / "events.out.tfevents.1.h", [scalar("a", 0, float("nan")), scalar("a", 2**40, float("inf")),
                                                 scalar("a", 3, -2.7e9)])
    v = read_run(tmp_path, pure_python=pure_python)["a"]
    assert np.isnan(v.values[0]) and v.values[1] == np.inf and v.values[2] == pytest.approx(-2.7e9, rel=1e-6)
    assert v.steps.tolist() == [0, 2**40, 3]


def test_files_of_one_second_are_ordered_by_writer_counter_as_numbers(tmp_path):
    # One process, same second: torch names its writers ...<pid>.9 and ...<pid>.10; "10" sorts before
    # "9" as text, which would apply the resumed writer's purge before the data it purges.
    write(tmp_path / "events.out.tfevents.100.h.7.9", [scalar("a", s, float(s)) for s in (10, 20, 30, 40)])
    write(tmp_path / "events.out.tfevents.100.h.7.10", [
        Event(step=30, session_log=SessionLog(status=SessionLog.START)), scalar("a", 30, 300.0)])
    assert [f.name.split(".", 4)[-1] for f in find_event_files(tmp_path)] == ["h.7.9", "h.7.10"]
    assert read_run(tmp_path)["a"].values.tolist() == [10.0, 20.0, 300.0]
