"""The event source mapping runner: Lambda's poller for DynamoDB streams, run locally.

A record travels through these modules in this order:

- :mod:`.runner` -- the :class:`~streamkit.local.esm.runner.Runner`: reconciles the mappings
  the emulator holds with one :class:`~streamkit.local.esm.mapping.MappingWorker` each;
- :mod:`.config` -- a mapping's settings (:class:`MappingConfig`) and the request checks the
  emulator shares;
- :mod:`.mapping` -- one mapping: its supervisor thread, one shard worker per shard, its stats;
- :mod:`.pipeline` -- what a shard's processing is built from, and the sequential loop;
- reading -- :class:`streamkit.streams.reader.ShardReader` (GetRecords, iterators, throttling);
- :mod:`.batcher` -- records into batches (BatchSize, MaximumBatchingWindowInSeconds, filters);
- :mod:`.processor` -- invoke, judge, retry, bisect, give up; :mod:`.destinations` on failure;
- :mod:`.lanes` (ParallelizationFactor) and :mod:`.windows` (TumblingWindowInSeconds) -- the
  other two ways to run a shard;
- :mod:`.checkpoints` -- where each shard resumes.

Nothing is imported here, so ``streamkit.local.emulator`` can use :mod:`.config` without
loading the runner.
"""
