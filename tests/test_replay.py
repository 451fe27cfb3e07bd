"""DQN-Replay: byte-compatible writer, reader that restores time order, joins chunks and drops fragments."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from jowa.data.npy_gz import DataFileError, NpyGzReader, crc32_append_zeros, save_npy_gz
from jowa.data.replay import EpisodeSpan, ReadStats, read_episodes, read_run, scan_run
from jowa.data.replay_layout import list_runs, list_suffixes, member_path, replay_log_dir
from jowa.data.replay_writer import ReplayWriter
from jowa.games import minimal_to_full

GAME = "Breakout"  # 4 minimal actions → full 0, 1, 3, 4


def make_episode(rng: np.random.Generator, length: int, ended: bool = True):
    frames = rng.integers(1, 256, (length, 84, 84), dtype=np.uint8)  # never all-zero: padding stays distinct
    actions = rng.integers(0, 4, length)
    rewards = rng.choice(np.array([-1.0, 0.0, 1.0], dtype=np.float32), length)
    terminals = np.zeros(length, dtype=np.uint8)
    terminals[-1] = ended
    return frames, actions, rewards, terminals


def write_run(root: Path, lengths: list[int], capacity: int, tail: int = 5, run: str = "1", seed: int = 0):
    """Episodes of the given lengths then an unfinished tail; returns {start: episode arrays}, writer."""
    rng = np.random.default_rng(seed)
    writer = ReplayWriter(replay_log_dir(root, GAME, run), capacity=capacity)
    written = {}
    for length in lengths:
        episode = make_episode(rng, length)
        writer.add_rows(*episode)
        written[writer.add_count - length] = episode
    if tail:
        writer.add_rows(*make_episode(rng, tail, ended=False))
    writer.log_final()
    return written, writer


def assert_same(episode, arrays) -> None:
    frames, actions, rewards, terminals = arrays
    full = np.asarray(minimal_to_full(GAME))
    np.testing.assert_array_equal(episode.frames, frames)
    np.testing.assert_array_equal(episode.actions, full[actions])
    np.testing.assert_array_equal(episode.rewards, rewards)
    np.testing.assert_array_equal(episode.terminals, terminals)
    assert episode.actions.dtype == np.int64 and episode.frames.dtype == np.uint8


# --- npy in gzip ---------------------------------------------------------------------------------------

def test_crc32_of_appended_zeros_matches_zlib():
    for data in (b"", b"a", os.urandom(1000)):
        for count in (0, 1, 7, 70_001):
            assert crc32_append_zeros(zlib.crc32(data), count) == zlib.crc32(data + bytes(count))


@pytest.mark.parametrize("array", [
    np.array(7), np.arange(5, dtype=np.int64), np.linspace(-1, 1, 9, dtype=np.float32),
    np.arange(3 * 84 * 84, dtype=np.uint32).astype(np.uint8).reshape(3, 84, 84),
])
def test_save_npy_gz_decompresses_to_np_save_bytes(tmp_path, array):
    save_npy_gz(tmp_path / "a.gz", array)
    reference = io.BytesIO()
    np.save(reference, array, allow_pickle=False)
    assert gzip.open(tmp_path / "a.gz").read() == reference.getvalue()
    loaded = np.load(gzip.open(tmp_path / "a.gz"), allow_pickle=False)
    assert loaded.dtype == array.dtype and loaded.shape == array.shape


def test_zero_tail_is_precompressed_and_still_exact(tmp_path):
    obs = np.zeros((4000, 84, 84), dtype=np.uint8)  # 28 MB: the tail takes the precompressed-zeros path
    obs[:10] = 200
    obs[:10, 0, 0] = np.arange(10)
    save_npy_gz(tmp_path / "o.gz", obs)
    reference = io.BytesIO()
    np.save(reference, obs, allow_pickle=False)
    assert gzip.open(tmp_path / "o.gz").read() == reference.getvalue()  # also checks the gzip CRC and size
    assert os.path.getsize(tmp_path / "o.gz") < 100_000
    with NpyGzReader(tmp_path / "o.gz") as reader:
        assert reader.shape == (4000, 84, 84)
        np.testing.assert_array_equal(reader.read_rows(12), obs[:12])


# --- writer: byte-compatible with Dopamine's logged buffer ----------------------------------------------

class DopamineLoggedBuffer:
    """A literal transcription of Dopamine's add/_add/log logic (row by row, np.save into GzipFile)."""

    def __init__(self, log_dir: Path, capacity: int):
        self.log_dir, self.capacity = log_dir, capacity
        log_dir.mkdir(parents=True)
        self.store = {"observation": np.zeros((capacity, 84, 84), np.uint8), "action": np.zeros(capacity, np.int32),
                      "reward": np.zeros(capacity, np.float32), "terminal": np.zeros(capacity, np.uint8)}
        self.add_count = np.array(0)
        self.invalid_range = np.zeros(5)
        self.log_count = 0

    def cursor(self) -> int:
        return self.add_count % self.capacity

    def _add(self, *row) -> None:
        for name, value in zip(self.store, row):
            self.store[name][self.cursor()] = value
        self.add_count += 1
        self.invalid_range = np.array([(self.cursor() - 1 + i) % self.capacity for i in range(5)])

    def add(self, observation, action, reward, terminal) -> None:
        if self.add_count == 0 or self.store["terminal"][self.cursor() - 1] == 1:
            for _ in range(3):
                self._add(np.zeros((84, 84), np.uint8), 0, 0.0, 0)
        self._add(observation, action, reward, terminal)
        if self.add_count % self.capacity == self.capacity - 1:
            self.log()

    def log(self) -> None:
        items = {f"$store$_{k}": v for k, v in self.store.items()}
        items.update(add_count=self.add_count, invalid_range=self.invalid_range)
        for name, value in items.items():
            with open(self.log_dir / f"{name}_ckpt.{self.log_count}.gz", "wb") as f:
                with gzip.GzipFile(fileobj=f, mode="wb") as out:
                    np.save(out, value, allow_pickle=False)
        self.log_count += 1

    def log_final(self) -> None:
        add_count = self.add_count
        self.add_count = np.array(self.cursor())
        self.log()
        self.add_count = add_count


