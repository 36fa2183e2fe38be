from td3drive.core.files import atomic_write, read_json, write_json


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("old")
    atomic_write(path, "new")
    assert path.read_text() == "new"
    atomic_write(tmp_path / "plot.png", b"\x89PNG")
    assert (tmp_path / "plot.png").read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png", "report.md"]


def test_read_json_gives_the_object_or_none(tmp_path):
    write_json(tmp_path / "a.json", {"verdict": "GO", "steps": 3})
    assert read_json(tmp_path / "a.json") == {"verdict": "GO", "steps": 3}
    assert (tmp_path / "a.json").read_text().endswith("}\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "cut.json").write_text('{"verdict": "G')
    for name in ("missing.json", "list.json", "cut.json"):
        assert read_json(tmp_path / name) is None


def test_atomic_file_keeps_the_old_file_when_the_writer_fails(tmp_path):
    import pytest

    from td3drive.core.files import atomic_file

    path = tmp_path / "report.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as f:
            f.write(b"half of the new")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and not (tmp_path / "report.json.tmp").exists()
