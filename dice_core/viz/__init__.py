"""Pictures and reports shared by the dashboard and the CLI: UMAP maps (embedding), plotly figures
(figures), cluster profiles in clinical units (profiles) and a self-contained HTML report (report).

Importing this package is light; umap is imported only when a map is fitted.
"""
from .embedding import MapEmbedding, build_map, fit_umap, load_map, place_near, save_map
from .report import ReportSection, build_html_report

__all__ = ["MapEmbedding", "build_map", "fit_umap", "load_map", "place_near", "save_map", "ReportSection",
           "build_html_report"]