def test_writer_files_decompress_to_dopamines_bytes(tmp_path):
    rng = np.random.default_rng(1)
    ours = ReplayWriter(tmp_path / "ours", capacity=20)
    theirs = DopamineLoggedBuffer(tmp_path / "theirs", capacity=20)
    # Lengths chosen so that one log point falls inside padding rows (adds 58..60 are the padding of
    # the 5th episode and add_count 59 ≡ C-1): both must skip that log.
    for length in (6, 9, 1, 29, 3, 17):
        episode = make_episode(rng, length)
        ours.add_rows(*episode)
        for row in zip(*episode):
            theirs.add(*row)
    tail = make_episode(rng, 4, ended=False)
    ours.add_rows(*tail)
    for row in zip(*tail):
        theirs.add(*row)
    ours.log_final()
    theirs.log_final()
    names = sorted(os.listdir(tmp_path / "theirs"))
    assert sorted(os.listdir(tmp_path / "ours")) == names
    assert len(names) == 6 * 4  # logs at add_count 19, 39, 79 (59 skipped) and the final one
    for name in names:
        assert gzip.open(tmp_path / "ours" / name).read() == gzip.open(tmp_path / "theirs" / name).read(), name


# --- reader ---------------------------------------------------------------------------------------------

def test_reader_returns_exactly_the_written_episodes(tmp_path):
    # C = 50: chunk 0 (rows 0..48), rotated chunks 1 and 2 ([49, 0..48]), a final partial chunk. The
    # 46-step episode's terminal is add 49 → the last row of chunk 0 (terminal at a chunk edge); the
    # 120-step episode spans three chunks.
    written, writer = write_run(tmp_path, [46, 47, 120, 10], capacity=50)
    assert writer.logged_suffixes == [0, 1, 2, 3, 4]
    assert sorted(list_suffixes(replay_log_dir(tmp_path, GAME, "1"))) == [0, 1, 2, 3, 4]
    stats = ReadStats()
    episodes = list(read_run(tmp_path, GAME, 1, stats=stats, block_rows=7))
    assert sorted(e.start for e in episodes) == sorted(written) == [3, 52, 102, 225]
    for episode in episodes:
        assert_same(episode, written[episode.start])
        assert episode.game == GAME and episode.run == "1"
    assert stats.episodes == 4 and stats.transitions == 46 + 47 + 120 + 10
    assert (stats.fragments, stats.fragment_rows) == (1, 3 + 5)  # the unfinished tail (with its padding)


def test_chunk_order_rows_in_files_are_rotated(tmp_path):
    written, _ = write_run(tmp_path, [46, 47, 120, 10], capacity=50)
    log_dir = replay_log_dir(tmp_path, GAME, "1")
    obs1 = np.load(gzip.open(member_path(log_dir, "observation", 1)))
    add_count = int(np.load(gzip.open(member_path(log_dir, "add_count", 1))))
    assert add_count == 99
    # Chunk 1 holds global rows 49..98; its oldest (49, the 1st padding row of episode 2) is file row 49.
    episode2 = written[52][0]
    assert not obs1[49].any() and not obs1[0].any() and not obs1[1].any()
    np.testing.assert_array_equal(obs1[2:2 + 47], episode2)


