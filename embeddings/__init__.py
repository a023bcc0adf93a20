"""Text -> vectors: the encoder protocol, sentence-transformers encoders, the default e5 conversion, the cache."""
