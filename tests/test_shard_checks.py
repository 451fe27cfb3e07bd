"""Token shards are checked against index.json before any work: sizes always, sha256 when asked; a bad
shard is named in one line, also when a DataLoader worker finds it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from jowa.data.segments import SegmentDataset, make_loader
from jowa.data.shards import INDEX_NAME, ShardError, ShardWriter, resolve_shards, verify_shards, write_index
from jowa.model_files import file_sha256

REPO = Path(__file__).resolve().parent.parent


def write_shards(out: Path, episodes: int = 6, steps: int = 40) -> Path:
    rng = np.random.default_rng(0)
    writer = ShardWriter(out, "Pong", tokenizer="test-tokenizer", max_steps=2 * steps)
    for i in range(episodes):
        terminals = np.zeros(steps, np.uint8)
        terminals[-1] = 1
        writer.write(f"Pong/1/0/{i}", "Pong", rng.integers(0, 512, (steps, 36)), rng.integers(0, 6, steps),
                     rng.choice(np.array([-1.0, 0.0, 1.0], np.float32), steps), terminals)
        writer.roll_if_full()
    writer.close()
    write_index(out)
    return out


def prepare_cli():
    spec = importlib.util.spec_from_file_location("prepare_checks", REPO / "data/atari/prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_index_records_size_and_sha256_of_every_shard(tmp_path: Path) -> None:
    out = write_shards(tmp_path / "tokens")
    index = json.loads((out / INDEX_NAME).read_text())
    assert len(index["shards"]) == 3
    for entry in index["shards"]:
        path = out / entry["name"]
        assert entry["bytes"] == path.stat().st_size and entry["sha256"] == file_sha256(path)
    assert verify_shards(resolve_shards(out), checksums=True) == 3


def test_a_truncated_shard_fails_before_any_batch(tmp_path: Path, capsys) -> None:
    out = write_shards(tmp_path / "tokens")
    bad = out / "Pong-00001.tar"
    bad.write_bytes(bad.read_bytes()[:3000])
    with pytest.raises(ShardError, match=r"Pong-00001\.tar: 3,000 bytes on disk, index\.json records"):
        SegmentDataset(out, batch_size=2)
    with pytest.raises(SystemExit) as exit_info:
        prepare_cli().main(["info", "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "Pong-00001.tar" in err


def test_verify_finds_an_altered_shard_of_the_same_size(tmp_path: Path, capsys) -> None:
    out = write_shards(tmp_path / "tokens")
    bad = out / "Pong-00002.tar"
    data = bytearray(bad.read_bytes())
    data[1200:1210] = bytes(10)
    bad.write_bytes(bytes(data))
    prepare = prepare_cli()
    prepare.main(["info", "--out", str(out)])  # sizes agree: healthy by size
    assert "checked: every shard has the size" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["info", "--out", str(out), "--verify"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Pong-00002.tar: sha256 differs" in err and err.count("\n") == 1


def test_a_damaged_shard_found_by_a_loader_worker_is_named_in_one_line(tmp_path: Path) -> None:
    out = write_shards(tmp_path / "tokens")
    bad = out / "Pong-00000.tar"
    data = bytearray(bad.read_bytes())
    data[700:900] = bytes(200)  # inside the first episode's zlib payload; the size is unchanged
    bad.write_bytes(bytes(data))
    loader = make_loader(SegmentDataset(out, batch_size=2, epochs=1, shuffle_buffer=1), num_workers=1)
    with pytest.raises(ShardError) as error:
        list(loader)
    message = str(error.value)
    assert "\n" not in message and "Pong-00000.tar" in message and "Traceback" not in message


def test_the_worker_traceback_form_keeps_only_the_message() -> None:
    wrapped = ("Caught ShardError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
               '  File "x.py", line 1, in f\njowa.data.shards.ShardError: a.tar: unreadable tar shard (boom)\n')
    assert str(ShardError(wrapped)) == "a.tar: unreadable tar shard (boom)"
