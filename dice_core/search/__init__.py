from .nas import SearchResult, read_records, run_search

__all__ = ["run_search", "SearchResult", "read_records"]
