"""The policy channels: what levers write each month and the engine's processes read.

Each step the model hands a fresh :class:`Effects` to every lever before the
other processes run. A lever writes into the channels (or changes the state,
as a park adds floor space); the processes read the channels. The channels
live in the engine so that the processes need nothing from the policy stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Effects:
    """Policy channels for one step; all neutral when no lever acts."""

    growth: np.ndarray  # per firm row: annual log-growth added
    zone_appeal: np.ndarray  # per zone: logit utility added to locating there
    funding: np.ndarray  # per firm row: CNY of subsidy, equity or credit received this month
    sales: np.ndarray  # per firm row: CNY/yr of contract sales starting this month; they run off over about a year and never compound
    lasting: np.ndarray  # per firm row: CNY/yr of sales added to the firm's own (organic) revenue, which then grows as the firm does
    spend: dict[str, float] = field(default_factory=dict)  # lever label -> CNY of public money spent this month
    lever: str = ""  # label of the lever now applying, ``<kind>#<position>``; set by the model
    talent_inflow: float = 1.0  # multiplier on talent in-migration
    talent_retention: float = 1.0  # divisor on talent leaving the city
    births: float = 1.0  # multiplier on firm births

    @classmethod
    def neutral(cls, firm_rows: int, zones: int) -> Effects:
        """Channels that change nothing."""
        return cls(np.zeros(firm_rows), np.zeros(zones), np.zeros(firm_rows), np.zeros(firm_rows), np.zeros(firm_rows))

    def add_spend(self, cny: float) -> None:
        """Book ``cny`` of public money against the lever now applying, so every lever's cost is reported."""
        self.spend[self.lever] = self.spend.get(self.lever, 0.0) + float(cny)
