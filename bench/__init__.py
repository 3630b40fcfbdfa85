"""pgguard's benchmark: the guard's cost side by side with the same work unguarded.

``python -m bench`` (see ``__main__``); cases in :mod:`bench.cases`, machinery in
:mod:`bench.lab`, the written report in :mod:`bench.report`.
"""
