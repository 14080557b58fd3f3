"""Agent parameters: every default with its unit, its range and its source or reasoning.

Parameters are plain dataclass fields so a researcher can override any of them
by name (``VisionValleyModel(seed=1, growth_sigma=0.4)``) and clone a set for a
sweep with ``dataclasses.replace``. ``python -m twin.engine.params`` prints the
parameter table from these definitions, and docs/parameters.md is that output,
so the docs cannot drift from the code (a test compares them).

Sources: published figures cite docs/sources.md#<anchor>; "ASSUMPTION" marks a figure no
source gives, chosen for the stated reason and safe to change.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layers import InputError
from layers.errors import require_file

from .values import number_problem


def _p(default: Any, unit: str, lo: float, hi: float, doc: str) -> Any:
    """A parameter field: default, unit, allowed range and its documentation."""
    return field(default=default, metadata={"unit": unit, "lo": lo, "hi": hi, "doc": doc})


# --- fitted parameters (calibration) -------------------------------------------------
SHIPPED_CALIBRATION = Path(__file__).with_name("calibration.json")
"""The committed fit (``python -m twin.studies.calibration --out FILE`` writes a new one): fitted values,
posterior sample, data fitted to, error per target. Parameters are built from a calibration file
passed in (:meth:`Params.from_calibration`); this one is only the default."""


def read_calibration(path: str | os.PathLike[str] = SHIPPED_CALIBRATION) -> dict[str, Any]:
    """A calibration file's record; a missing or malformed file is an input error (never silently the priors)."""
    path = require_file(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, "file", f"cannot be read as a calibration (JSON): {exc}") from None
    fitted = record.get("fitted") if isinstance(record, dict) else None
    if not isinstance(fitted, dict) or not isinstance(record.get("posterior", []), list):
        raise InputError(path, "fitted", "a calibration file holds a 'fitted' mapping and a 'posterior' list")
    unknown = sorted(set(fitted) - set(FITTED_NAMES))
    if unknown:
        raise InputError(path, "fitted", f"{', '.join(unknown)} are not fitted parameters ({', '.join(FITTED_NAMES)})")
    return record


def _fit(prior: float, unit: str, lo: float, hi: float, doc: str) -> Any:
    """A parameter the calibration fits: its dataclass default is the ``prior``; the fitted value comes from the file."""
    return field(default=prior, metadata={"unit": unit, "lo": lo, "hi": hi, "doc": doc, "prior": prior})


GRADES = ("randomized", "quasi-experimental", "observational", "none")
"""Evidence grades of a lever-response parameter, strongest first (docs/levers.md): what kind of study its range rests on."""


def _response(central: float, unit: str, lo: float, hi: float, evidence: tuple[float, float], grade: str, doc: str) -> Any:
    """A lever-response parameter: its ``central`` value, the allowed range [lo, hi], the ``evidence`` range that
    studies (or, with grade "none", plain ignorance) support, and the evidence ``grade`` (one of GRADES).

    Ensembles draw these per member within ``evidence`` (twin/studies/seeds.py) unless the responses are frozen,
    so an interval can include "we do not know how strongly firms respond". A range with grade "none" includes zero.
    """
    assert grade in GRADES and lo <= evidence[0] <= central <= evidence[1] <= hi, (grade, evidence, central)
    assert grade != "none" or evidence[0] <= 0.0, "an unmeasured response's range includes zero"
    return field(default=central, metadata={"unit": unit, "lo": lo, "hi": hi, "doc": doc, "evidence": evidence, "grade": grade})


TRACKS = (
    ("foundation", "基础层", "Foundation layer (chips, sensors, optics)"),
    ("technology", "技术层", "Technology layer (algorithms, models, platforms)"),
    ("security", "数字安防", "Digital security"),
    ("industrial", "工业视觉", "Industrial vision"),
    ("medical", "医学影像", "Medical imaging"),
    ("driving", "自动驾驶", "Autonomous driving"),
    ("living", "智能生活及办公", "Smart living and office"),
    ("xr", "虚拟现实及元宇宙", "VR and metaverse"),
    ("imaging", "特殊成像", "Special imaging"),
)
"""The three layers' firms and the seven application tracks (docs/sources.md#s-layers, docs/sources.md#s-tracks)."""

TRACK_IDS = tuple(t[0] for t in TRACKS)

AGENTS_PER_FIRM = 8.3
"""Agents (the firm plus its talent) per synthesized firm in the base year, as measured; for size estimates."""

MONTH = 1.0 / 12.0
"""One step of the model in years: every annual rate and amount is applied a month at a time."""

