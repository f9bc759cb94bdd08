"""The event source mapping runner: Lambda's poller for DynamoDB streams, run locally.

A record travels through these modules in this order:

- :mod:`.runner` -- the :class:`~streamkit.local.esm.runner.Runner`: reconciles the mappings
  the emulator holds with one :class:`~streamkit.local.esm.mapping.MappingWorker` each;
- :mod:`.config` -- a mapping's settings (:class:`MappingConfig`) and the request checks the
  emulator shares;
- :mod:`.mapping` -- one mapping's supervisor thread: loads the function, follows the shards;
- :mod:`.shard` -- one shard's thread: resume after its checkpoint, run its loop;
  :mod:`.stats` -- the mapping's counters and state;
- :mod:`.pipeline` -- ``wire_mapping``: a mapping's settings become its pipeline once; a
  shard's parts; the sequential loop;
- reading -- :class:`streamkit.streams.reader.ShardReader` (GetRecords, iterators, throttling);
- :mod:`.intake` -- records converted to Lambda's shape and filtered (FilterCriteria), once;
- :mod:`.batcher` -- records into batches (BatchSize, MaximumBatchingWindowInSeconds, 6 MB);
- :mod:`.processor` -- invoke, judge, retry, bisect, give up; :mod:`.destinations` on failure;
- :mod:`.lanes` (ParallelizationFactor) and :mod:`.windows` (TumblingWindowInSeconds) -- the
  other two ways to run a shard;
- :mod:`.checkpointer` -- one per shard: finished records become its checkpoint;
- :mod:`.checkpoints` -- the durable store of where each shard resumes;
- :mod:`.processing_results` -- each batch's outcome reported to the endpoint
  (``LastProcessingResult``).

Nothing is imported here, so ``streamkit.local.emulator`` can use :mod:`.config` without
loading the runner.
"""
