"""A real RTSP camera for the tests: GStreamer's RTSP server streaming a photo as H.264 and H.265.

Runs under the system's ``/usr/bin/python3`` (Debian's ``python3-gi`` and ``gir1.2-gst-rtsp-server-1.0``,
installed by ``scripts/ensure_camera_servers.sh``), not the project's venv. Mounts:

``/h264`` and ``/h265``: the photo at 10 frames/s, a keyframe every ``--keyframe-interval`` frames
(10: one second, as cameras ship),
on ``--port`` openly, on ``--secure-port`` behind RTSP Digest authentication (``--user``/``--password``),
as Hikvision and Dahua cameras answer by default, and on ``--basic-port`` (when given) behind RTSP Basic,
as older and cheaper cameras ask. (A mount whose source never produces a frame would
hold the server's other clients while it waits to prepare it, so the silent servers are
``tests/cameras/rtsp_fakes.py``'s.)

Prints ``ready <port> <secure port>`` once listening; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402 - after require_version

ENCODERS = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} ! rtph264pay name=pay0 pt=96",
    "h265": "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} ! rtph265pay name=pay0 pt=96",
}


def _photo_pipeline(photo: str, codec: str, gop: int) -> str:
    source = (
        f'filesrc location="{photo}" ! jpegdec ! videoconvert ! imagefreeze is-live=true '
        "! video/x-raw,framerate=10/1 ! videoconvert ! video/x-raw,format=I420"
    )
    return f"( {source} ! {ENCODERS[codec].format(gop=gop)} )"


def _factory(launch: str, roles: list[str]) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    for role in roles:
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                f"{role}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
    return factory


def _server(port: int, photo: str, gop: int, auth: GstRtspServer.RTSPAuth | None) -> GstRtspServer.RTSPServer:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    roles = []
    if auth is not None:
        server.set_auth(auth)
        roles = ["user"]
    mounts = server.get_mount_points()
    for codec in ENCODERS:
        mounts.add_factory(f"/{codec}", _factory(_photo_pipeline(photo, codec, gop), roles))
    if server.attach(None) == 0:
        sys.exit(f"could not listen on 127.0.0.1:{port}")
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True, help="the open camera")
    parser.add_argument("--secure-port", type=int, required=True, help="the camera behind Digest")
    parser.add_argument("--basic-port", type=int, default=0, help="the camera behind Basic (0: none)")
    parser.add_argument("--photo", required=True)
    parser.add_argument("--keyframe-interval", type=int, default=10, help="frames between keyframes (10 fps)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="cam-pass")
    args = parser.parse_args()

    Gst.init(None)
    user = GstRtspServer.RTSPToken()
    user.set_string("media.factory.role", "user")
    digest = GstRtspServer.RTSPAuth()
    digest.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    digest.add_digest(args.user, args.password, user)
    servers = [
        _server(args.port, args.photo, args.keyframe_interval, None),
        _server(args.secure_port, args.photo, args.keyframe_interval, digest),
    ]
    if args.basic_port:
        basic = GstRtspServer.RTSPAuth()
        basic.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        basic.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), user)
        servers.append(_server(args.basic_port, args.photo, args.keyframe_interval, basic))
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"ready {args.port} {args.secure_port}", flush=True)
    loop.run()
    del servers


if __name__ == "__main__":
    main()
