"""Training configs, the global-batch split, DeepSpeed JSON handling and launcher detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jowa.config import CONFIG_DIR, apply_overrides, parse_override
from jowa.training.config import load_training, micro_batch_size, validate
from jowa.training.deepspeed_engine import load_deepspeed_config
from jowa.training.distributed import detect_launcher
from jowa.training.engine import EngineSpec


def test_shipped_configs_load_and_official_values() -> None:
    official = load_training("official")
    assert (official.world.batch_size, official.world.steps, official.world.critic_start) == (512, 1_750_000, 250_000)
    assert (official.world.lr, official.world.critic_phase_lr, official.world.critic_lr) == (1e-4, 5e-5, 5e-5)
    assert (official.tokenizer.batch_size, official.tokenizer.lr, official.world.target_update_every) == (2048, 1e-4, 1000)
    assert official.world.schedule == "constant" and official.world.weight_decay == 0.01
    tiny = load_training("tiny")
    assert tiny.world.steps < 1000 and tiny.world.critic_start < tiny.world.steps


def test_global_batch_splits_exactly() -> None:
    assert micro_batch_size(512, 1, 8) == 64  # the official 512 on 8 GPUs
    assert micro_batch_size(512, 4, 8) == 16
    with pytest.raises(ValueError, match="does not split into grad_accum 3 × world size 2"):
        micro_batch_size(16, 3, 2)


def test_validation_names_the_bad_setting() -> None:
    config = apply_overrides(load_training("tiny"), ["world.critic_start=5000"])
    with pytest.raises(ValueError, match="world.critic_start 5000 must lie in"):
        validate(config)
    with pytest.raises(ValueError, match="world.schedule 'cyclic'"):
        validate(apply_overrides(load_training("tiny"), ["world.schedule=cyclic"]))
    with pytest.raises(ValueError, match="world.loss.bootstrap 'mean': choose one of"):
        validate(apply_overrides(load_training("tiny"), ["world.loss.bootstrap=mean"]))
    validate(apply_overrides(load_training("tiny"), ["world.loss.bootstrap=data"]))
    with pytest.raises(ValueError, match="world.loss.critic_history 'none': choose one of"):
        validate(apply_overrides(load_training("tiny"), ["world.loss.critic_history=none"]))
    validate(apply_overrides(load_training("tiny"), ["world.loss.critic_history=random"]))
    with pytest.raises(ValueError, match="world.loss.rewarded_weight 0.0 must be > 0"):
        validate(apply_overrides(load_training("tiny"), ["world.loss.rewarded_weight=0"]))
    with pytest.raises(ValueError, match="tokenizer.code_restart_by 'nearest': choose one of"):
        validate(apply_overrides(load_training("tiny"), ["tokenizer.code_restart_by=nearest"]))
    with pytest.raises(ValueError, match="tokenizer.pixel_loss 'l3': choose one of"):
        validate(apply_overrides(load_training("tiny"), ["tokenizer.pixel_loss=l3"]))
    validate(apply_overrides(load_training("tiny"), ["tokenizer.pixel_loss=l2"]))


def test_deepspeed_json_gets_batch_accumulation_and_clipping_from_the_training_config(tmp_path: Path) -> None:
    spec = EngineSpec(grad_accum=4, micro_batch_size=16, grad_clip=1.0, precision="bf16")
    for name, stage in (("zero1", 1), ("zero2", 2)):
        config = load_deepspeed_config(CONFIG_DIR / "deepspeed" / f"{name}.json", spec, world_size=8)
        assert config["zero_optimization"]["stage"] == stage
        assert (config["train_batch_size"], config["train_micro_batch_size_per_gpu"]) == (512, 16)
        assert (config["gradient_accumulation_steps"], config["gradient_clipping"]) == (4, 1.0)
    stage3 = tmp_path / "z3.json"
    stage3.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    with pytest.raises(ValueError, match="stage 3 is not supported"):
        load_deepspeed_config(stage3, spec, 8)
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({"zero_optimization": {"stage": 1}, "train_batch_size": 64}))
    with pytest.raises(ValueError, match="set by the training config"):
        load_deepspeed_config(clash, spec, 8)


def test_launcher_detection(monkeypatch) -> None:
    for name in ("CROSS_RANK", "TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert detect_launcher(["pretrain.py"]) == "single"
    assert detect_launcher(["pretrain.py", "--local_rank=1"]) == "deepspeed"
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    assert detect_launcher(["pretrain.py"]) == "torchrun"
    monkeypatch.setenv("CROSS_RANK", "0")
    assert detect_launcher(["pretrain.py"]) == "deepspeed"


def test_exponent_floats_in_overrides_are_floats() -> None:
    assert parse_override("tokenizer.lr=3e-4") == (["tokenizer", "lr"], 3e-4)
    assert parse_override("world.lr=1.5e-3") == (["world", "lr"], 1.5e-3)
    assert parse_override("world.steps=10") == (["world", "steps"], 10)
    assert parse_override("name=1e5x") == (["name"], "1e5x")
    assert apply_overrides(load_training("tiny"), ["world.lr=3e-4"]).world.lr == 3e-4


def test_device_choice_gives_cuda_an_index_and_fails_early_without_a_gpu(monkeypatch) -> None:
    import torch

    from jowa.training.distributed import pick_device

    assert pick_device("cpu", 3) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto", 1) == torch.device("cpu")
    with pytest.raises(ValueError, match="sees no CUDA device"):
        pick_device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert pick_device("auto", 1) == torch.device("cuda", 1)
    assert pick_device("cuda", 2) == torch.device("cuda", 2)  # torch.cuda.set_device rejects a bare "cuda"
    assert pick_device("cuda:0", 2) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one visible GPU per process
    assert pick_device("cuda", 3) == torch.device("cuda", 0)


def test_auto_precision_is_bf16_only_where_the_device_multiplies_bf16_natively(monkeypatch) -> None:
    import torch

    from jowa.training.engine_choice import native_bf16, resolve_precision

    cpu = torch.device("cpu")
    for flags, expected in (({"avx2": True}, "fp32"), ({"avx512_f": True, "avx512_bf16": False}, "fp32"),
                            ({"avx512_bf16": True}, "bf16"), ({"amx_bf16": True}, "bf16")):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda flags=flags: flags)
        assert (native_bf16(cpu), resolve_precision("auto", cpu)) == (expected == "bf16", expected)
        assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert native_bf16(torch.device("cuda"))
    with pytest.raises(ValueError, match="engine.precision 'fp16'"):
        resolve_precision("fp16", cpu)
