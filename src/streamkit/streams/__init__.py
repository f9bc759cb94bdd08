"""DynamoDB Streams and Lambda building blocks shared by the local runner and ``ops/``.

- :mod:`.reader` -- DescribeStream (every page) and a shard reader that handles GetRecords,
  its iterators and their expiry;
- :mod:`.throttling` -- idle polling, throttling backoff and the per-shard read gate;
- :mod:`.backoff` -- the runtime's one retry vocabulary, a stop-aware policy on tenacity;
- :mod:`.envelope` -- stream records as Lambda delivers them, and FilterCriteria;
- :mod:`.verdicts` -- what an invoke's outcome means under Lambda's batch contract.

``streamkit.local.esm`` (the event source mapping runner) and ``streamkit.ops`` (tail, dlq
replay) both import these, so ``ops`` never reaches into the runner. AWS error codes, default
clients and full-jitter backoff for the library live in ``streamkit._aws``. Nothing is
imported here.
"""
