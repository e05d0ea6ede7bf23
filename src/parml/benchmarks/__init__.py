"""Benchmarks of parml against its anchors (run with ``parml bench AREA`` or ``bench/AREA.py``)."""
