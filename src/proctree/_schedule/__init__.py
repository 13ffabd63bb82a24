"""The schedule layer: periodic work, rate limits and the bridges to trio cancellation.

What the layers above (and the public face) may use is what this module
exports; see the map at the top of ``docs/design.md``.
"""

from .bridges import move_on_closing as move_on_closing
from .bridges import open_child as open_child
from .bridges import with_deadline as with_deadline
from .bridges import with_timeout as with_timeout
from .periodic import every as every
from .periodic import every_go as every_go
from .periodic import on_signal as on_signal
from .periodic import on_signal_go as on_signal_go
from .periodic import tick as tick
from .periodic import tick_go as tick_go
from .periodic import ticker as ticker
from .periodic import ticker_go as ticker_go
from .ratelimit import RateLimiter as RateLimiter
from .ratelimit import RateLimiterStatistics as RateLimiterStatistics
