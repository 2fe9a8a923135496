"""DICE Studio core: deep significance clustering of patient sequences."""
import os

# OpenMP threads that spin while they wait make a 2-core machine crawl as soon as another process
# (the web server, a second job) needs a core: an epoch went from 1.2 s to 5.4 s. Passive waiting
# costs next to nothing on an idle machine. Must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
