"""Token shards: webdataset `.tar` files of tokenized episodes, their commit records and the index JSON.

One tar member per episode, `{key}.jtk`, whose bytes are
    b"JTK1" | u32 LE header length | header JSON (utf-8) | zlib( tokens | actions | rewards | terminals )
with the header {"id", "game", "task", "steps", "tokens_per_frame"} and the zlib payload holding, for n
steps, tokens as u16 LE in position-major order ([36, n], so each patch's token sequence is contiguous
and compresses well), actions u8[n] (full-set index), rewards f32 LE[n] (as stored), terminals u8[n].
One member per episode keeps tar overhead (512-byte headers, padding) to ~1 KB per episode.

A shard is written under a temporary name and renamed; then its commit record `{shard}.json` (episode
ids, lengths, per-game counts, tokenizer identity, size and sha256) is written the same way. A shard without
a commit record is unfinished. `write_index` gathers the commit records into `index.json`; `verify_shards`
checks the files against it (sizes always, checksums when asked) before any work.
Shards are read with webdataset's `gopen`, so a URL may be a local path or `pipe:cmd` (object storage).
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jowa.atomic import write_bytes
from jowa.games import check_game, task_id
from jowa.model_files import file_sha256

FORMAT = "jowa-token-shards/1"
MAGIC = b"JTK1"
EXT = "jtk"
INDEX_NAME = "index.json"
TOKENS_PER_FRAME = 36


class ShardError(ValueError):
    """A token shard is missing, truncated, altered or unreadable; the message names it in one line.

    Raised inside a DataLoader worker, it comes back to the main process with the worker's traceback in its
    message; the constructor keeps only the original one-line message.
    """

    def __init__(self, message: str) -> None:
        marker = f"{type(self).__name__}: "
        if "Original Traceback" in message and marker in message:
            message = message.rsplit(marker, 1)[1].strip().splitlines()[0]
        super().__init__(message)


def encode_episode(
    episode_id: str, game: str, tokens: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminals: np.ndarray,
    level: int = 6,
) -> bytes:
    """tokens [n, 36] (< 65536), actions [n] full-set, rewards [n], terminals [n] → one member's bytes."""
    n = len(tokens)
    if tokens.shape != (n, TOKENS_PER_FRAME) or not (len(actions) == len(rewards) == len(terminals) == n):
        raise ValueError(f"{episode_id}: tokens {tokens.shape}, actions {len(actions)}, rewards {len(rewards)}, "
                         f"terminals {len(terminals)} do not describe the same {n} steps of {TOKENS_PER_FRAME} tokens")
    header = json.dumps({"id": episode_id, "game": check_game(game), "task": task_id(game), "steps": n,
                         "tokens_per_frame": TOKENS_PER_FRAME}, separators=(",", ":")).encode()
    payload = b"".join((
        np.ascontiguousarray(tokens.T, dtype="<u2").tobytes(),
        np.asarray(actions, dtype=np.uint8).tobytes(),
        np.asarray(rewards, dtype="<f4").tobytes(),
        np.asarray(terminals, dtype=np.uint8).tobytes(),
    ))
    return MAGIC + struct.pack("<I", len(header)) + header + zlib.compress(payload, level)


