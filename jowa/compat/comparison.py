"""One compared quantity of a parity check against the official fixtures, and the one float criterion.

A float quantity passes when every entry satisfies |got − ref| ≤ ATOL + RTOL·max|ref|, with the float32
defaults of `torch.testing` (atol 1e-5, rtol 1.3e-6) and the quantity's largest magnitude as the scale.
Why not a bare 1e-5: CPU kernels sum in another order on AVX2 (AMD Zen 3) than on AVX-512 (the Intel
the fixtures were made on), so activations of size ~15 differ by 10–20 ulps (~2.5e-5). Why the scale is
the quantity's and not each entry's: a convolution's rounding error grows with the magnitude of what it
sums, not with its own output. Measured on Zen 3, `act_enc_after_down1` (scale 15) has 129 of 2,880
entries outside 1e-5 + 1.3e-6·|ref_i| (by up to 2.2×, at entries of size 0.36), all within
1e-5 + 1.3e-6·15. Integers, tokens, masks and planner decisions must be equal. Bit-identity is
reported where it holds (on the fixtures' CPU kind, every row), never required.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ATOL = 1e-5  # torch.testing's float32 defaults
RTOL = 1.3e-6


def assert_close(got: torch.Tensor, expected: torch.Tensor, name: str = "value") -> None:
    """Assert the project's criterion (floats as above, integers exactly), naming the worst error."""
    row = compare(name, got, expected)
    assert row.ok, f"{name}: {row.describe()} (shape {tuple(got.shape)} vs {tuple(expected.shape)})"


@dataclass
class ParityRow:
    name: str
    max_abs_error: float  # for discrete quantities: the number of differing entries
    exact: bool  # bit-identical to the reference
    ok: bool  # within ATOL + RTOL·max|ref| (floats) or equal (discrete)
    discrete: bool = False
    max_rel_error: float = 0.0  # max |got − ref| / max|ref| (floats)

    def describe(self) -> str:
        if self.discrete:
            return f"{int(self.max_abs_error)} differ"
        return "bit-identical" if self.exact else f"{self.max_abs_error:.2e} abs  {self.max_rel_error:.2e} rel"


def compare(name: str, got: torch.Tensor, expected: torch.Tensor) -> ParityRow:
    """Floats: the criterion above (infinities must sit at the same places). Integers/bools: mismatch count."""
    got, expected = got.detach().cpu(), expected.detach().cpu()
    discrete = not expected.dtype.is_floating_point
    if got.shape != expected.shape:
        return ParityRow(name, float("inf"), False, False, discrete)
    if discrete:
        mismatches = float((got.long() != expected.long()).sum())
        return ParityRow(name, mismatches, mismatches == 0, mismatches == 0, True)
    finite = torch.isfinite(expected)
    same_inf = torch.equal(got[~finite], expected[~finite].to(got.dtype))
    ref, value = expected[finite].double(), got[finite].double()
    error = (value - ref).abs()
    if error.isnan().any():
        return ParityRow(name, float("nan"), False, False, max_rel_error=float("nan"))
    top = float(error.max()) if error.numel() else 0.0
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    rel = top / scale if scale > 0 else (0.0 if top == 0 else float("inf"))
    return ParityRow(name, top, same_inf and top == 0.0, same_inf and top <= ATOL + RTOL * scale, max_rel_error=rel)
