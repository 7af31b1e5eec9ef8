"""Serving the engine: the executor in front of it, and the Ray Serve application.

    serving/
      executor.py     the async face: dynamic batching, fair queueing, back-pressure
      batches.py      one batch through a backend, failures kept to their own pictures
      fairqueue.py    round-robin across chats, FIFO within one
      budgets.py      picture bytes downloaded and not yet decoded, in all
      metrics.py      the executor's Prometheus metrics
      ray_serve.py    the engine as the Ray Serve application "captioning"
      ray_backend.py  the executor's backend when the models run on Ray

Importing this package imports neither torch nor ray.
"""
