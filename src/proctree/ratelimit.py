"""Limit how many children run at once (goprocess's ``ratelimit`` package, on trio).

``await RateLimiter(parent, limit).limited_go(fn)`` waits for one of
``limit`` slots and returns the child, which holds its slot until it is
CLOSED. Waiting callers are told with an error when the limiter closes.
"""

from ._schedule import RateLimiter as RateLimiter
from ._schedule import RateLimiterStatistics as RateLimiterStatistics

__all__ = ["RateLimiter", "RateLimiterStatistics"]