class TokenEpisode:
    """One episode from a shard; the header is parsed at once, the arrays on first access."""

    __slots__ = ("id", "game", "task", "steps", "_blob", "_offset", "_arrays", "source")

    def __init__(self, blob: bytes, source: str = ""):
        if blob[:4] != MAGIC:
            raise ShardError(f"{source}: not a {FORMAT} episode (magic {blob[:4]!r})")
        (size,) = struct.unpack_from("<I", blob, 4)
        header = json.loads(blob[8:8 + size])
        self.id: str = header["id"]
        self.game: str = header["game"]
        self.task: int = header["task"]
        self.steps: int = header["steps"]
        self._blob, self._offset, self._arrays, self.source = blob, 8 + size, None, source

    def _decode(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._arrays is None:
            n = self.steps
            try:
                raw = zlib.decompress(self._blob[self._offset:])
            except zlib.error as exc:
                raise ShardError(f"{self.source}: episode {self.id}: corrupt payload ({exc})") from exc
            if len(raw) != n * (2 * TOKENS_PER_FRAME + 6):
                raise ShardError(f"{self.source}: episode {self.id}: payload of {len(raw)} bytes for {n} steps")
            t = n * 2 * TOKENS_PER_FRAME
            tokens = np.frombuffer(raw, "<u2", n * TOKENS_PER_FRAME).reshape(TOKENS_PER_FRAME, n).T  # [n, 36] view
            self._arrays = (tokens, np.frombuffer(raw, np.uint8, n, t), np.frombuffer(raw, "<f4", n, t + n),
                            np.frombuffer(raw, np.uint8, n, t + 5 * n))
            self._blob = b""
        return self._arrays

    @property
    def tokens(self) -> np.ndarray:  # [n, 36] uint16 (read-only view)
        return self._decode()[0]

    @property
    def actions(self) -> np.ndarray:  # [n] uint8 full-set index
        return self._decode()[1]

    @property
    def rewards(self) -> np.ndarray:  # [n] float32
        return self._decode()[2]

    @property
    def terminals(self) -> np.ndarray:  # [n] uint8
        return self._decode()[3]

    def __len__(self) -> int:
        return self.steps


def iter_shard(url: str) -> Iterator[TokenEpisode]:
    """Episodes of one shard in file order; `url` is a path, file:, pipe:, http(s): …(webdataset gopen)."""
    from webdataset.gopen import gopen

    stream = gopen(url, "rb")
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith("." + EXT):
                    yield TokenEpisode(tar.extractfile(member).read(), source=f"{url}:{member.name}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ShardError(f"{url}: unreadable tar shard ({exc})") from exc
    finally:
        stream.close()


# --- writing ---------------------------------------------------------------------------------------------

@dataclass
class _Open:
    name: str
    tar: tarfile.TarFile
    file: Any
    episodes: list[dict]
    steps: int


class ShardWriter:
    """Writes episodes into `{prefix}-{index:05d}.tar`, rolling to a new shard past `max_steps` steps."""

    def __init__(self, out_dir: str | os.PathLike, prefix: str, tokenizer: str, *, max_steps: int = 100_000,
                 first_index: int = 0, level: int = 6):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix, self.tokenizer, self.max_steps, self.level = prefix, tokenizer, max_steps, level
        self.index = first_index
        self.finished: list[str] = []
        self._open: _Open | None = None

    def write(self, episode_id: str, game: str, tokens: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
              terminals: np.ndarray) -> None:
        if self._open is None:
            name = f"{self.prefix}-{self.index:05d}.tar"
            file = open(self.out_dir / (name + ".tmp"), "wb")
            self._open = _Open(name, tarfile.open(fileobj=file, mode="w", format=tarfile.USTAR_FORMAT), file, [], 0)
        blob = encode_episode(episode_id, game, tokens, actions, rewards, terminals, self.level)
        info = tarfile.TarInfo(f"{episode_id.replace('/', '_')}.{EXT}")
        info.size, info.mode, info.mtime = len(blob), 0o444, 0  # fixed metadata: shards are reproducible
        self._open.tar.addfile(info, io.BytesIO(blob))
        self._open.episodes.append({"id": episode_id, "game": game, "steps": len(tokens)})
        self._open.steps += len(tokens)

    def roll_if_full(self) -> None:
        """Finish the current shard if it reached max_steps (call between episode groups)."""
        if self._open is not None and self._open.steps >= self.max_steps:
            self._finish()

    def close(self) -> None:
        if self._open is not None:
            self._finish()

    def _finish(self) -> None:
        shard, self._open = self._open, None
        shard.tar.close()
        shard.file.close()
        os.replace(self.out_dir / (shard.name + ".tmp"), self.out_dir / shard.name)
        games: dict[str, dict[str, int]] = {}
        for e in shard.episodes:
            g = games.setdefault(e["game"], {"episodes": 0, "transitions": 0})
            g["episodes"] += 1
            g["transitions"] += e["steps"]
        path = self.out_dir / shard.name
        record = {"format": FORMAT, "shard": shard.name, "tokenizer": self.tokenizer,
                  "bytes": path.stat().st_size, "sha256": file_sha256(path), "transitions": shard.steps,
                  "games": games, "episodes": shard.episodes}
        write_bytes(self.out_dir / (shard.name + ".json"), json.dumps(record).encode())
        self.finished.append(shard.name)
        self.index += 1


def finished_records(out_dir: str | os.PathLike, clean: bool = False) -> list[dict]:
    """Commit records of the finished shards in `out_dir`; with clean, delete unfinished leftovers."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    records = []
    for path in sorted(out_dir.glob("*.tar.json")):
        record = json.loads(path.read_text())
        if record.get("format") != FORMAT or not (out_dir / record["shard"]).is_file():
            raise ValueError(f"{path}: not a {FORMAT} commit record, or its shard is missing")
        records.append(record)
    if clean:
        done = {r["shard"] for r in records}
        for path in list(out_dir.glob("*.tmp")) + [p for p in out_dir.glob("*.tar") if p.name not in done]:
            path.unlink()
    return records


def write_index(out_dir: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Gather the commit records into `index.json`: counts per game, shards with episode lengths."""
    out_dir = Path(out_dir)
    records = finished_records(out_dir)
    if not records:
        raise ValueError(f"{out_dir}: no finished token shards")
    tokenizers = sorted({r["tokenizer"] for r in records})
    if len(tokenizers) != 1:
        raise ValueError(f"{out_dir}: shards from different tokenizers {tokenizers}")
    games: dict[str, dict[str, int]] = {}
    for r in records:
        for game, counts in r["games"].items():
            g = games.setdefault(game, {"task": task_id(game), "episodes": 0, "transitions": 0})
            g["episodes"] += counts["episodes"]
            g["transitions"] += counts["transitions"]
    index = {
        "format": FORMAT, "tokenizer": tokenizers[0], "tokens_per_frame": TOKENS_PER_FRAME,
        "episodes": sum(g["episodes"] for g in games.values()),
        "transitions": sum(g["transitions"] for g in games.values()),
        "bytes": sum(r["bytes"] for r in records),
        "games": dict(sorted(games.items(), key=lambda kv: kv[1]["task"])),
        "shards": [{"name": r["shard"], "games": sorted(r["games"]), "transitions": r["transitions"],
                    "bytes": r["bytes"], "sha256": r.get("sha256"), "lengths": [e["steps"] for e in r["episodes"]]}
                   for r in records],
        **(extra or {}),
    }
    path = out_dir / INDEX_NAME
    write_bytes(path, json.dumps(index, indent=1).encode())
    return path


# --- locating shards -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShardInfo:
    url: str
    games: tuple[str, ...] = ()  # empty when unknown (no index)
    lengths: tuple[int, ...] = ()  # episode lengths in file order, when known
    bytes: int | None = None  # file size recorded in the index, when known
    sha256: str | None = None  # checksum recorded in the index (indexes before checksums have none)


def resolve_shards(source: str | os.PathLike | Sequence[str]) -> list[ShardInfo]:
    """Shards from an index.json, a directory holding one, a brace pattern/URL, or a list of URLs."""
    if not isinstance(source, (str, os.PathLike)):
        return [ShardInfo(str(u)) for u in source]
    text = str(source)
    path = Path(text)
    if path.is_dir():
        path = path / INDEX_NAME
    if path.suffix == ".json" and path.is_file():
        index = json.loads(path.read_text())
        if index.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} index")
        return [ShardInfo(str(path.parent / s["name"]), tuple(s["games"]), tuple(s["lengths"]), s.get("bytes"),
                          s.get("sha256")) for s in index["shards"]]
    from braceexpand import braceexpand

    urls = list(braceexpand(text))
    missing = [u for u in urls if "://" not in u and not u.startswith("pipe:") and not Path(u).is_file()]
    if missing:
        raise FileNotFoundError(f"Token shards not found: {missing[:3]}{' …' if len(missing) > 3 else ''}")
    return [ShardInfo(u) for u in urls]


def verify_shards(shards: Sequence[ShardInfo], checksums: bool = False) -> int:
    """Check every local shard against its index entry: present, of the recorded size, and with `checksums`
    of the recorded sha256. Raises ShardError naming the first bad shard; returns the number checksummed."""
    verified = 0
    for shard in shards:
        if "://" in shard.url or shard.url.startswith("pipe:") or shard.bytes is None:
            continue  # remote, or no index entry: nothing recorded to check against
        path = Path(shard.url)
        if not path.is_file():
            raise ShardError(f"{path}: token shard listed in {INDEX_NAME} is missing")
        size = path.stat().st_size
        if size != shard.bytes:
            raise ShardError(f"{path}: {size:,} bytes on disk, {INDEX_NAME} records {shard.bytes:,} (truncated or "
                             f"replaced); re-tokenize it with data/atari/prepare.py tokenize")
        if checksums and shard.sha256 is not None:
            if file_sha256(path) != shard.sha256:
                raise ShardError(f"{path}: sha256 differs from the one {INDEX_NAME} records (the file was altered); "
                                 f"re-tokenize it with data/atari/prepare.py tokenize")
            verified += 1
    return verified


def iter_episodes(shards: Iterable[str | ShardInfo]) -> Iterator[TokenEpisode]:
    for shard in shards:
        yield from iter_shard(shard.url if isinstance(shard, ShardInfo) else shard)
