"""Token shards: exact round trip replay → tokens → shards, resumable writing, URLs, tokenizer identity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jowa.data.replay import read_episodes
from jowa.data.replay_layout import replay_log_dir
from jowa.data.replay_writer import ReplayWriter
from jowa.data.shards import (
    INDEX_NAME, TokenEpisode, encode_episode, finished_records, iter_episodes, iter_shard, resolve_shards,
)
from jowa.data.tokenize import encode_frames, load_encoder, patch_quantizer
from jowa.data.tokenize_replay import tokenize_replay
from jowa.games import minimal_to_full, task_id


def write_replay(root: Path, game: str, lengths: list[int], seed: int, capacity: int = 64) -> None:
    rng = np.random.default_rng(seed)
    writer = ReplayWriter(replay_log_dir(root, game, "1"), capacity=capacity)
    for length in lengths:
        frames = (rng.integers(0, 4, (length, 84, 84)) * 60 + 10).astype(np.uint8)  # coarse: varied tokens
        terminals = np.zeros(length, np.uint8)
        terminals[-1] = 1
        writer.add_rows(frames, rng.integers(0, len(minimal_to_full(game)), length),
                        rng.choice(np.array([-1, 0, 1], np.float32), length), terminals)
    writer.log_final()


@pytest.fixture()
def replay(tmp_path) -> Path:
    root = tmp_path / "replay"
    write_replay(root, "Pong", [30, 55, 12, 70], seed=1)
    write_replay(root, "Breakout", [25, 40, 33], seed=2)
    return root


def shard_contents(out: Path) -> dict[str, TokenEpisode]:
    return {e.id: e for e in iter_episodes(resolve_shards(out))}


def test_episode_member_round_trip():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 2048, (17, 36)).astype(np.uint16)
    actions, rewards = rng.integers(0, 18, 17), rng.normal(size=17).astype(np.float32)
    terminals = np.zeros(17, np.uint8)
    terminals[-1] = 1
    episode = TokenEpisode(encode_episode("Pong/1/3/0", "Pong", tokens, actions, rewards, terminals))
    assert (episode.id, episode.game, episode.task, len(episode)) == ("Pong/1/3/0", "Pong", task_id("Pong"), 17)
    np.testing.assert_array_equal(episode.tokens, tokens)
    np.testing.assert_array_equal(episode.actions, actions)
    np.testing.assert_array_equal(episode.rewards, rewards)
    np.testing.assert_array_equal(episode.terminals, terminals)
    assert episode.tokens.dtype == np.uint16 and episode.actions.dtype == np.uint8
    with pytest.raises(ValueError, match="do not describe the same"):
        encode_episode("x", "Pong", tokens, actions[:-1], rewards, terminals)


def test_tokenize_writes_every_episode_exactly(replay, tmp_path):
    out = tmp_path / "tokens"
    report = tokenize_replay(replay, "patch-quantizer", out, max_steps_per_shard=60, batch_frames=50, progress=False)
    episodes = {e.key: e for e in read_episodes(replay)}
    got = shard_contents(out)
    assert sorted(got) == sorted(f"{k}/0" for k in episodes)
    for key, source in episodes.items():
        shard = got[f"{key}/0"]
        assert shard.game == source.game and len(shard) == len(source)
        np.testing.assert_array_equal(shard.tokens, patch_quantizer(torch.from_numpy(source.frames)).numpy())
        np.testing.assert_array_equal(shard.actions, source.actions)
        np.testing.assert_array_equal(shard.rewards, source.rewards)
        np.testing.assert_array_equal(shard.terminals, source.terminals)
    index = json.loads((out / INDEX_NAME).read_text())
    assert index["tokenizer"] == "patch-quantizer" and index["transitions"] == 167 + 98 == report.transitions
    assert index["games"] == {"Breakout": {"task": 13, "episodes": 3, "transitions": 98},
                              "Pong": {"task": 39, "episodes": 4, "transitions": 167}}
    assert [s["name"] for s in index["shards"]] == [  # rolled at 60 steps, whole episodes per shard
        "Breakout-1-00000.tar", "Breakout-1-00001.tar", "Pong-1-00000.tar", "Pong-1-00001.tar"]
    assert [s["lengths"] for s in index["shards"]] == [[25, 40], [33], [30, 55], [12, 70]]
    assert index["bytes"] == sum(p.stat().st_size for p in out.glob("*.tar"))


def test_rerun_resumes_after_an_interruption(replay, tmp_path):
    out = tmp_path / "tokens"
    tokenize_replay(replay, "patch-quantizer", out, max_steps_per_shard=60, progress=False)
    complete = shard_contents(out)
    record = out / "Pong-1-00001.tar.json"
    lost = json.loads(record.read_text())["episodes"]
    record.unlink()  # the last Pong shard never got its commit record: unfinished
    (out / "Pong-1-00099.tar.tmp").write_bytes(b"partial")
    report = tokenize_replay(replay, "patch-quantizer", out, max_steps_per_shard=60, progress=False)
    assert (report.shards_written, report.shards_kept) == (1, 3)
    assert report.episodes == len(lost) == 2 and report.transitions == 12 + 70
    assert not list(out.glob("*.tmp"))
    again = shard_contents(out)
    assert sorted(again) == sorted(complete)  # each episode exactly once
    for key, episode in complete.items():
        np.testing.assert_array_equal(again[key].tokens, episode.tokens)
    nothing = tokenize_replay(replay, "patch-quantizer", out, progress=False)
    assert nothing.shards_written == 0 and nothing.episodes == 0


def test_other_tokenizer_refuses_to_mix(replay, tmp_path):
    out = tmp_path / "tokens"
    tokenize_replay(replay, "patch-quantizer", out, progress=False)
    with pytest.raises(ValueError, match="holds shards from tokenizer patch-quantizer"):
        tokenize_replay(replay, lambda f: patch_quantizer(f) % 7, out, encoder_name="mod7", progress=False)


def test_pipe_url_streams_the_same_episodes(replay, tmp_path):
    out = tmp_path / "tokens"
    tokenize_replay(replay, "patch-quantizer", out, progress=False)
    shard = sorted(out.glob("*.tar"))[0]
    local = list(iter_shard(str(shard)))
    piped = list(iter_shard(f"pipe:cat {shard}"))
    assert [e.id for e in piped] == [e.id for e in local] and len(local) >= 1
    for a, b in zip(local, piped):
        np.testing.assert_array_equal(a.tokens, b.tokens)


def test_subsample_copies_are_written_as_separate_samples(replay, tmp_path):
    out = tmp_path / "tokens"
    report = tokenize_replay(replay, "patch-quantizer", out, games=["Pong"], runs_per_game=1,
                             transitions_per_game=400, seed=0, progress=False)
    got = shard_contents(out)
    assert report.episodes == len(got) == 10  # ceil(400 / (167 / 4)) draws with replacement
    assert any(key.endswith("/1") for key in got)  # a duplicate draw, as the official script allows
    for key, episode in got.items():
        original = got[key.rsplit("/", 1)[0] + "/0"]
        np.testing.assert_array_equal(episode.tokens, original.tokens)


def test_checkpoint_tokenizer_is_loaded_lazily_with_its_sha256(tmp_path):
    from jowa.config import TokenizerConfig
    from jowa.tokenizer import Tokenizer

    torch.manual_seed(0)
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=64, embed_dim=8, z_channels=8, ch=4, num_res_blocks=1,
                                          attn_resolutions=(), lpips_net="none"))
    tokenizer.save_pretrained(tmp_path / "tok")
    encode, identity = load_encoder(str(tmp_path / "tok"))
    import hashlib

    assert identity == "sha256:" + hashlib.sha256((tmp_path / "tok" / "model.safetensors").read_bytes()).hexdigest()
    frames = np.random.default_rng(0).integers(0, 256, (5, 84, 84), dtype=np.uint8)
    tokens = encode_frames(encode, frames)
    assert tokens.dtype == np.uint16 and tokens.shape == (5, 36)
    np.testing.assert_array_equal(tokens, tokenizer.encode_tokens(torch.from_numpy(frames)).numpy())
    with pytest.raises(ValueError, match="not a checkpoint directory"):
        load_encoder(str(tmp_path / "nowhere"))
    assert finished_records(tmp_path / "nowhere") == []


def test_prepare_cli_tokenizes_a_subsample_and_shows_info(replay, tmp_path, capsys):
    """The README's prepare.py commands: a checkpoint tokenizer, the JOWA subsample, then `info`."""
    import importlib.util

    from jowa.config import TokenizerConfig
    from jowa.tokenizer import Tokenizer

    spec = importlib.util.spec_from_file_location("prepare", Path(__file__).resolve().parent.parent / "data/atari/prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    torch.manual_seed(0)
    Tokenizer(TokenizerConfig(vocab_size=64, embed_dim=8, z_channels=8, ch=4, num_res_blocks=1, attn_resolutions=(),
                              lpips_net="none")).save_pretrained(tmp_path / "tok")
    out = tmp_path / "tokens"
    prepare.main(["tokenize", "--replay", str(replay), "--tokenizer", str(tmp_path / "tok"), "--out", str(out),
                  "--runs-per-game", "1", "--transitions-per-game", "100", "--device", "cpu"])
    index = json.loads((out / INDEX_NAME).read_text())
    assert set(index["games"]) == {"Pong", "Breakout"}
    assert all(g["transitions"] >= 100 for g in index["games"].values())  # whole episodes up to the budget
    capsys.readouterr()
    prepare.main(["info", "--out", str(out)])
    shown = capsys.readouterr().out
    assert "Pong" in shown and "Breakout" in shown and "bytes/transition" in shown
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["tokenize", "--replay", str(tmp_path / "missing"), "--tokenizer", "patch-quantizer",
                      "--out", str(tmp_path / "other")])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith("error: ")
