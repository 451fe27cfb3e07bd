"""One compared quantity of a parity check against the official fixtures."""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOLERANCE = 1e-5  # max abs error allowed for floats; integers, tokens and masks must be equal


@dataclass
class ParityRow:
    name: str
    max_abs_error: float  # for discrete quantities: the number of differing entries
    exact: bool  # bit-identical to the reference
    ok: bool  # within TOLERANCE (floats) or equal (discrete)
    discrete: bool = False

    def describe(self) -> str:
        if self.discrete:
            return f"{int(self.max_abs_error)} differ"
        return "bit-identical" if self.exact else f"{self.max_abs_error:.3e}"


def compare(name: str, got: torch.Tensor, expected: torch.Tensor, tolerance: float = TOLERANCE) -> ParityRow:
    """Floats: max abs error (infinities must sit at the same places). Integers/bools: mismatch count."""
    got, expected = got.detach().cpu(), expected.detach().cpu()
    discrete = not expected.dtype.is_floating_point
    if got.shape != expected.shape:
        return ParityRow(name, float("inf"), False, False, discrete)
    if discrete:
        mismatches = float((got.long() != expected.long()).sum())
        return ParityRow(name, mismatches, mismatches == 0, mismatches == 0, True)
    finite = torch.isfinite(expected)
    same_inf = torch.equal(got[~finite], expected[~finite].to(got.dtype))
    error = float((got[finite].double() - expected[finite].double()).abs().max()) if finite.any() else 0.0
    return ParityRow(name, error, same_inf and error == 0.0, same_inf and error <= tolerance)
