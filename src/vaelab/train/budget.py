"""``--time-budget``: train for as long as a duration allows, stopping at an epoch boundary.

Before each epoch the budget predicts that epoch's wall time (training and validation) as the
mean of the last three; the epoch starts only when it is predicted to end within the budget
(the first always runs). The time spent is the sum of the epochs' wall times (``wall_s`` in
history.csv), so a resumed run continues with what is left. The cosine schedule (the default
with a budget) is driven by the share of the budget spent when an epoch starts, so the
learning rate reaches its floor at the end of the budget, however many epochs that is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaelab.train.config import TrainConfig, parse_duration


def format_duration(seconds: float) -> str:
    """``5m``, ``1h30m``, ``90.5s``: how a budget is written back to the user."""
    if seconds >= 60 and seconds % 60 == 0:
        h, m = divmod(int(seconds) // 60, 60)
        return f"{h}h{m}m" if h and m else f"{h}h" if h else f"{m}m"
    return f"{seconds:g}s"


class TimeBudget:
    """What a time budget has spent and whether the next epoch fits in what is left."""

    def __init__(self, seconds: float, history: Sequence[dict[str, Any]] = ()) -> None:
        self.seconds = float(seconds)
        self.walls = [float(r["wall_s"]) for r in history if r.get("wall_s") not in (None, "")]

    @classmethod
    def from_config(cls, cfg: TrainConfig, history: Sequence[dict[str, Any]] = ()
                    ) -> TimeBudget | None:
        if not cfg.time_budget:
            return None
        return cls(parse_duration(cfg.time_budget), history)

    @property
    def spent(self) -> float:
        return sum(self.walls)

    @property
    def progress(self) -> float:
        """Share of the budget spent (0 to 1)."""
        return min(self.spent / self.seconds, 1.0)

    def next_fits(self) -> bool:
        """Whether one more epoch (as long as the last three on average) ends in time."""
        if not self.walls:
            return True
        recent = self.walls[-3:]
        return self.spent + sum(recent) / len(recent) <= self.seconds

    def add(self, wall_s: float) -> float:
        """Count an epoch's wall time; returns what was counted (history's ``wall_s``)."""
        self.walls.append(float(wall_s))
        return self.walls[-1]

    def stop_reason(self) -> str:
        return (f"the time budget of {format_duration(self.seconds)} is spent ({self.spent:.1f} s "
                f"over {len(self.walls)} epochs; another epoch would overrun it)")

    def summary(self) -> dict[str, Any]:
        """What metrics.json records under ``training``."""
        return {"time_budget_s": self.seconds, "budget_spent_s": round(self.spent, 3),
                "epochs_bought": len(self.walls)}
