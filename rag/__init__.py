"""Question answering with citations over Vietnamese news articles on Hà Nội's official visits.

Pipeline, one module a stage, data flowing one way:
``corpus`` -> ``chunking`` -> ``embeddings`` -> ``index`` -> (retrieval, answer) -> ``cli`` / ``ui``.
Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"
