"""DICE Studio core: deep significance clustering of patient sequences."""

__version__ = "0.1.0"
