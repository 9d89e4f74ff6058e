"""Live cameras: streams read continuously by reader processes, faces tracked and named once per track.

``live.processing`` is what a reader hands every decoded frame to. The readers: ``reader`` (one per
process: leases on its fair share of the watched cameras), ``leases``, ``demand`` (who watches which
camera), ``feed`` (one camera's stream), ``framestore`` (the newest frame shared through Redis),
``status``, ``dispatch`` (the frame processors, made by ``factory``, and their events), ``keys`` (every
Redis key and channel) and ``metrics``. Nothing here imports Celery or Flask: ``tasks.live`` makes a
worker a reader, and the API reads demand, frames and status through ``webapi.services``.
"""
