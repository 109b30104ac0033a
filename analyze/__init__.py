"""Analyses: pure functions from trace tables (plus options and plain context values from
the trace metadata) to report tables. No paths, printing, clocks or globals here: the CLI
reads the trace and renders the result (cli/render.py).

Each report module declares its output columns once (`COLUMNS`: name, doc, BCC header and
%-format), which documents the returned table and drives the text rendering.
"""
