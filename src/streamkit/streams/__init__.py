"""DynamoDB Streams and Lambda building blocks shared by the local runner and ``ops/``.

- :mod:`.reader` -- DescribeStream (every page) and a shard reader that handles GetRecords,
  its iterators and their expiry;
- :mod:`.throttling` -- AWS error codes, throttling backoff and the per-shard read gate;
- :mod:`.envelope` -- stream records as Lambda delivers them, and FilterCriteria;
- :mod:`.verdicts` -- what an invoke's outcome means under Lambda's batch contract.

``streamkit.local.esm`` (the event source mapping runner) and ``streamkit.ops`` (tail, dlq
replay) both import these, so ``ops`` never reaches into the runner. Nothing is imported here.
"""
