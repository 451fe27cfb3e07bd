"""The official fixtures, recomputed through the official-checkpoint import path (docs/official_jowa.md §12–13)."""

from __future__ import annotations

import re

import pytest
import torch

from jowa.compat import parity
from jowa.compat.comparison import ParityRow, assert_close, compare
from jowa.compat.import_official import import_world_model
from jowa.compat.official import OfficialCheckpointError, strip_prefixes


@pytest.fixture(scope="module")
def ref(reference_dir):
    return reference_dir / "jowa"


@pytest.fixture(scope="module")
def model(ref):
    return parity.load_small_model(ref)


def assert_all_ok(rows: list[ParityRow]) -> None:
    failed = [(r.name, r.max_abs_error) for r in rows if not r.ok]
    assert not failed, failed
    assert rows


def test_forward_full_window_prefix_and_kv_cache(model, ref) -> None:
    rows = parity.forward_parity(model, ref)
    assert_all_ok(rows)
    assert any(r.name.startswith("prefix/cached_tokenwise") for r in rows)


def test_losses_with_every_intermediate(model, ref) -> None:
    tokenizer = parity.load_small_tokenizer_via_import(ref)
    rows = parity.loss_parity(model, lambda frames: tokenizer.encode(frames).tokens, ref)
    assert_all_ok(rows)
    names = {r.name for r in rows}
    assert {"loss/stage2_loss_td_error", "loss/stage2_loss_cql_penalty", "loss/stage1_loss_total",
            "loss/stage2_mixed_bellman_target", "loss/stage2_a_star"} <= names


def test_c51_projection_rows(ref) -> None:
    rows = parity.c51_parity(ref)
    assert_all_ok(rows)
    assert sum(r.name.startswith("c51/row_") for r in rows) == 29 + 1


def test_math_attention_matches_the_official_forward(model, ref) -> None:
    """SDPA's math kernel computes the official explicit-mask attention (bit-identical on the fixtures'
    CPU kind; other CPUs sum in another order, so the test holds it to the float criterion)."""
    from safetensors.torch import load_file
    from torch.nn.attention import SDPBackend, sdpa_kernel

    f = load_file(str(ref / "jowa_small_forward.safetensors"))
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        out = model(f["tokens"], f["tasks"])
    assert_close(out.output_sequence, f["output_sequence"])
    assert_close(out.logits_q, f["logits_q"])


def test_cli_passes_on_the_fixtures_and_fails_on_a_mismatch(monkeypatch, ref, capsys) -> None:
    assert parity.main([str(ref)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and re.search(r"(\d+) of \1 quantities match", out)
    monkeypatch.setattr(parity, "run_parity", lambda _ref, _device: [ParityRow("a", 0.0, True, True), ParityRow("b", 1.0, False, False)])
    assert parity.main([str(ref)]) == 1
    assert "FAILED: b" in capsys.readouterr().out


def test_import_accepts_prefixes_and_rejects_wrong_shapes(ref, tmp_path) -> None:
    state = torch.load(ref / "jowa_small_official_format.pt", map_location="cpu", weights_only=True)
    compiled = {"_orig_mod." + k: v for k, v in strip_prefixes(state).items()}
    assert set(strip_prefixes(compiled)) == set(strip_prefixes(state))
    config = parity.small_world_model_config(ref)
    broken = dict(state)
    broken["module.pos_emb.weight"] = torch.zeros(296, 32)
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(OfficialCheckpointError, match="pos_emb.weight"):
        import_world_model(tmp_path / "broken.pt", config=config)


def test_import_cli_writes_loadable_checkpoints(ref, tmp_path) -> None:
    from jowa.compat.import_official import main
    from jowa.model.world_model import WorldActionModel
    from jowa.tokenizer import Tokenizer
    from safetensors.torch import load_file

    assert main(["--model", str(ref / "jowa_small_official_format.pt"), "--tokenizer",
                 str(ref / "tokenizer_small_official_format.pt"), "--num-heads", "4", "--out", str(tmp_path / "run")]) == 0
    assert main(["--model", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "other")]) == 2
    model = WorldActionModel.from_pretrained(tmp_path / "run" / "world_model").eval()
    tokenizer = Tokenizer.from_pretrained(tmp_path / "run" / "tokenizer")
    f = load_file(str(ref / "jowa_small_forward.safetensors"))
    with torch.no_grad():
        assert_close(model(f["tokens"], f["tasks"]).logits_q, f["logits_q"])
    io = load_file(str(ref / "tokenizer_small_io.safetensors"))
    assert torch.equal(tokenizer.encode_tokens(io["frames_uint8"][:, 0]), io["tokens"])


def test_the_float_criterion_scales_with_the_quantity_and_integers_are_exact() -> None:
    big = torch.tensor([15.0, -15.0, 0.36])
    assert compare("ulps", big + torch.tensor([2.5e-5, -2.5e-5, 2.5e-5]), big).ok  # 20 ulps at 15: another CPU
    assert not compare("small", torch.tensor([0.36 + 2e-5]), torch.tensor([0.36])).ok  # scale 0.36: bound ~1e-5
    row = compare("rel", big * (1 + 1e-5), big)
    assert not row.ok and row.max_rel_error == pytest.approx(1e-5, rel=0.01) and "rel" in row.describe()
    assert not compare("nan", torch.tensor([float("nan")]), torch.tensor([1.0])).ok
    assert compare("inf", torch.tensor([float("inf"), 1.0]), torch.tensor([float("inf"), 1.0])).exact
    assert not compare("moved inf", torch.tensor([1.0, float("inf")]), torch.tensor([float("inf"), 1.0])).ok
    assert not compare("tokens", torch.tensor([1, 2]), torch.tensor([1, 3])).ok
    with pytest.raises(AssertionError, match=r"big: 1\.5.e-04 abs"):
        assert_close(big * (1 + 1e-5), big, "big")