BYTES_PER_AGENT = 250
"""Generous peak memory per agent (the benchmark measures about 110), for refusing runs that cannot fit."""

TIERS = ("micro", "sme", "guishang", "leader")
"""Firm tiers by revenue: micro, SME, 规上 (above-scale) and leader."""


@dataclass(frozen=True)
class Params:
    """Every agent parameter of the model, with documented defaults.

    ``Params()`` holds the priors; a run's parameters are :meth:`from_calibration`: the fitted
    values of a calibration file, passed in, then the scenario's overrides.
    """

    # --- scale and the base year -------------------------------------------------
    scale: float = _p(1.0, "share", 1e-4, 10.0, "Share of the full-scale population simulated; 1 = every firm and worker as an agent. Anchor firms, when included, keep their real size.")
    anchors: int = _p(1, "0/1", 0, 1, "Include the anchor firms (1) or leave them out (0). Anchors bring their full workforce at any scale (海康威视 alone about 55k workers), counted times the scale in densities, births and in-migration (fields.staff, fields.talent_pool); tests and benchmarks of a small city leave them out.")
    firms_full: int = _p(100_000, "firms", 1_000, 1_000_000, "ASSUMPTION: firms of all sizes in the visual-intelligence chain at full scale. Only the 844 规上 firms are published (docs/sources.md#s-guishang-844); the order of magnitude follows the project brief.")
    guishang_firms: int = _p(844, "firms", 0, 100_000, "规上 (above-scale) visual-intelligence firms, Aug 2023 (docs/sources.md#s-guishang-844).")
    guishang_threshold_cny: float = _p(2e7, "CNY/yr", 1e5, 1e10, "ASSUMPTION: revenue threshold of a 规上 firm, taken from the national 规模以上工业企业 threshold of 20 M CNY main-business revenue.")
    guishang_pareto_alpha: float = _p(1.5, "-", 1.05, 5.0, "ASSUMPTION: Pareto tail exponent of 规上 revenues above the threshold; firm-size tails near 1-2 are the usual finding.")
    micro_median_cny: float = _p(5e5, "CNY/yr", 1e3, 2e7, "ASSUMPTION: median revenue of a sub-规上 firm (a start-up of a few people).")
    micro_sigma: float = _p(1.2, "log", 0.1, 3.0, "ASSUMPTION: log-sd of sub-规上 revenues (lognormal).")
    sme_threshold_cny: float = _p(5e5, "CNY/yr", 1e3, 1e9, "ASSUMPTION: revenue below which a firm counts as micro; between this and the 规上 threshold it is an SME.")
    leader_threshold_cny: float = _p(1e9, "CNY/yr", 1e8, 1e12, "ASSUMPTION: revenue from which a firm counts as a leader (1 bn CNY); anchor firms without a sourced revenue are drawn from the Pareto tail above it.")
    gdp_weight: float = _p(0.5, "share", 0.0, 1.0, "ASSUMPTION: a district's share of firms blends its GDP share (this weight) and its population share (docs/sources.md#s-district-gdp-2022, docs/sources.md#s-district-pop-2020).")
    # --- labour -----------------------------------------------------------------
    revenue_per_worker_cny: float = _p(2.5e5, "CNY/yr", 1e4, 1e7, "ASSUMPTION: revenue per worker of a firm with 10 M CNY revenue; chosen so the base year has about a million workers.")
    productivity_elasticity: float = _p(0.2, "-", 0.0, 0.6, "ASSUMPTION: revenue per worker rises as revenue^this; 0.2 gives 海康威视 (831.7 亿 CNY, docs/sources.md#s-hik-2022) about 55k workers, near its reported headcount.")
    seeker_share: float = _p(0.05, "share", 0.0, 0.5, "ASSUMPTION: job seekers in the base-year talent pool, beside the employed.")
    quit_rate: float = _p(0.15, "1/yr", 0.0, 1.0, "ASSUMPTION: annual job-to-job turnover of employed talent.")
    leave_rate_employed: float = _p(0.04, "1/yr", 0.0, 1.0, "ASSUMPTION: annual rate at which employed talent leave the city.")
    leave_rate_seeking: float = _p(2.0, "1/yr", 0.0, 12.0, "ASSUMPTION: annual rate at which job seekers leave the city (half within about four months).")
    inflow_response: float = _p(0.3, "1/month", 0.0, 1.0, "ASSUMPTION: share of unmet labour demand (vacancies that floor space allows, beyond seekers) that migrates in each month.")
    inflow_base: float = _p(0.02, "1/yr", 0.0, 0.5, "ASSUMPTION: baseline in-migration of talent as a share of the pool.")
    commute_max_km: float = _p(40.0, "km", 1.0, 300.0, "ASSUMPTION: longest commute a worker accepts.")
    commute_cost: float = _p(0.08, "1/km", 0.0, 2.0, "ASSUMPTION: disutility per km of commute in job and home choice (logit units).")
    wage_share: float = _p(0.3, "share", 0.01, 1.0, "ASSUMPTION: labour share of revenue; a firm offers this times its revenue per worker as a wage.")
    home_move_rate: float = _p(0.1, "1/yr", 0.0, 1.0, "ASSUMPTION: annual rate at which talent re-choose their home.")
    rent_weight_home: float = _p(1.0, "-", 0.0, 10.0, "ASSUMPTION: disutility of log rent in home choice.")
    # --- firm growth ------------------------------------------------------------
    growth_mu: float = _fit(0.08, "1/yr", -1.0, 1.0, "Mean annual growth of revenue, as the log of the expected ratio E[revenue next year / revenue now], of an established firm up to 100 M CNY before local effects: the shock's convexity is taken out of the drift (log(1 - sigma^2/2) a year for the Laplace shock), so the volatility does not add to mean growth.")
    growth_size_drag: float = _fit(0.02, "1/yr per decade", 0.0, 0.5, "Annual growth lost per tenfold of revenue above 100 M CNY: large firms grow slower, the size-growth relation the anchors' published growth shows.")
    growth_sigma: float = _p(0.25, "1/sqrt(yr)", 0.0, 2.0, "ASSUMPTION: sd of annual log growth of an established 10 M CNY firm. The shock is Laplace (tent-shaped, docs/sources.md#s-lit-growth-laplace): each month a normal whose variance is the firm's exponential draw of the year, so a year's growth is Laplace with this sd; a firm's sd is capped at 1 a year (the Laplace mean is infinite from sqrt 2).")
    growth_youth_premium: float = _p(0.1, "1/yr", 0.0, 1.0, "ASSUMPTION (range 0-0.2): extra mean annual growth of a newborn firm, fading as exp(-age / growth_age_scale_years): growth falls with age, young firms are up or out, and size does not matter once age is controlled for (docs/sources.md#s-lit-growth-age).")
    growth_youth_volatility: float = _p(0.5, "-", 0.0, 5.0, "ASSUMPTION (range 0-1): a newborn's growth sd is (1 + this) times an established firm's of its size, the excess fading with age as the premium does: growth variability falls with age (docs/sources.md#s-lit-growth-age, docs/sources.md#s-lit-growth-laplace).")
    growth_age_scale_years: float = _p(3.0, "yr", 0.25, 30.0, "ASSUMPTION (range 2-5): age at which the young-firm growth premium and volatility excess are down to 1/e; exit hazards peak in year 3 and stay high to year 7 (SAIC survival, see exit_youth_factor).")
    sigma_size_elasticity: float = _p(0.25, "-", 0.0, 0.5, "Growth volatility falls as revenue^-this (beta): large firms are steadier. Literature: beta = 0.20 ± 0.03 for sales (docs/sources.md#s-lit-size-variance), rising toward 1/2 for the largest firms; ASSUMPTION: 0.25, the upper end, for a twin whose volatility matters most at its 100 亿-scale anchors (海康威视 about 2.6%/yr); plausible range 0.14 – 0.3, not fitted (the revenue targets pin mean growth, not its variance).")
    sigma_floor_cny: float = _p(1e6, "CNY/yr", 1.0, 1e9, "ASSUMPTION (range ¥0.1-10 M): the size-variance law holds down to this revenue, and a smaller firm has the growth volatility of a firm this size. The law is measured on established firms; extrapolated to firms of a few yuan it gave them a growth sd of 10 a year and runaway revenue (one screening run reached 6.9 万亿 for a micro firm).")
    urbanisation_elasticity: float = _p(0.05, "-", 0.0, 0.3, "ASSUMPTION (range 0.027-0.088): elasticity of a firm's productivity level (its revenue) to the employment density of all tracks around it, other firms only. A level effect, not a growth rate: revenue moves by this x the change of log density, once. Literature: about 6% per doubling of density (Ciccone & Hall 1996), 2.7-6.4% (meta-analysis), 8.8% for Chinese cities, 19% China (Chauvin et al.) (docs/sources.md#s-lit-density); Chinese software/IT firms gain from diversity (docs/sources.md#s-lit-neighbours).")
    localisation_elasticity: float = _p(0.01, "-", 0.0, 0.3, "ASSUMPTION (range 0-0.03): the same for the employment density of the firm's own track (localisation). New high-tech industries gain from own-industry neighbours too, Chinese software/IT firms from diversity rather than specialisation (docs/sources.md#s-lit-neighbours), so it is the smaller term; with the urbanisation term the total stays within docs/sources.md#s-lit-density.")
    density_floor_km2: float = _p(100.0, "workers/km2", 1.0, 10_000.0, "ASSUMPTION (range 10-1000): employment density (full-city workers per km2, smoothed) added to every firm's neighbourhood before its log is taken, so a firm with hardly anybody near does not gain without bound from its first neighbours.")
    agglomeration_radius_m: float = _p(2000.0, "m", 250.0, 20_000.0, "ASSUMPTION (range 500-5000 m): Gaussian radius (sd) of agglomeration's distance decay, for the density of the productivity level effect and for same-track density in location choice: benefits fall off fast within the first few miles (docs/sources.md#s-lit-decay).")
    talent_weight: float = _p(0.02, "1/yr", 0.0, 1.0, "ASSUMPTION: annual growth gained per unit of log talent access (talent within commuting range) relative to the city mean.")
    talent_radius_m: float = _p(8000.0, "m", 500.0, 50_000.0, "ASSUMPTION: Gaussian radius (sd) of talent access.")
    labour_penalty: float = _p(0.3, "1/yr", 0.0, 5.0, "ASSUMPTION: annual growth lost per unit share of unfilled labour demand.")
    compute_weight: float = _response(0.0, "-", 0.0, 10.0, (0.0, 1.0), "none", "No evidence (docs/sources.md#s-ev-cloud): annual growth lost per unit of compute cost, as a share of revenue, above the base-year compute price. The measured response to compute is the adopters' one-off level lift (compute_adoption_lift); no study measures a growth-rate response to the compute price, so the central value is 0 (the price moves no firm's growth) and ensembles draw it up to 1, the value used before the evaluation review, when the price channel carried most of the baseline's effect against no_policy.")
    compute_price_elasticity: float = _p(0.5, "-", 0.0, 3.0, "ASSUMPTION: the compute price moves as (demand/supply)^this.")
    compute_pflops_per_100m_cny: float = _p(1.0, "PFLOPS per 1e8 CNY", 0.0, 100.0, "ASSUMPTION: compute demand per 100 M CNY of revenue of a track of intensity 1. The price index is relative to the base year's demand/supply ratio, so this sets only how fast demand grows against build-out.")
    compute_price_cap: float = _p(4.0, "-", 1.0, 100.0, "ASSUMPTION: the compute price index stays within [1/cap, cap] of the base year's, as spot prices and imports would cap a shortage.")
    skill_sigma: float = _p(0.4, "log", 0.0, 2.0, "ASSUMPTION: log-sd of relative skill (lognormal with mean 1), which spreads wages around a firm's offer.")
    # --- policy response (docs/levers.md) ----------------------------------------
    funding_return: float = _response(0.5, "CNY/yr per CNY", 0.0, 3.0, (0.2, 1.0), "observational", "ASSUMPTION (range 0.2-1.0, docs/levers.md): annual revenue per yuan of policy money still in a firm's policy stock; informed by R&D-subsidy additionality surveys (Zúñiga-Vicente et al. 2014; Dimos & Pugh 2016), which find subsidies add to, not replace, firms' own spending.")
    funding_half_life_years: float = _response(3.0, "yr", 0.25, 30.0, (2.0, 5.0), "observational", "ASSUMPTION (range 2-5, docs/levers.md): half-life of the policy stock, so a subsidy's revenue effect fades; over its life a yuan adds about funding_return x half-life / ln 2 yuan of revenue.")
    compute_cost_share: float = _response(0.05, "share", 0.0, 1.0, (0.0, 0.15), "none", "No evidence (docs/sources.md#s-ev-cloud: no published AI-firm compute cost share, nor output's response to public compute): compute cost as a share of revenue for a track of intensity 1, the exposure to the compute price and to 算力券 (compute vouchers). Central 0.05, range 0-0.15 includes zero: then the compute price moves no firm's growth.")
    voucher_additionality: float = _response(0.8, "share", 0.0, 1.0, (0.6, 0.9), "randomized", "Share of a voucher yuan that pays for work the firm would not have done otherwise; it enters the policy stock (funding_return, fading with funding_half_life_years), the rest changes nothing. Dutch innovation-voucher lottery: 8 of 10 (docs/sources.md#s-ev-vouchers-rct); UK Growth Vouchers: +8.2% turnover lasting about a year, so the effect fades. Transfer to Hangzhou's 算力券: fair (SMEs, small vouchers), but compute is not consultancy; range 0.6-0.9.")
    grant_additionality_small: float = _response(0.8, "share", 0.0, 1.0, (0.3, 1.0), "quasi-experimental", "Share of a model subsidy or fund ticket to a firm below the leader tier, or younger than young_firm_years, that funds activity it would not otherwise finance: small firms raise investment by about the subsidy (Italy, RDD), effects larger for small and young firms (Eurostars, RDD), but no effect in China's Innofund (fuzzy RDD) (docs/sources.md#s-ev-grants-rdd). Transfer: moderate; range 0.3-1.")
    grant_additionality_large: float = _response(0.1, "share", 0.0, 1.0, (0.0, 0.3), "quasi-experimental", "As grant_additionality_small for a leader-tier firm at least young_firm_years old: large firms do not raise investment with the subsidy (Italy, RDD), Phase II SBIR grants show no effect (docs/sources.md#s-ev-grants-rdd); near zero, range 0-0.3.")
    young_firm_years: float = _response(5.0, "yr", 0.5, 30.0, (3.0, 8.0), "observational", "Age below which a firm counts as young for the grant and procurement responses; the studies contrast start-ups with mature firms (docs/sources.md#s-ev-procurement, docs/sources.md#s-ev-grants-rdd) without one cut-off; ASSUMPTION range 3-8.")
    equity_additionality: float = _response(0.3, "share", 0.0, 1.0, (0.1, 0.6), "observational", "Share of a 视谷-fund ticket (and its credit's additional share) that funds activity private VC would not have funded, on top of the size/age grant additionality: government-VC investees perform like private-VC investees in China (docs/sources.md#s-ev-government-vc), so most tickets replace private money; mixed funds add through more total investment. Transfer: China data, good; range 0.1-0.6.")
    fund_deployment_share: float = _response(0.6, "share", 0.0, 1.0, (0.26, 1.0), "observational", "Share of the fund's planned yearly tranche actually invested: only 26% of China's guidance funds had raised their target capital by 2021 (docs/sources.md#s-ev-government-vc); a city fund with named sponsors may do better; range 0.26-1.")
    procurement_lasting_share: float = _response(0.45, "share", 0.0, 1.0, (0.0, 0.5), "quasi-experimental", "Share of a smart_om contract's value that a young winner (younger than young_firm_years) keeps as lasting sales of its own, which then grow as the firm does; mature winners keep none. Norwegian start-ups: about half (Hvide & Meling); Brazil: persistent growth (docs/sources.md#s-ev-procurement). Transfer: city procurement of vision products in China, fair; range 0-0.5.")
    compute_adoption_lift: float = _response(0.03, "log", 0.0, 1.0, (0.0, 0.069), "observational", "Log sales level gained by a firm that adopts newly built public compute (reached by compute_buildout, adopting with the new site's share of supply): cloud adoption raised US public firms' sales about 6.9% in the long run, a level effect (docs/sources.md#s-ev-cloud). Public compute for Hangzhou SMEs is a poor match, so central 0.03 and the range includes zero.")
    park_productivity_lift: float = _response(0.12, "log", 0.0, 1.0, (0.0, 0.22), "quasi-experimental", "Log productivity (sales) level gained over a park's first year by firms of the lever's tracks in it: Shenzhen science parks +15-25% (Koster et al.), 70% of Chinese parks positive within 2 km, 30% none (docs/sources.md#s-ev-parks); range 0-0.22 (zero: a park like the 30%).")
    park_displacement: float = _response(0.5, "share", 0.0, 1.0, (0.25, 1.0), "observational", "Share of the park firms' sales gain taken from firms of the same tracks elsewhere in the city (Koster et al.: jobs displaced from elsewhere; zones' gains mostly from net entry, docs/sources.md#s-ev-parks); 1 = a pure move, no net gain; range 0.25-1.")
    talent_inflow_gain: float = _response(0.1, "share", 0.0, 2.0, (0.0, 0.3), "quasi-experimental", "Share added to talent in-migration while the talent lever acts: Chinese city talent policies raise migrants' intention to settle in the short run, weakly in first-tier cities (DiD), and high earners' migration elasticity to the net-of-tax rate is 1.5-2 (Denmark) (docs/sources.md#s-ev-talent). Hangzhou is near first-tier, so central 0.1, range 0-0.3.")
    talent_retention_gain: float = _response(0.05, "share", 0.0, 2.0, (0.0, 0.2), "none", "No evidence: share by which the talent lever lowers the rates of leaving the city (housing support counts as retention); no retention effect was measured (docs/sources.md#s-ev-talent), so the range includes none.")
    # --- birth, relocation, exit ------------------------------------------------
    birth_rate: float = _fit(0.01, "firms/talent/yr", 0.0, 0.2, "Start-ups and spin-offs per talent per year (prior 0.01: about 10k a year at full scale); fitted to the entry rate and the synthetic firms' growth (docs/calibration.md, docs/sources.md#s-hz-firm-entry).")
    university_radius_m: float = _p(3000.0, "m", 100.0, 50_000.0, "ASSUMPTION: distance scale of the pull of universities, labs and platforms on new firms.")
    university_weight: float = _p(1.0, "-", 0.0, 10.0, "ASSUMPTION: logit weight of university/platform proximity in new firms' location choice.")
    relocation_rate: float = _p(0.05, "1/yr", 0.0, 1.0, "ASSUMPTION: share of firms that re-choose their location each year.")
    candidates: int = _p(16, "cells", 2, 256, "Sampled alternatives per firm location choice (UrbanSim-style sampled multinomial logit).")
    job_candidates: int = _p(8, "firms", 1, 256, "Sampled vacancies a job seeker compares each month; unmatched seekers search again next month.")
    home_candidates: int = _p(8, "cells", 1, 256, "Sampled homes a mover compares.")
    location_agglomeration: float = _p(0.5, "-", 0.0, 10.0, "ASSUMPTION: logit weight of log same-track density in location choice.")
    location_talent: float = _p(0.5, "-", 0.0, 10.0, "ASSUMPTION: logit weight of log talent access in location choice.")
    location_rent: float = _p(1.0, "-", 0.0, 10.0, "ASSUMPTION: logit weight of log rent in location choice.")
    exit_rate: float = _fit(0.08, "1/yr", 0.0, 1.0, "Annual exit hazard of a 1 M CNY firm aged over two years (prior 0.08); fitted to the exit rate and survival by age (docs/calibration.md, docs/sources.md#s-saic-exit-by-age).")
    exit_size_elasticity: float = _p(0.3, "-", 0.0, 2.0, "ASSUMPTION: the exit hazard falls as (revenue / 1 M CNY)^-this.")
    exit_shield_cny: float = _p(5e9, "CNY/yr", 1e7, 1e13, "ASSUMPTION: exit hazard x exp(-revenue/this): firms of tens of 亿 practically never close outright (a 900 亿 firm: P(exit in 10 yr) < 1e-6); set so firms at the 10 亿 leader threshold keep about 80% of the power-law hazard.")
    exit_youth_factor: float = _p(1.0, "-", 0.0, 10.0, "ASSUMPTION: extra relative hazard of a new firm, fading with age over about two years.")
    # --- land --------------------------------------------------------------------
    floor_m2_per_worker: float = _p(20.0, "m2", 1.0, 200.0, "ASSUMPTION: office or workshop floor space per worker.")
    industry_far: float = _p(0.6, "m2/m2", 0.01, 10.0, "ASSUMPTION: floor space usable by the industry per m2 of land in the district with the densest GDP; other districts scale with GDP density (docs/sources.md#s-district-gdp-2022). Within a district the floor space, and the housing, are spread by the land layer's developable weight (gis_data/land.tif or a planner's file): none on water, most on built-up land.")
    anchor_headroom: float = _p(1.0, "share", 0.0, 10.0, "ASSUMPTION: an anchor firm's HQ cell holds its base-year workforce plus this share of room to grow.")
    platform_capacity_factor: float = _p(3.0, "-", 1.0, 50.0, "ASSUMPTION: floor-space multiplier within the platform radius of a named platform (物联网小镇, 信息港小镇, ...).")
    platform_radius_m: float = _p(1500.0, "m", 100.0, 10_000.0, "ASSUMPTION: radius of a named platform's floor-space multiplier.")
    rent_base_cny_m2_month: float = _p(100.0, "CNY/m2/month", 1.0, 10_000.0, "ASSUMPTION: office rent in the densest district; elsewhere it scales with the square root of GDP density.")
    metro_radius_m: float = _p(1500.0, "m", 100.0, 20_000.0, "ASSUMPTION: distance scale of metro access, exp(-distance to a line / this); about a 20-minute walk or a short feeder ride. Lines only (gis_data/metro.geojson has no stations).")
    metro_weight_firm: float = _p(0.5, "-", 0.0, 10.0, "ASSUMPTION: logit weight of metro access in firms' location choice (births and relocations); 0.5 makes a cell on a line about 1.6 times as likely as one far from it, other things equal. No Hangzhou estimate is published; try 0-2.")
    metro_weight_home: float = _p(0.5, "-", 0.0, 10.0, "ASSUMPTION: logit weight of metro access in talent's home choice; as metro_weight_firm, try 0-2.")
    rent_occupancy_elasticity: float = _p(1.5, "-", 0.0, 20.0, "ASSUMPTION: rent = base x (1 + this x occupancy/capacity).")
    # --- outputs --------------------------------------------------------------------
    related_multiplier: float = _p(1.5, "-", 0.0, 10.0, "ASSUMPTION, user-set: total visual-intelligence scale = core revenue x (1 + this). No published relation between the two exists; 1.5 is the ratio of the 2027 targets themselves (1 万亿 total / 4,000 亿 core, docs/sources.md#s-targets-2027), so the total-scale target adds no test beyond the core one and every output marks it as built on this multiplier.")
    neighbourhood_m: float = _p(1000.0, "m", 100.0, 5000.0, "Cell size of the coarse grid on which neighbourhood fields (agglomeration, talent access) are smoothed; a whole multiple of the analysis cell.")

    def __post_init__(self) -> None:
        """Every value by the one rule for numbers (twin/engine/values.py: 16.0 is no count, true no number), then its range."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata["lo"], f.metadata["hi"]
            problem = number_problem(value, integer=isinstance(f.default, int))
            if problem is not None:
                raise InputError("params", f.name, problem)
            if not lo <= value <= hi:
                raise InputError("params", f.name, f"{value:g} is out of range [{lo:g}, {hi:g}] ({f.metadata['unit']})")

    def coarse_factor(self, cell_m: float) -> int:
        """Analysis cells per side of a neighbourhood cell; InputError unless ``neighbourhood_m`` is a whole multiple
        of ``cell_m`` (rounding it would smooth on another scale than the one asked for, silently)."""
        factor = self.neighbourhood_m / cell_m
        if factor < 1 - 1e-9 or abs(factor - round(factor)) > 1e-6:
            fits = ", ".join(f"{k * cell_m:g}" for k in range(max(1, math.floor(factor)), math.floor(factor) + 3) if k * cell_m <= 5000)
            raise InputError("params", "neighbourhood_m", f"{self.neighbourhood_m:g} m is not a whole multiple of the {cell_m:g} m grid cell "
                                                          f"(grid.cell_m); use {fits or 'a larger value'} m, or a cell size that divides it")
        return round(factor)

    @property
    def expected_agents(self) -> int:
        """About how many agents the base year will hold (anchors' workforce aside)."""
        return int(self.scale * self.firms_full * AGENTS_PER_FIRM)

    def peak_agents(self, years: int) -> int:
        """A generous bound on the agents at the largest year of a ``years``-long run.

        The talent pool grows at most by in-migration and firm growth; both are
        compounded at their full annual rates, with firm growth's noise at two sd.
        """
        rate = max(self.growth_mu, 0.0) + self.growth_youth_premium + 2 * self.growth_sigma * self.growth_sigma / 2 + self.inflow_base
        return int(self.expected_agents * math.exp(rate * max(years, 0)))

    def check_memory(self, available_bytes: int, years: int = 0) -> None:
        """Refuse a population that would not fit in memory at its peak year, before allocating it."""
        peak = self.peak_agents(years)
        need = peak * BYTES_PER_AGENT
        if need > 0.8 * available_bytes:
            grown = f", growing to about {peak:,} over {years} years" if peak > self.expected_agents else ""
            raise InputError(
                "params", "scale",
                f"scale {self.scale:g} x firms_full {self.firms_full:,} means about {self.expected_agents:,} agents{grown}, "
                f"needing about {need / 2**30:,.1f} GiB; this machine has {available_bytes / 2**30:,.1f} GiB",
            )

    def tier(self, revenue: np.ndarray) -> np.ndarray:
        """Tier index (into TIERS) of each revenue: how many tier floors it reaches.

        Three comparisons, not ``np.searchsorted``: levers ask every month for
        every firm, and a binary search per firm was eight times slower.
        """
        tier = (revenue >= self.sme_threshold_cny).view(np.int8) + (revenue >= self.guishang_threshold_cny).view(np.int8)
        return tier + (revenue >= self.leader_threshold_cny).view(np.int8)

    @classmethod
    def from_calibration(cls, path: str | os.PathLike[str] = SHIPPED_CALIBRATION,
                         overrides: dict[str, Any] | None = None) -> "Params":
        """The model's parameters: the priors, the fitted values of the calibration file at ``path``, then ``overrides``."""
        try:
            fitted = cls().with_overrides(read_calibration(path)["fitted"])
        except InputError as exc:
            if exc.file != "params":
                raise
            raise InputError(path, f"fitted.{exc.where}", exc.what) from None  # the file's value, not the scenario's
        return fitted.with_overrides(overrides or {})

    def with_overrides(self, overrides: dict[str, Any]) -> "Params":
        """A copy with some parameters changed; an unknown name, or a value the one rule for numbers refuses
        (twin/engine/values.py, checked in ``__post_init__``), is an input error. The Python API goes through here too."""
        names = {f.name for f in dataclasses.fields(self)}
        for name in overrides:
            if name not in names:
                near = _nearest(name, names)
                raise InputError("params", name, f"unknown parameter{f'; did you mean {near}?' if near else ''}")
        return dataclasses.replace(self, **overrides)


FITTED_NAMES = tuple(f.name for f in dataclasses.fields(Params) if "prior" in f.metadata)
"""The parameters a calibration file may fit."""

TRACK_COMPUTE_INTENSITY = {
    "foundation": 1.0, "technology": 1.0, "driving": 1.0, "medical": 0.6,
    "xr": 0.6, "industrial": 0.4, "imaging": 0.4, "security": 0.3, "living": 0.3,
}
"""ASSUMPTION: relative compute intensity by track (1 = model builders); scales
compute demand and exposure to the compute price, the channel 算力券 acts on."""

TRACK_FIRM_SHARES = {
    "foundation": 0.08, "technology": 0.17, "security": 0.20, "industrial": 0.12, "medical": 0.08,
    "driving": 0.08, "living": 0.12, "xr": 0.08, "imaging": 0.07,
}
"""ASSUMPTION: share of synthesized (non-anchor) firms by track. 数字安防 leads,
as the industry path 数字安防 → 视觉智能 → 智能物联 (docs/sources.md#s-path) suggests; the rest
are spread with more weight on the technology layer."""

INTENSITY = np.array([TRACK_COMPUTE_INTENSITY[t] for t in TRACK_IDS])
"""Compute intensity by track index, for the engine's vectorized look-ups."""

TRACK_SHARES = np.array([TRACK_FIRM_SHARES[t] for t in TRACK_IDS])
"""Firm shares by track index."""


def _nearest(name: str, names: set[str]) -> str | None:
    """The closest known name, for 'did you mean' hints."""
    import difflib

    match = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    return match[0] if match else None


def identified(record: dict[str, Any], name: str) -> bool:
    """Whether the calibration's identification report calls a fitted parameter FITTED (twin/studies/identification.py)."""
    return record.get("identification", {}).get("parameters", {}).get(name, {}).get("status") == "FITTED"


def markdown_table(calibration: str | os.PathLike[str] = SHIPPED_CALIBRATION) -> str:
    """The parameter table as Markdown, generated from the definitions above and the shipped calibration."""
    record = read_calibration(calibration)
    fitted = Params.from_calibration(calibration)
    lines = [
        "# Model parameters",
        "",
        "Generated by `python -m twin.engine.params`; do not edit by hand. Override any of",
        "them by name in a scenario's `params` or as a keyword to `VisionValleyModel`.",
        "",
        "| name | default | unit | range | meaning and source |",
        "|---|---|---|---|---|",
    ]
    for f in dataclasses.fields(Params):
        m = f.metadata
        doc = m["doc"]
        if f.name in record["fitted"] and identified(record, f.name):
            doc += f" **FITTED** to {record['fitted_to']} (twin/engine/calibration.json, docs/calibration.md); prior default {m['prior']:g}."
        elif f.name in record["fitted"]:
            doc += (f" **UNIDENTIFIED**: the best fit to {record['fitted_to']}, but its posterior spans most of its search range, "
                    f"so the data do not pin it (docs/calibration.md, identification); prior default {m['prior']:g}.")
        elif "prior" in m:
            doc += " ASSUMPTION until fitted: no calibration.json value yet (`python -m twin.studies.calibration`)."
        lines.append(f"| `{f.name}` | {getattr(fitted, f.name):g} | {m['unit']} | {m['lo']:g} – {m['hi']:g} | {doc} |")
    lines += ["", "## Track constants", "", "| track | 中文 | English | firm share | compute intensity |", "|---|---|---|---|---|"]
    for key, zh, en in TRACKS:
        lines.append(f"| `{key}` | {zh} | {en} | {TRACK_FIRM_SHARES[key]:g} | {TRACK_COMPUTE_INTENSITY[key]:g} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