def test_leading_fragment_is_dropped_when_reading_from_a_later_chunk(tmp_path):
    written, _ = write_run(tmp_path, [46, 47, 120, 10], capacity=50)
    stats = ReadStats()
    episodes = list(read_run(tmp_path, GAME, 1, suffixes=[1, 2, 3, 4], stats=stats))
    # Chunk 1 starts exactly at episode 2's padding, but a reader that did not see chunk 0 cannot know
    # that: its first rows count as a fragment. Episodes 3 and 4 are whole.
    assert sorted(e.start for e in episodes) == [102, 225]
    assert stats.fragments == 2
    episodes = list(read_run(tmp_path, GAME, 1, suffixes=[0, 2, 3, 4]))  # gap: chunk 1 missing
    assert sorted(e.start for e in episodes) == [3, 225]


def test_skipped_log_breaks_the_join(tmp_path):
    # Episode 2's padding covers add_count 49 ≡ C-1, so Dopamine skips that log: chunk 0 is logged at
    # add_count 99 and holds rows 49..98 only; rows 0..48 are lost. add_count tells the reader so.
    written, writer = write_run(tmp_path, [43, 60, 10], capacity=50, tail=0)
    assert writer.logged_suffixes == [0, 1]
    log_dir = replay_log_dir(tmp_path, GAME, "1")
    assert int(np.load(gzip.open(member_path(log_dir, "add_count", 0)))) == 99  # first log happened late
    episodes = list(read_run(tmp_path, GAME, 1))
    # Chunk 0 starts mid-way through episode 2: a fragment. Episode 3 (rows 109..121) is whole.
    assert sorted(e.start for e in episodes) == [112]
    assert_same(episodes[0], written[112])


def test_final_chunk_after_a_skipped_log_keeps_every_episode_whole(tmp_path):
    # C = 50: logged at add_count 49; the log point 99 falls inside episode 3's padding (adds 96..98) and is
    # skipped; log_final then runs at add 144 (cursor 44), 95 rows after the last log. The final chunk holds
    # the last 50 rows (94..143): the tail of episode 2 (a fragment), episodes 3 and 4 whole. Counting
    # only cursor − last cursor would read 45 rows and splice episodes; the rows [44, 48] that a short final
    # chunk leaves stale differ from the previous chunk's, which tells the reader.
    written, writer = write_run(tmp_path, [46, 44, 30, 12], capacity=50, tail=0)
    assert writer.logged_suffixes == [0, 1] and writer.add_count == 144
    log_dir = replay_log_dir(tmp_path, GAME, "1")
    assert int(np.load(gzip.open(member_path(log_dir, "add_count", 1)))) == 44
    stats = ReadStats()
    episodes = list(read_run(tmp_path, GAME, 1, stats=stats, block_rows=7))
    assert sorted(e.start for e in episodes) == [3, 99, 132]
    for episode in episodes:
        assert_same(episode, written[episode.start])
    assert (stats.fragments, stats.fragment_rows) == (1, 2)  # rows 94, 95: the end of episode 2
    assert [s.start for s in scan_run(tmp_path, GAME, 1)] == [3, 99, 132]


def test_scan_and_want_select_without_frames(tmp_path):
    written, _ = write_run(tmp_path, [46, 47, 120, 10], capacity=50)
    spans = list(scan_run(tmp_path, GAME, 1))
    assert spans == [EpisodeSpan(GAME, "1", 3, 46), EpisodeSpan(GAME, "1", 52, 47),
                     EpisodeSpan(GAME, "1", 102, 120), EpisodeSpan(GAME, "1", 225, 10)]
    stats = ReadStats()
    picked = list(read_run(tmp_path, GAME, 1, want=lambda run, start: start in (52, 225), stats=stats))
    assert sorted(e.start for e in picked) == [52, 225] and stats.not_wanted == 2
    for episode in picked:
        assert_same(episode, written[episode.start])


def test_read_episodes_walks_games_and_runs(tmp_path):
    write_run(tmp_path, [10, 11], capacity=40, run="1")
    write_run(tmp_path, [12], capacity=40, run="2", seed=5)
    assert list_runs(tmp_path, GAME) == ["1", "2"]
    lengths = [(e.run, len(e)) for e in read_episodes(tmp_path)]
    assert lengths == [("1", 10), ("1", 11), ("2", 12)]


