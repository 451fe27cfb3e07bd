"""The new game's task-embedding rows (both tables: action and observation positions), before fine-tuning.

- `own`: keep the game's own rows (for a game never pretrained on: their random initial values, as
  the official Pong run);
- `official`: the rows the official fine-tuning borrowed (Robotank→Phoenix, YarsRevenge→ChopperCommand,
  Gravitar→TimePilot, MsPacman→Berzerk), else own. The official code *used* the other game's task id, so
  fine-tuning overwrote that game's rows; copying them into the new game's rows gives the same start and
  keeps the pretraining game intact (evaluation then needs no remapping);
- `mean`: the mean of the pretraining games' rows;
- a game name: that pretraining game's rows.
"""

from __future__ import annotations

import logging

import torch

from jowa.games import OFFICIAL_BORROWED_TASK_ROWS, check_game, task_id
from jowa.model.world_model import WorldActionModel

log = logging.getLogger(__name__)


def resolve_task_row(spec: str, game: str, pretrained_games: list[str] | None) -> str:
    """Check the spec before any work; returns "own", "mean" or the source game's name."""
    if spec == "own":
        return "own"
    if spec == "official":
        return OFFICIAL_BORROWED_TASK_ROWS.get(game, "own")
    if spec == "mean":
        if not pretrained_games:
            raise ValueError("task_row=mean needs the pretraining games; the run does not record them "
                             "(pass --pretrained-games)")
        return "mean"
    try:
        source = check_game(spec)
    except ValueError as error:
        raise ValueError(f"task_row {spec!r}: choose own, official, mean or a game name ({error})") from None
    if pretrained_games is not None and source not in pretrained_games:
        log.warning("task_row %s: %s is not among the pretraining games %s, so its rows were never trained",
                    spec, source, pretrained_games)
    return source


@torch.no_grad()
def init_task_row(model: WorldActionModel, game: str, source: str, pretrained_games: list[str] | None = None) -> None:
    """Write the rows chosen by `resolve_task_row` into `game`'s rows of both task tables."""
    if source == "own":
        return
    row = task_id(game)
    for table in model.task_emb.embedding_tables:
        if source == "mean":
            assert pretrained_games
            ids = torch.tensor([task_id(g) for g in pretrained_games], device=table.weight.device)
            table.weight[row] = table.weight[ids].mean(dim=0)
        else:
            table.weight[row] = table.weight[task_id(source)]
