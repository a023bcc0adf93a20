"""Question answering core: index, hybrid retrieval, cited answer composition, the AnswerService."""
