"""Evaluation of the answer service: gold sets, data sets, metrics, runner, backends, gates and reports."""
