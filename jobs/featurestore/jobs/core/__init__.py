"""The shared layer under the jobs: what every job uses (docs/layout.md, "Layers").

:mod:`.settings` (one :class:`~.settings.Settings` built once from flags, environment and the
repository's ``featurestore.toml``), :mod:`.console` (terminal output, exit codes, progress),
:mod:`.control_plane` (the job side's Redis client and key names), :mod:`.run_records`
(``fs:runs``), :mod:`.job_metrics` (Prometheus metrics of the jobs) and :mod:`.feature_log`
(the feature log's format and writer).  Nothing here imports batch, streaming, training, ops
or the command line.
"""
