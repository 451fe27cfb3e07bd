"""The schedule and logging shared by the diagnostics hooks: measure every `every` steps and at the last,
log the values as `diag/*` scalars and keep them by step."""

from __future__ import annotations

from jowa.training.logger import TrainLogger


class MeasureHook:
    """Subclasses implement `compute()`: the measures of the current weights (no RNG, modes restored)."""

    def __init__(self, every: int, last: int) -> None:
        self.every, self.last = every, last
        self.logger: TrainLogger | None = None
        self.logged: dict[int, dict[str, float]] = {}

    def compute(self) -> dict[str, float]:
        raise NotImplementedError

    def attach(self, logger: TrainLogger) -> None:
        self.logger = logger

    def measure(self, step: int) -> dict[str, float]:
        measures = self.compute()
        if not measures:  # nothing to measure (e.g. no episode that ends): nothing logged
            return measures
        if self.logger is not None:
            self.logger.scalars(step, {f"diag/{k}": v for k, v in measures.items()})
        self.logged[step] = measures
        return measures

    def after_step(self, step: int) -> None:
        if step % self.every == 0 or step == self.last:
            self.measure(step)

    def after_resume(self, step: int) -> None:
        pass
