"""The command line: ``python -m skconvnet evaluate | extract | predict``."""

from .commands import main

__all__ = ["main"]
