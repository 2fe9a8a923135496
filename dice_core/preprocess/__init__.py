"""From a Cohort to arrays: the stratified split and the fitted Preprocessor."""
from .preprocessor import PreparedData, Preprocessor
from .split import Split, stratified_split

__all__ = ["PreparedData", "Preprocessor", "Split", "stratified_split"]
