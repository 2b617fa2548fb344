"""Compiled kernels, built from src/ by setup.py."""
