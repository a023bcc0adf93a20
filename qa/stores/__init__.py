"""Storage backends behind protocols: dense (FAISS), lexical (inverted-index BM25), passages (columnar)."""

from qa.stores.base import DenseStore, FileDigest, LexicalStore, Manifest, PassageStore, SegmentEntry

__all__ = ["DenseStore", "FileDigest", "LexicalStore", "Manifest", "PassageStore", "SegmentEntry"]
