"""The merge queue: workers queue verified changes on the upstream and move on; whichever worker holds
the landing lease takes a batch, tests it once on main, bisects when it is red, and lands it in one push.

- batch.py   which changes of a batch land and which go back (pure: bisection over a check)
- lease.py   the landing lease: one lander at a time, taken and broken by a push race
- enqueue.py a worker's change queued with its lock (one atomic push)
- lander.py  a lander's pass: fetch, test, bisect, land with the bookkeeping
"""

from clude.team.queue.batch import Rejected, settle_batch
from clude.team.queue.enqueue import QUEUE_REF

__all__ = ["QUEUE_REF", "Rejected", "settle_batch"]
