"""Speech documents in, speeches/sections/paragraphs/sentences with stable ids out."""
