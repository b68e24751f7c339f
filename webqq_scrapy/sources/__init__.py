"""What feeds the spiders and is not a spider: where accounts come from (``accounts``: the
``-a accounts`` list and file, the Redis list and its leases; ``redis``: the mixin that
feeds an account spider from that list) and the event-loop lag the admission reads
(``lag``). See docs/spiders.md and docs/performance.md; spiders import this package, never
the reverse.
"""
