"""Start the chat: ``python app.py`` (same as ``rag serve``).

Builds or updates the index from ``corpus/`` first, then serves http://127.0.0.1:7860.
Configuration comes from ``RAG_*`` environment variables (see README).
"""
import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
