"""Exports: SavedModels, TF Lite models, and what build.py writes (contract)."""
