from .dice import DICE

__all__ = ["DICE"]
