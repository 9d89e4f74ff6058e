"""Live cameras: streams read continuously by reader processes, faces tracked and named once per track.

``live.processing`` is what a reader hands every decoded frame to; the readers (leases, the shared
newest frame, demand) and the tracker behind that protocol live in their own modules.
"""
