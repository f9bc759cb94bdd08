"""The parts of ``scripts/load_test.py``, the platform's main job (see that script).

- ``options``: command-line knobs and the workload they describe.
- ``prereqs``: missing tools (terraform, redis-server) as one line saying how to install them.
- ``deploy``: the embedded default (emulator, Redis, zips, ``terraform apply``) or an applied
  platform's outputs.
- ``workload``: the orders, duplicates and cancellations a run writes, and the writer.
- ``ceiling``: the emulator's own GetRecords rate, measured in the same run.
- ``readback``: what the platform did, read back from its tables, logs, bucket, queues, Redis.
- ``accounting``: the balance that must hold; ``report``: figures, JSON, plots.
"""
