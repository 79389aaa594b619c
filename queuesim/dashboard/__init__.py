"""The admin dashboard: health, stats and jobs of live queues, as an HTTP API and a web page.

Start it with ``queuesim dashboard --redis redis://127.0.0.1:6379/0 --token <secret>`` (or ``--demo`` for a
live demo on the embedded server), or build the app yourself::

    from queuesim import connect
    from queuesim.dashboard import create_app
    import uvicorn

    app = create_app(connect("redis://127.0.0.1:6379/0"), queues=["emails"], token="a-long-random-secret")
    uvicorn.run(app, host="127.0.0.1", port=8000)

See ``docs/howto/dashboard.md`` for the endpoints and the security notes.
"""

from queuesim.dashboard.app import create_app
from queuesim.dashboard.service import DashboardError, QueueMonitor

__all__ = ["DashboardError", "QueueMonitor", "create_app"]
