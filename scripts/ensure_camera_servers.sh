#!/usr/bin/env bash
# Make sure the real camera servers the tests start are installed (tests/cameras/servers.py):
# Apache httpd (mod_auth_digest, mod_ssl), lighttpd (Digest SHA-256) and GStreamer's RTSP server for the
# system Python (python3-gi, H.264 and H.265 encoders). The tests run their own instances on free loopback
# ports; Debian starts the packages' own services on port 80 when it installs them, so this script stops
# and disables those again (they are not used).
set -euo pipefail
PACKAGES="apache2 lighttpd python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly"
have_all() {
  [ -x /usr/sbin/apache2 ] && [ -f /usr/lib/apache2/modules/mod_auth_digest.so ] && [ -x /usr/sbin/lighttpd ] &&
    /usr/bin/python3 - <<'PY' 2>/dev/null
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
missing = [e for e in ("x264enc", "x265enc", "rtph264pay", "rtph265pay", "jpegdec", "imagefreeze") if not Gst.ElementFactory.find(e)]
raise SystemExit(1 if missing else 0)
PY
}
if have_all; then exit 0; fi
command -v apt-get >/dev/null 2>&1 || {
  echo "the camera test servers are missing and apt-get is not available: install $PACKAGES" >&2; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "camera test servers not found: installing $PACKAGES" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now apache2 lighttpd >/dev/null 2>&1 || echo "note: could not stop the apache2/lighttpd services" >&2
fi
have_all || { echo "installed $PACKAGES, but a camera server or GStreamer element is still missing" >&2; exit 1; }
