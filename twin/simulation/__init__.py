"""Simulation: the Mesa models that run the engine under a scenario's levers, and one run's record.

:mod:`.model` is the vectorized ``VisionValleyModel``; :mod:`.reference`
states the same rules one ``mesa.Agent`` at a time (the specification and the
tests' oracle; its agents, talent stage, levers and draws are in the
``reference_*`` modules); :mod:`.run` steps a model to the end and keeps yearly snapshots.
"""
