"""engine.compile: when it compiles, and that compiling in place changes neither keys nor values.

The value checks trace with dynamo's "eager" backend (the same graph capture and module swap as inductor,
without generating code), so they run in seconds on CPU; the speed is benchmarks/train_step.py --compile."""

from __future__ import annotations

import json

import pytest
import torch

from jowa.config import TokenizerConfig, WorldModelConfig, load_size
from jowa.model.compile import compile_tokenizer, compile_world_model, is_compiled, resolve_compile
from jowa.model.world_model import WorldActionModel
from jowa.objective import interleave
from jowa.tokenizer import Tokenizer

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_modes_and_the_auto_rule() -> None:
    assert not resolve_compile("off", CUDA, 10**6) and resolve_compile("on", CPU, 20)
    assert resolve_compile(True, CPU, 1) and not resolve_compile(False, CUDA, 10**6)  # YAML's bare on / off
    assert not resolve_compile("auto", CPU, 300) and not resolve_compile("auto", CPU, 100_000)  # measured: no gain
    assert resolve_compile("auto", CUDA, 1_750_000)
    assert not resolve_compile("auto", CUDA, 20)
    with pytest.raises(ValueError, match="engine.compile 'fast'"):
        resolve_compile("fast", CPU, 10)


def test_compiled_150M_keeps_the_official_state_dict_keys(reference_dir) -> None:
    shapes = json.loads((reference_dir / "jowa" / "full_size_state_dict_shapes.json").read_text())["JOWA_150M"]
    official = {k: v for k, v in shapes.items() if not k.endswith((".attn.mask", ".indices"))}
    with torch.device("meta"):
        model = WorldActionModel(load_size("150M").world_model)
        names = compile_world_model(model)
        ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert len(names) == load_size("150M").world_model.num_layers
    assert all(is_compiled(block) for block in model.transformer.blocks)
    assert ours == official


def test_compiled_world_model_computes_the_same_values_and_gradients() -> None:
    torch._dynamo.reset()
    config = WorldModelConfig(obs_vocab_size=64, num_layers=2, num_heads=4, embed_dim=64, embed_pdrop=0.0,
                              resid_pdrop=0.0, attn_pdrop=0.0, q_mlp_dim=96, num_q=2, q_dropout=0.0)
    torch.manual_seed(0)
    eager, compiled = WorldActionModel(config), WorldActionModel(config)
    compiled.load_state_dict(eager.state_dict())
    compile_world_model(compiled, backend="eager")
    g = torch.Generator().manual_seed(1)
    tokens = interleave(torch.randint(0, 64, (3, 2, 36), generator=g), torch.randint(0, 18, (3, 2), generator=g))
    tasks = torch.tensor([0, 1, 2])
    a, b = eager(tokens, tasks), compiled(tokens, tasks)
    assert torch.allclose(a.logits_observations, b.logits_observations, atol=1e-6, rtol=1e-5)
    a.logits_q.sum().backward()
    b.logits_q.sum().backward()
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-5), name
    assert eager.state_dict().keys() == compiled.state_dict().keys()


def test_compiled_tokenizer_encodes_the_same_tokens() -> None:
    torch._dynamo.reset()
    config = TokenizerConfig(vocab_size=64, embed_dim=8, z_channels=8, ch=4, num_res_blocks=1,
                             attn_resolutions=(), lpips_net="none")
    torch.manual_seed(0)
    eager, compiled = Tokenizer(config), Tokenizer(config)
    compiled.load_state_dict(eager.state_dict())
    assert compile_tokenizer(compiled, backend="eager") == ["encoder", "decoder"]
    frames = torch.randint(0, 256, (4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(eager.encode_tokens(frames), compiled.encode_tokens(frames))
    assert eager.state_dict().keys() == compiled.state_dict().keys()


def test_the_training_benchmark_puts_a_compiled_row_beside_the_eager_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table's bookkeeping (the measurement itself is the eager path of test_benchmarks' quick run)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import train_step

    def fake(*args, compiled: bool = False, backend: str = "inductor", **kwargs) -> dict[str, float]:
        assert backend == "eager"
        return {"tokens_per_s": 300.0 if compiled else 200.0, "ms_per_step": 10.0, "mfu": float("nan"),
                "first_step_s": 30.0 if compiled else 1.0, "bare_tokens_per_s": 250.0, "params_M": 1.0}

    monkeypatch.setattr(train_step, "measure", fake)
    table = train_step.measure_table(CPU, ["tiny"], batch=2, steps=2, warmup=1, workers=[0, 1], precisions=["fp32"],
                                     compiled=True, backend="eager")
    column = table.columns.index
    assert [(row[column("workers")], row[column("mode")]) for row in table.rows] == [
        ("0", "eager"), ("0", "compiled"), ("1", "eager")]
    assert [row[column("compiled/eager")] for row in table.rows] == ["1.00×", "1.50×", "1.00×"]
    assert table.rows[1][column("first step s")] == "30.0" and "MFU" not in table.columns
