"""Front doors: the FastAPI app, the chat widget's static files, the `speechqa` CLI."""
