"""Studies: many runs around one scenario — ensembles and sweeps on Dask.

Each study fans runs out to Dask workers, folds their results in a fixed
order (so outputs are byte-identical whatever the cluster), and writes its
outputs through :mod:`twin.outputs`.
"""
