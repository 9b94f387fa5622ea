#!/usr/bin/python3
"""An RTSP camera for the tests: GStreamer's RTSP server (gst-rtsp-server, which has no
command line of its own) serving an H.264 test pattern at rtsp://127.0.0.1:<port>/cam.

  rtspCamera.py --check   exits 0 when everything it needs is installed, else says what is missing
  rtspCamera.py           listens on a free loopback port and prints "listening <port>"
"""
import ctypes
import sys

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as err:
    sys.exit(f"python3-gi and gir1.2-gst-rtsp-server-1.0 are needed: {err}")

# One GOP a second, each keyframe with its SPS/PPS in band, as cameras send them, so that a
# client starts within a second. No B-frames (a camera's low delay); not tune=zerolatency:
# its sliced threads cut frames into several NAL units that ffmpeg's RTSP reader hands on
# as packets with one timestamp, which ffmpeg's own remux to Matroska keeps too.
PIPELINE = (
    "( videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,framerate=25/1"
    " ! x264enc speed-preset=ultrafast key-int-max=25 bframes=0 bitrate=450"
    " ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)

Gst.init(None)
missing = [e for e in ("videotestsrc", "x264enc", "rtph264pay") if Gst.ElementFactory.find(e) is None]
if missing:
    sys.exit(f"GStreamer elements missing: {', '.join(missing)} (gstreamer1.0-plugins-base, -ugly, -good)")
if sys.argv[1:] == ["--check"]:
    sys.exit(0)

# Dies with the test that started it (PR_SET_PDEATHSIG = 1, SIGKILL = 9): no camera outlives its test.
ctypes.CDLL(None, use_errno=True).prctl(1, 9)

server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")  # a free port, read back below: no race for one chosen beforehand
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(PIPELINE)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit("the RTSP server could not listen")
print(f"listening {server.get_bound_port()}", flush=True)
GLib.MainLoop().run()
