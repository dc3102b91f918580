"""Benchmarks of siamese_lib: speed (``python -m benchmarks.speed``) and accuracy.

Not part of the installed package; run them from the repository root.
"""
