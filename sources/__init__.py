"""Frame sources and the network safety that fetching them needs, shared by the API and the workers.

``netguard`` (the camera allowlist, checked before any connection), ``pinned`` (connections only to the
addresses that check approved), ``camera`` (fetching one frame within limits, whatever the protocol:
``http_camera``, ``rtsp_camera`` and its ``rtsp_relay``), ``endpoint`` (a camera, its credentials and
TLS trust), ``challenge`` and ``authcache`` (answering cameras' authentication), ``tls``, ``probe`` (a
camera test report), ``imagebytes`` (what an upload holds) and ``urls`` (naming a URL without its
credentials). Imports no Celery, no ``ml``, no Flask. docs/cameras.md explains the camera side.
"""
