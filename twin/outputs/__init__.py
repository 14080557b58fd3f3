"""Outputs: what a run leaves for people and other tools — tables, rasters, manifests, maps and charts.

Every file is written through :func:`.folder.atomic_file`, into a folder from
:func:`.folder.atomic_folder`, so a failed or interrupted run leaves nothing
half-written; every CSV through :func:`.tables.write_csv`, every manifest
through :mod:`.manifest`, and the terminal summaries share :mod:`.summary`.
"""
