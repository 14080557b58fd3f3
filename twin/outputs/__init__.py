"""Outputs: what a run leaves for people and other tools — tables, rasters, manifests, maps and charts.

Everything is written into a folder from :func:`.folder.atomic_folder`, so a
failed or interrupted run leaves nothing half-written.
"""
