"""The `speechqa` command line: the top layer, above api/ and evaluation/."""
