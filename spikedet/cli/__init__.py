"""The ``spikedet`` command line: :mod:`.parser` (settings, registry, help), :mod:`.options` (shared settings),
one module per command group (:mod:`.model`, :mod:`.convert`, :mod:`.measure`, :mod:`.serve`) and
:mod:`.main` (the entry point, :func:`spikedet.cli.main.main`).
"""
