"""The model state: agent tables as columns, the mutable land arrays, and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .columns import Columns

FIRM_FIELDS = {
    "uid": np.int64,  # stable id across the run and across scenarios (keys its random draws; see streams.py)
    "track": np.int8,  # index into params.TRACKS
    "revenue": np.float64,  # CNY per year
    "employees": np.int32,  # talent agents working here
    "cell": np.int32,  # flat index into the grid
    "born": np.float32,  # decimal year of founding
    "funding": np.float32,  # CNY of policy funding received (cumulative)
    "policy_stock": np.float64,  # CNY of policy funding still at work, decaying (params.funding_half_life_years)
    "policy_sales": np.float64,  # CNY/yr of contract sales in revenue, running off over CONTRACT_YEARS (firms.py)
    "compute": np.float32,  # PFLOPS demanded
    "anchor": np.int16,  # row in the anchor-firm table, -1 for synthesized firms
    "density_level": np.float64,  # log productivity from density that the revenue holds now (fields.density_level)
}
TALENT_FIELDS = {
    "uid": np.int64,  # stable id, as for firms
    "skill": np.float32,  # relative skill, lognormal around 1
    "home": np.int32,  # flat cell index of home
    "firm": np.int32,  # employer row in firms, -1 while seeking
    "wage": np.float32,  # CNY per year
}
COMPUTE_FIELDS = {
    "pflops": np.float32,  # FP16 PFLOPS
    "cell": np.int32,
    "online": np.float32,  # decimal year from which it serves
}
PARK_FIELDS = {
    "cell": np.int32,  # centre cell, for maps
    "floor_m2": np.float64,  # floor space added
    "zone": np.int16,
    "online": np.float32,
}


@dataclass
class StepLog:
    """What the last step changed, for invariants and progress."""

    firm_births: int = 0
    firm_exits: int = 0
    talent_in: int = 0
    talent_out: int = 0
    hires: int = 0
    relocations: int = 0


@dataclass
class State:
    """Everything that changes during a run."""

    firms: Columns
    talent: Columns
    compute: Columns
    parks: Columns
    capacity_m2: np.ndarray  # float64 per cell: base floor space plus parks
    occupancy_m2: np.ndarray  # float64 per cell: floor space in use
    rent: np.ndarray  # float32 per cell, CNY/m2/month
    residents: np.ndarray  # int32 per cell: live talent living there (kept up to date by the talent processes)
    year: float  # decimal year of the state's moment (start of the month to come)
    anchor_ids: tuple[str, ...] = ()  # anchors-layer id of each anchor firm (firms.anchor indexes this)
    firms_made: int = 0  # base-year firms created, for their stable ids (newborns' ids come from streams.newborn_ids)
    compute_price: float = 1.0  # index, 1 at the base year
    base_compute_ratio: float = 1.0  # demand/supply in the base year
    density_reference: float = float("nan")  # base year's employment-weighted mean density level, set in the first month's growth
    log: StepLog = field(default_factory=StepLog)

    @staticmethod
    def empty_tables() -> tuple[Columns, Columns, Columns, Columns]:
        """Fresh agent tables with the engine's fields."""
        return Columns(FIRM_FIELDS), Columns(TALENT_FIELDS), Columns(COMPUTE_FIELDS), Columns(PARK_FIELDS)

    def add_firms(self, uid: np.ndarray | None = None, **fields: np.ndarray) -> np.ndarray:
        """Append firms with the given stable ids, or the next base-year ids; returns their rows."""
        if uid is None:
            k = len(next(iter(fields.values())))
            uid = np.arange(self.firms_made, self.firms_made + k, dtype=np.int64)
            self.firms_made += k
        return self.firms.append(uid=uid, **fields)

    @property
    def agents(self) -> int:
        """Live firms plus live talent."""
        return self.firms.count + self.talent.count

    def compact(self) -> None:
        """Drop dead rows, re-pointing talent at their employers' new rows."""
        if self.firms.needs_compaction():
            remap = self.firms.compact()
            employed = self.talent.firm >= 0
            self.talent.firm[employed] = remap[self.talent.firm[employed]]
        if self.talent.needs_compaction():
            self.talent.compact()
