// The daemon's default endpoints (tha4bridge serve --control / --frames), in one place for every component
// and sample: a copy of tha4bridge/defaults.py (CONTROL_ENDPOINT, FRAMES_ENDPOINT) that
// tests/unity/test_client.py::test_csharp_endpoints_match_python checks against the Python source, so the two
// cannot drift apart.
namespace Tha4Bridge
{
    public static class Tha4Endpoints
    {
        /// <summary>The daemon's control socket (ZeroMQ ROUTER, protocols/control.md); loopback only.</summary>
        public const string Control = "tcp://127.0.0.1:5590";

        /// <summary>The daemon's frames socket (ZeroMQ XPUB, protocols/frames.md); loopback only.</summary>
        public const string Frames = "tcp://127.0.0.1:5591";
    }
}
