"""The run engine: runs, their event logs, and everything that moves a run from start to end.

:mod:`.execution` (:class:`~.execution.Engine`: all runs of a host, the node-by-node execution loop,
cancel and shutdown), :mod:`.runs` (the state of a run), :mod:`.eventlog` (appending events,
snapshots), :mod:`.interrupts` (suspend and resolve), :mod:`.pausing`, :mod:`.endings` (completed,
failed, cancelled, timed out), :mod:`.forking` (``:fork``), :mod:`.walk` (which node runs next),
:mod:`.runoptions`, :mod:`.tokens` (signed interrupt tokens) and :mod:`.events` (the event vocabulary).
Node kinds live in :mod:`openwop_devhost.nodes`, workflow definitions in :mod:`openwop_devhost.workflows`.
"""
