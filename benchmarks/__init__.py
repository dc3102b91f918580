"""Benchmarks of siamese_lib: speed (``python -m benchmarks.speed``), compute
(``python -m benchmarks.compute``) and accuracy (``python -m benchmarks.accuracy``).

The results page (``book/results.md``) and the appendix on engineering notes point here.
Not part of the installed package; run them from the repository root. The speed
benchmark is split by what it measures: :mod:`~benchmarks.training`,
:mod:`~benchmarks.evaluation` and :mod:`~benchmarks.defaults`, on the shared
:mod:`~benchmarks.timing` helpers, the :mod:`~benchmarks.pipeline` they time and the
:mod:`~benchmarks.sizes` of each run.
"""
