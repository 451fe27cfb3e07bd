"""Episode sources (jowa.data.source): DQN-Replay behind the interface, Minari datasets read and written with
`minari`'s own API, and every consumer (frame pool, tokenization, subsample, fine-tuning data, pretraining
checks) fed from either."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari")
from minari.data_collector.episode_buffer import EpisodeBuffer  # noqa: E402

from jowa.data.dqn_replay_source import DqnReplaySource  # noqa: E402
from jowa.data.episodes import Episode  # noqa: E402
from jowa.data.minari_export import default_dataset_id, export_minari  # noqa: E402
from jowa.data.minari_source import MinariSource, game_of  # noqa: E402
from jowa.data.replay import read_run, scan_run  # noqa: E402
from jowa.data.replay_layout import replay_log_dir  # noqa: E402
from jowa.data.replay_writer import ReplayWriter  # noqa: E402
from jowa.data.shards import iter_episodes, resolve_shards  # noqa: E402
from jowa.data.source import EpisodeSource, open_source  # noqa: E402
from jowa.data.subsample import plan_subsample, read_selection  # noqa: E402
from jowa.data.tokenize_replay import tokenize_replay  # noqa: E402
from jowa.finetuning.data import choose, game_spans, read_picks  # noqa: E402
from jowa.games import minimal_to_full  # noqa: E402
from jowa.training.frames import load_frame_pool  # noqa: E402
from jowa.training.pretrain import check_replay  # noqa: E402

LENGTHS = {"Pong": [30, 45, 20], "Breakout": [25, 40]}


def write_replay(root: Path, game: str, lengths: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    writer = ReplayWriter(replay_log_dir(root, game, "1"), capacity=64)  # several chunks per run
    for length in lengths:
        terminals = np.zeros(length, np.uint8)
        terminals[-1] = 1
        writer.add_rows((rng.integers(0, 4, (length, 84, 84)) * 60 + 10).astype(np.uint8),
                        rng.integers(0, len(minimal_to_full(game)), length),
                        rng.choice(np.array([-1, 0, 1], np.float32), length), terminals)
    writer.log_final()


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    for seed, (game, lengths) in enumerate(LENGTHS.items()):
        write_replay(root, game, lengths, seed)
    return root


@pytest.fixture(scope="module")
def exported(replay: Path, tmp_path_factory) -> Path:
    """The replay's episodes as Minari datasets, one per game."""
    root = tmp_path_factory.mktemp("minari")
    source = DqnReplaySource(replay)
    for game in source.games():
        export_minari((e for run in source.runs(game) for e in source.read(game, run)), root,
                      default_dataset_id(game), chunk=2)
    return root