def test_missing_add_count_needs_assume_full(tmp_path):
    written, _ = write_run(tmp_path, [46, 47, 120], capacity=50, tail=60)  # 4 regular chunks, no final
    log_dir = replay_log_dir(tmp_path, GAME, "1")
    for suffix in list_suffixes(log_dir):
        member_path(log_dir, "add_count", suffix).unlink()
        member_path(log_dir, "invalid_range", suffix).unlink()
    with pytest.raises(DataFileError, match=r"add_count_ckpt\.0\.gz: missing member of suffix 0"):
        list(read_run(tmp_path, GAME, 1))
    episodes = list(read_run(tmp_path, GAME, 1, assume_full_chunks=True))
    assert sorted(e.start for e in episodes) == sorted(written)


# --- corrupt input ----------------------------------------------------------------------------------------

def corrupt(tmp_path: Path, member: str, how: str) -> Path:
    write_run(tmp_path, [46, 47, 120, 10], capacity=50)
    path = member_path(replay_log_dir(tmp_path, GAME, "1"), member, 1)
    if how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "float64":
        save_npy_gz(path, np.zeros(50, dtype=np.float64))
    elif how == "short":
        save_npy_gz(path, np.zeros(49, dtype=np.uint8))
    elif how == "delete":
        path.unlink()
    return path


@pytest.mark.parametrize("member, how, problem", [
    ("observation", "truncate", "corrupt or truncated gzip stream"),
    ("action", "truncate", "corrupt or truncated gzip stream"),
    ("reward", "float64", r"expected float32\(50\), found float64\(50,\)"),
    ("terminal", "short", r"expected uint8\(50\), found uint8\(49,\)"),
    ("reward", "delete", "missing member of suffix 1"),
])
def test_corrupt_file_raises_naming_file_and_problem(tmp_path, member, how, problem):
    path = corrupt(tmp_path, member, how)
    with pytest.raises(DataFileError, match=problem) as info:
        list(read_run(tmp_path, GAME, 1))
    assert info.value.path == str(path)


def test_skip_bad_logs_counts_and_goes_on(tmp_path):
    path = corrupt(tmp_path, "observation", "truncate")
    stats = ReadStats()
    episodes = list(read_run(tmp_path, GAME, 1, skip_bad=True, stats=stats))
    assert [p for p, _ in stats.skipped] == [str(path)]
    # Episode 2 (ends in chunk 1) and episode 3 (spans chunks 1-3) need the bad chunk; 1 and 4 do not.
    assert sorted(e.start for e in episodes) == [3, 225]


# --- JOWA subsampling -------------------------------------------------------------------------------------

def test_choose_runs_reproduces_the_official_choice():
    from jowa.data.subsample import choose_runs
    from jowa.games import PRETRAIN_GAMES

    runs = choose_runs({g: ["1", "2", "3", "4", "5"] for g in PRETRAIN_GAMES}, 2, seed=0)
    assert runs == {  # docs/official_jowa.md §1.3, step 2
        "Assault": ["1", "3"], "Atlantis": ["1", "3"], "BeamRider": ["2", "4"], "Berzerk": ["2", "4"],
        "Carnival": ["3", "5"], "Centipede": ["3", "4"], "ChopperCommand": ["3", "5"], "DemonAttack": ["2", "4"],
        "NameThisGame": ["1", "5"], "Phoenix": ["3", "5"], "Seaquest": ["2", "5"], "SpaceInvaders": ["1", "2"],
        "StarGunner": ["2", "4"], "TimePilot": ["1", "3"], "Zaxxon": ["3", "4"],
    }


def test_subsample_draws_whole_episodes_only(tmp_path):
    from jowa.data.subsample import read_selection, select_episodes

    written1, _ = write_run(tmp_path, [46, 47, 120, 10], capacity=50, run="1")
    written2, _ = write_run(tmp_path, [30, 20, 40], capacity=50, run="2", seed=9)
    log_dir = replay_log_dir(tmp_path, GAME, "1")
    for member in ("observation", "action", "reward", "terminal", "add_count", "invalid_range"):
        member_path(log_dir, member, 0).unlink()  # run 1 now starts mid-episode: a fragment, not an episode
    selection = select_episodes(tmp_path, GAME, ["1", "2"], transitions=200, seed=0)
    assert selection.available_episodes == 2 + 3  # run 1: episodes 3 and 4 only
    assert selection.available_transitions == 120 + 10 + 30 + 20 + 40
    assert selection.episodes == 5  # ceil(200 / (220 / 5))
    got = list(read_selection(tmp_path, selection))
    assert sum(copies for _, copies in got) == 5
    for episode, copies in got:
        assert copies == selection.copies[episode.run][episode.start] >= 1
        assert_same(episode, (written1 if episode.run == "1" else written2)[episode.start])
    distinct = select_episodes(tmp_path, GAME, ["1", "2"], transitions=10_000, seed=0, replace=False)
    assert distinct.episodes == 5 and all(max(c.values(), default=1) == 1 for c in distinct.copies.values())
