"""Evaluation tooling, kept out of the runtime packages (the worker image carries ``ml``, not this).

``python -m evaluation lfw …`` measures the full face pipeline's verification accuracy on LFW-format
pairs (``accuracy``); ``python -m evaluation build-pairs …`` lays out a small substitute from the shared
photos (``lfw_substitute``). ``lfw`` reads and writes pairs files, ``verification`` holds the metrics.
"""
