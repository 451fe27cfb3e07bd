"""Recompute the official fixtures with our implementation and report the error of every quantity.

    python -m jowa.compat.parity                       # the fixtures shipped in tests/fixtures/jowa
    python -m jowa.compat.parity --device cuda         # the same check on a GPU (TF32 off)

loads the official-format checkpoints through the import path, recomputes tokenizer, forward
(full window, prefix, KV-cached), losses with every intermediate and the C51 projections, prints one
row per quantity with its max absolute and relative error, and exits 1 if a float is outside
|got − ref| ≤ 1e-5 + 1.3e-6·|ref| anywhere or an integer differs at all (jowa/compat/comparison.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file

from jowa.compat.import_official import import_tokenizer, import_world_model
from jowa.compat.tokenizer_parity import reference_numerics, small_tokenizer_config, tokenizer_parity
from jowa.config import CriticLossConfig, WorldModelConfig
from jowa.data.batch import Batch
from jowa.games import action_masks
from jowa.losses import (
    c51_project, cql_alpha, cql_penalty, td_prediction, td_rows, td_target, world_model_labels,
)
from jowa.model.distributional import expected_q, mask_invalid, q_values, weighted_distribution
from jowa.model.layout import ACTION_HEAD, OBS_HEAD, Q_HEAD, full_window_positions
from jowa.model.world_model import WorldActionModel
from jowa.objective import compute_losses, interleave
from jowa.compat.comparison import ATOL, RTOL, ParityRow, compare

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "jowa"

def small_world_model_config(reference: Path) -> WorldModelConfig:
    """The small JOWA the fixtures were generated with (description.json → configs)."""
    configs = json.loads((reference / "description.json").read_text())["configs"]
    tr, critic = configs["jowa_small_transformer"], configs["jowa_small_critic_arch"]
    return WorldModelConfig(
        obs_vocab_size=configs["jowa_small_obs_vocab"], act_vocab_size=configs["act_vocab"],
        tokens_per_block=tr["tokens_per_block"], max_blocks=tr["max_blocks"], max_tasks=tr["max_tasks"],
        num_layers=tr["num_layers"], num_heads=tr["num_heads"], embed_dim=tr["embed_dim"],
        embed_pdrop=tr["embed_pdrop"], resid_pdrop=tr["resid_pdrop"], attn_pdrop=tr["attn_pdrop"],
        q_mlp_dim=critic["mlp_dim"], num_q=critic["num_q"], q_dropout=critic["dropout"],
    )


def load_small_model(reference: Path) -> WorldActionModel:
    """The small official model, loaded from its official-format `.pt` through the import path."""
    config = small_world_model_config(reference)
    return import_world_model(reference / "jowa_small_official_format.pt", config=config).train()


def load_small_tokenizer_via_import(reference: Path):
    return import_tokenizer(reference / "tokenizer_small_official_format.pt", config=small_tokenizer_config(reference)).eval()


def _activations(model: WorldActionModel, tokens: torch.Tensor, tasks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Forward outputs plus the residual stream after each block."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [block.register_forward_hook(lambda _m, _i, out, i=i: captured.__setitem__(f"block{i}_out", out))
             for i, block in enumerate(model.transformer.blocks)]
    try:
        out = model(tokens, tasks)
    finally:
        for hook in hooks:
            hook.remove()
    captured["embeddings"] = model.embed(tokens, tasks, 0)
    return {**captured, **{k: v for k, v in vars(out).items()}}


def _fixture(reference: Path, name: str, device: torch.device) -> dict[str, torch.Tensor]:
    return load_file(str(reference / name), device=str(device))


def forward_parity(model: WorldActionModel, reference: Path) -> list[ParityRow]:
    f = _fixture(reference, "jowa_small_forward.safetensors", model.atoms.device)
    rows = []
    with torch.no_grad():
        full = _activations(model, f["tokens"], f["tasks"])
        for name in ("embeddings", "block0_out", "block1_out", "output_sequence", "logits_observations",
                     "logits_rewards", "logits_ends", "logits_q", "logits_q_target"):
            rows.append(compare(f"forward/{name}", full[name], f[name]))
        rows.append(compare("forward/q_values", q_values(full["logits_q"], model.atoms), f["q_values"]))
        rows.append(compare("forward/q_values_target", q_values(full["logits_q_target"], model.atoms), f["q_values_target"]))
        rows.append(compare("forward/atoms_support", model.atoms, f["atoms_support"]))
        c = model.config
        for kind, key in ((OBS_HEAD, "head_observations_indices"), (ACTION_HEAD, "head_rewards_indices"), (Q_HEAD, "head_q_indices")):
            rows.append(compare(f"forward/{key}", full_window_positions(kind, c.tokens_per_block, c.max_blocks).cpu(), f[key]))
        rows += _prefix_parity(model, f)
    return rows


_HEAD_FIELDS = {"output_sequence": 1, "logits_observations": 1, "logits_rewards": 1, "logits_ends": 1,
                "logits_q": 2, "logits_q_target": 2}  # the position axis of each output


def _prefix_parity(model: WorldActionModel, f: dict[str, torch.Tensor]) -> list[ParityRow]:
    tokens, tasks = f["prefix_tokens"], f["tasks"]
    plain = vars(model(tokens, tasks))
    chunkings = {"tokenwise": [1] * tokens.shape[1], "chunks": f["prefix_cached_chunk_sizes"].tolist()}
    rows = [compare(f"prefix/plain/{k}", plain[k], f[f"prefix_{k}"]) for k in _HEAD_FIELDS]
    for label, sizes in chunkings.items():
        cache, start, outs = model.empty_cache(tokens.shape[0]), 0, []
        for size in sizes:
            outs.append(vars(model(tokens[:, start:start + size], tasks, cache=cache)))
            start += size
        for key, axis in _HEAD_FIELDS.items():
            joined = torch.cat([o[key] for o in outs], dim=axis)
            rows.append(compare(f"prefix/cached_{label}/{key}", joined, f[f"prefix_cached_{label}_{key}"]))
    return rows


def loss_parity(model: WorldActionModel, tokenize: Callable[[torch.Tensor], torch.Tensor], reference: Path) -> list[ParityRow]:
    f = _fixture(reference, "jowa_small_loss.safetensors", model.atoms.device)
    obs_tokens = tokenize(f["batch_observations"])
    batch = Batch(obs_tokens, f["batch_actions"], f["batch_rewards"], f["batch_ends"], f["batch_mask_padding"], f["batch_envs"])
    rows = [compare("loss/obs_tokens", obs_tokens, f["obs_tokens"]),
            compare("loss/tokens", interleave(obs_tokens, batch.actions), f["tokens"])]
    config = CriticLossConfig()  # the fixture's critic config: γ 0.99, CQL 0.1, supervised weight 0.1
    with torch.no_grad():
        stage2, out = compute_losses(model, batch, critic=True, config=config)
        stage1, _ = compute_losses(model, batch, critic=False, config=config)
    for name in ("logits_observations", "logits_rewards", "logits_ends", "logits_q", "logits_q_target"):
        rows.append(compare(f"loss/out_{name}", getattr(out, name), f[f"out_{name}"]))
    rows += _stage2_intermediates(model, batch, out, f)
    for stage, terms in (("stage2", stage2), ("stage1", stage1)):
        for name, value in terms.scalars().items():
            key = f"{stage}_{'loss_total' if name == 'total' else name}"
            if key in f:
                rows.append(compare(f"loss/{key}", torch.tensor(value), f[key]))
    return rows


def _stage2_intermediates(model: WorldActionModel, batch: Batch, out, f: dict[str, torch.Tensor]) -> list[ParityRow]:
    support, num_atoms = model.atoms, model.atoms.numel()
    td = td_rows(batch.mask_padding, batch.ends)
    valid = model.valid_actions(batch.tasks)
    target = td_target(out.logits_q_target, batch.rewards, td, valid, support, CriticLossConfig().gamma)
    online = weighted_distribution(out.logits_q, num_atoms)
    chosen = online.gather(2, batch.actions[..., None, None].expand(-1, -1, 1, num_atoms)).squeeze(2)
    next_dist = weighted_distribution(out.logits_q_target, num_atoms)
    q = expected_q(online, support)
    labels = world_model_labels(batch.observations, batch.rewards, batch.ends, batch.mask_padding)
    penalty, negative, positive = cql_penalty(out.logits_q, batch.actions, batch.mask_padding, support, cql_alpha(0.1))
    pairs = {
        "q_s_chosen_a_dist": chosen,
        "compute_q_mask": td.current,
        "compute_q_target_mask": td.following,
        "ends": td.terminal,
        "mask": valid,
        "q_next_s_dist": next_dist,
        "masked_q_next_s": mask_invalid(expected_q(next_dist, support), valid[:, None, :]),
        "a_star": target.best_actions.unsqueeze(-1),
        "mixed_q_s_chosen_a_dist": td_prediction(out.logits_q, batch.actions, td),
        "mixed_q_next_s_argmax_a_dist": target.weights,
        "mixed_target_support": target.atoms,
        "clipped_support": target.atoms.clamp(float(support[0]), float(support[-1])),
        "mixed_bellman_target": target.projected,
        "negative_sampling": torch.logsumexp(q[batch.mask_padding], dim=-1),
        "dataset_expec": q.gather(2, batch.actions.unsqueeze(-1)).squeeze(-1)[batch.mask_padding],
        "labels_obses": labels[0], "labels_rewards": labels[1], "labels_ends": labels[2],
    }
    steps = torch.arange(batch.num_steps, device=batch.mask_padding.device)
    first = torch.where(batch.mask_padding, steps, batch.num_steps).amin(1)
    last = torch.where(batch.mask_padding, steps, -1).amax(1)
    rows = [compare("loss/stage2_first_ones", first, f["stage2_first_ones"]),
            compare("loss/stage2_last_ones", last, f["stage2_last_ones"])]
    rows += [compare(f"loss/stage2_{k}", v, f[f"stage2_{k}"]) for k, v in pairs.items()]
    return rows


def c51_parity(reference: Path, device: str | torch.device = "cpu") -> list[ParityRow]:
    f = _fixture(reference, "c51_projection.safetensors", torch.device(device))
    support = f["support"]
    logits = f["member_next_probs"].log().flatten(-2)  # [M, 18·51]: softmax of log p gives p back
    avg = weighted_distribution(logits, support.numel())  # [18, 51]
    valid = action_masks().to(support.device).index_select(0, f["envs"])  # [4, 18]
    target_q = mask_invalid(expected_q(avg, support).expand(len(f["envs"]), -1), valid)
    rows = [compare("c51/avg_next_probs", avg, f["avg_next_probs"]),
            compare("c51/target_q_values_per_env", target_q, f["target_q_values_per_env"]),
            compare("c51/a_star_per_env", target_q.argmax(-1), f["a_star_per_env"]),
            compare("c51/row_projected_target", c51_project(f["row_target_support"], f["row_next_dist"], support),
                    f["row_projected_target"])]
    for i in range(f["row_projected_target"].shape[0]):
        projected = c51_project(f["row_target_support"][i:i + 1], f["row_next_dist"][i:i + 1], support)
        rows.append(compare(f"c51/row_{i:02d}", projected[0], f["row_projected_target"][i]))
    return rows


def run_parity(reference: Path, device: str | torch.device = "cpu") -> list[ParityRow]:
    """Every fixture quantity recomputed on `device`, under the fixtures' numerics (no TF32)."""
    with reference_numerics():
        tokenizer = load_small_tokenizer_via_import(reference).to(device)
        model = load_small_model(reference).to(device)
        rows = tokenizer_parity(reference, device)
        rows += forward_parity(model, reference)
        rows += loss_parity(model, lambda frames: tokenizer.encode(frames).tokens, reference)
        rows += c51_parity(reference, device)
    return rows


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path, nargs="?", default=FIXTURES,
                        help="fixture directory (default: the repository's tests/fixtures/jowa)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (TF32 is turned off)")
    args = parser.parse_args(argv)
    if not (args.reference / "description.json").is_file():
        parser.error(f"{args.reference} is not the fixture directory (no description.json)")
    try:
        args.device = torch.device(args.device)
    except RuntimeError as error:
        parser.error(f"--device {args.device}: {error}")
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rows = run_parity(args.reference, args.device)
    width = max(len(r.name) for r in rows)
    print(f"{'quantity':<{width}}  {'max error (abs, rel) / mismatches':>34}  ok")
    for r in rows:
        print(f"{r.name:<{width}}  {r.describe():>34}  {'ok' if r.ok else 'FAIL'}")
    failed = [r.name for r in rows if not r.ok]
    exact = sum(r.exact for r in rows)
    print(f"\n{len(rows) - len(failed)} of {len(rows)} quantities match on {args.device} (floats within "
          f"{ATOL:g} + {RTOL:g}·max|ref|, integers exactly); {exact} bit-identical")
    if failed:
        print("FAILED: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