def build_minari(root: Path, dataset_id: str, buffers: list[EpisodeBuffer], observation_space: gym.Space,
                 action_space: gym.Space, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    minari.create_dataset_from_buffers(dataset_id, buffers, observation_space=observation_space,
                                       action_space=action_space, jpeg_encoding=False)
    return root / dataset_id


def same_episode(a: Episode, b: Episode) -> bool:
    """Same rows (a start is an identity within its own source only)."""
    return (a.game == b.game and np.array_equal(a.frames, b.frames)
            and np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
            and np.array_equal(a.terminals, b.terminals))


def test_dqn_replay_source_is_the_replay_reader(replay: Path) -> None:
    source = open_source(replay)
    assert isinstance(source, DqnReplaySource) and isinstance(source, EpisodeSource)
    assert source.games() == ["Breakout", "Pong"] and source.runs("Pong") == ["1"]
    assert len(source.parts("Pong", "1")) > 1
    assert list(source.scan("Pong", "1")) == list(scan_run(replay, "Pong", "1"))
    mine, direct = list(source.read("Pong", "1")), list(read_run(replay, "Pong", "1"))
    assert [len(e) for e in mine] == LENGTHS["Pong"] and all(map(same_episode, mine, direct))
    assert open_source(f"dqn-replay:{replay}").describe() == f"dqn-replay:{replay}"
    with pytest.raises(ValueError, match="skip_bad does not apply"):
        open_source(f"minari:{replay}", skip_bad=True)


def test_minari_source_reads_ale_screens_minimal_actions_and_clips_rewards(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    n_min = len(minimal_to_full("Breakout"))  # 4
    buffers = []
    for n, end in ((6, "terminations"), (4, "truncations")):
        flags = {"terminations": np.zeros(n, bool), "truncations": np.zeros(n, bool)}
        flags[end][-1] = True
        buffers.append(EpisodeBuffer(observations=rng.integers(0, 256, (n + 1, 210, 160, 3), dtype=np.uint8),
                                     actions=rng.integers(0, n_min, n), rewards=np.array([0, 4, -2, 1, 0, 0][:n], float),
                                     **flags))
    build_minari(tmp_path, "atari/breakout/random-v0", buffers, gym.spaces.Box(0, 255, (210, 160, 3), np.uint8),
                 gym.spaces.Discrete(n_min), monkeypatch)
    source = open_source(tmp_path)
    assert isinstance(source, MinariSource) and source.games() == ["Breakout"]
    assert source.runs("Breakout") == ["atari-breakout-random-v0"]
    run = "atari-breakout-random-v0"
    assert [(s.start, s.length) for s in source.scan("Breakout", run)] == [(0, 6), (6, 4)]
    first, second = source.read("Breakout", run)
    assert first.frames.shape == (6, 84, 84) and first.frames.dtype == np.uint8
    assert first.actions.tolist() == [minimal_to_full("Breakout")[a] for a in buffers[0].actions]
    assert first.rewards.tolist() == [0, 1, -1, 1, 0, 0]  # clipped as DQN-Replay logged them
    assert first.terminals.tolist() == [0] * 5 + [1] and second.terminals.tolist() == [0, 0, 0, 1]
    assert (second.key, len(second)) == (f"Breakout/{run}/6", 4)
    raw = MinariSource(tmp_path, clip_rewards=False)
    assert next(raw.read("Breakout", run)).rewards.tolist() == [0, 4, -2, 1, 0, 0]
    assert [e.start for e in source.read("Breakout", run, want=lambda r, start: start > 0)] == [6]


def test_minari_game_names() -> None:
    assert game_of("atari/spaceinvaders/expert-v0", None) == "SpaceInvaders"
    assert game_of("mine/x-v1", "ALE/MsPacman-v5") == "MsPacman"
    assert game_of("d4rl/y-v0", "PongNoFrameskip-v4") == "Pong"
    with pytest.raises(ValueError, match="no Atari game"):
        game_of("mujoco/hopper/expert-v0", None)


def test_export_then_read_gives_the_episodes_back(replay: Path, exported: Path) -> None:
    dqn, mine = DqnReplaySource(replay), open_source(exported)
    assert mine.games() == dqn.games()
    for game in dqn.games():
        (run,) = mine.runs(game)
        assert run == f"atari-{game.lower()}-jowa-v0"
        episodes = list(mine.read(game, run))
        assert all(map(same_episode, episodes, dqn.read(game, "1")))
        assert [e.start for e in episodes] == np.cumsum([0, *LENGTHS[game][:-1]]).tolist()
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_minari(dqn.read("Pong", "1"), exported, default_dataset_id("Pong"))


def test_every_consumer_reads_minari_as_it_reads_dqn_replay(replay: Path, exported: Path, tmp_path: Path) -> None:
    assert check_replay(exported, None) == check_replay(replay, None) == ["Breakout", "Pong"]
    pool = load_frame_pool(exported, None, max_frames=500, scan_limit=10_000, seed=0)
    every = np.concatenate([e.frames for e in DqnReplaySource(replay).read("Pong", "1")]
                           + [e.frames for e in DqnReplaySource(replay).read("Breakout", "1")])
    assert len(pool.frames) == len(every) == 160 and set(pool.samples) == {"Pong", "Breakout"}  # all fit the pool
    assert np.array_equal(np.sort(pool.frames.reshape(160, -1), 0), np.sort(every.reshape(160, -1), 0))

    spans = game_spans(exported, "Pong")
    picks = choose(spans, 50, "last")
    assert [(p.span.start, p.first, p.length) for p in picks] == [(30, 15, 30), (75, 0, 20)]  # the end of the 45
    pieces = read_picks(exported, picks)
    assert [len(e) for e in pieces] == [30, 20] and pieces[0].start == 45 and pieces[-1].terminals[-1] == 1

    plan = plan_subsample(exported, ["Pong"], runs_per_game=1, transitions_per_game=60, seed=0)
    chosen = list(read_selection(exported, plan["Pong"]))
    assert sum(copies for _, copies in chosen) == plan["Pong"].episodes

    for name, source in (("dqn", replay), ("minari", exported)):
        report = tokenize_replay(source, "patch-quantizer", tmp_path / name, progress=False)
        assert (report.episodes, report.transitions) == (5, 160)
    tokens = {name: sorted((e.game, e.steps, e.tokens.tobytes()) for e in iter_episodes(resolve_shards(tmp_path / name)))
              for name in ("dqn", "minari")}
    assert tokens["dqn"] == tokens["minari"]


PRETRAIN_FAST = [
    "model.tokenizer.lpips_net=none", "tokenizer.steps=2", "tokenizer.batch_size=4", "tokenizer.grid_every=2",
    "tokenizer.pool_frames=200", "tokenizer.scan_frames=1000", "world.steps=2", "world.critic_start=1",
    "world.batch_size=4", "world.target_update_every=2", "checkpoint.every=2", "logging.every=1",
    "logging.progress_bar=false", "data.num_workers=0", "data.shuffle_buffer=16",
]
FINETUNE_FAST = ["batch_size=4", "checkpoint.every=2", "logging.every=1", "logging.progress_bar=false",
                 "evaluation.every=0", "evaluation.final.episodes=0"]


@pytest.mark.slow
def test_pretrain_and_finetune_from_minari_datasets(exported: Path, tmp_path: Path, monkeypatch) -> None:
    from jowa.finetuning.run import FinetuneOptions, finetune
    from jowa.training.distributed import init_distributed
    from jowa.training.pretrain import PretrainOptions, pretrain

    summary = pretrain(PretrainOptions(size="tiny", out=tmp_path / "run", replay=exported, overrides=PRETRAIN_FAST),
                       init_distributed("cpu", argv=[]))
    assert list(summary["stages"]) == ["tokenizer", "tokenize", "world"]
    index = (tmp_path / "run" / "tokens" / "index.json").read_text()
    assert '"kind": "minari"' in index and '"Pong"' in index

    rng = np.random.default_rng(3)
    buffers = [EpisodeBuffer(observations=(rng.integers(0, 4, (n + 1, 84, 84)) * 60).astype(np.uint8),
                             actions=rng.integers(0, 18, n), rewards=rng.choice([-1.0, 0.0, 1.0], n),
                             terminations=np.arange(n) == n - 1, truncations=np.zeros(n, bool)) for n in (30, 40)]
    held_out = build_minari(tmp_path / "held-out", "atari/assault/random-v0", buffers,
                            gym.spaces.Box(0, 255, (84, 84), np.uint8), gym.spaces.Discrete(18), monkeypatch)
    result = finetune(FinetuneOptions(run=tmp_path / "run", game="Assault", out=tmp_path / "ft",
                                      replay=Path(f"minari:{held_out}"), transitions=50, steps=2,
                                      overrides=FINETUNE_FAST, progress=False))
    assert result["status"] == "finished" and result["data"]["transitions"] == 50
    assert [p["steps"] for p in result["data"]["pieces"]] == [30, 20]
    assert (tmp_path / "ft" / "final" / "world_model" / "model.safetensors").is_file()


def test_prepare_cli_exports_minari_and_tokenizes_it(replay: Path, tmp_path: Path, capsys) -> None:
    """The README's `prepare.py export-minari`, then `tokenize` of the datasets it wrote."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare", Path(__file__).resolve().parent.parent / "data/atari/prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    prepare.main(["export-minari", "--replay", str(replay), "--out", str(tmp_path / "minari"), "--games", "Pong"])
    assert capsys.readouterr().out.split() == [str(tmp_path / "minari" / "atari" / "pong" / "jowa-v0")]
    prepare.main(["tokenize", "--replay", f"minari:{tmp_path / 'minari'}", "--tokenizer", "patch-quantizer",
                  "--out", str(tmp_path / "tokens"), "--device", "cpu"])
    assert "3 episodes, 95 transitions" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # minari never overwrites a dataset: one line, status 2
        prepare.main(["export-minari", "--replay", str(replay), "--out", str(tmp_path / "minari"), "--games", "Pong"])
    assert exit_info.value.code == 2 and "never overwritten" in capsys.readouterr().err
