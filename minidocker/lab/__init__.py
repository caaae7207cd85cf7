"""Helpers for the notebooks and labs: thin wrappers over the package, no logic of their own.

realdocker.py   a private real dockerd, to run the same command in Docker side by side
"""
