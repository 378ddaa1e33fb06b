// Client for the daemon's control socket (protocols/control.md): msgpack maps over ZeroMQ. It connects as a
// DEALER (wire-compatible with the daemon's ROUTER) and tags every request with an `id`, so a reply that
// arrives after its request timed out is recognised and dropped instead of being taken for the next reply.
using System;
using System.Collections.Generic;

namespace Tha4Bridge
{
    /// <summary>The daemon answered ok: false. Code is the machine-readable reason (bad_pose, unknown_stream, ...).</summary>
    public class ControlException : Exception
    {
        public string Code { get; private set; }
        public ControlException(string code, string message) : base(message) { Code = code; }
    }

    public sealed class ControlClient : IDisposable
    {
        public const int ProtocolMajor = 1;

        readonly object _lock = new object();
        readonly ZmqMessage _reply = new ZmqMessage();
        ZmtpSocket _socket;
        long _nextId = 1;
        volatile bool _disposed;

        public string Endpoint { get; private set; }
        /// <summary>How long a request waits for its reply before ZmqException (load is slower: pass a timeout).</summary>
        public int TimeoutMs = 5000;

        ControlClient(string endpoint) { Endpoint = endpoint; }

        /// <summary>Connects to the control endpoint, e.g. Tha4Endpoints.Control (the default). Throws ZmqException if unreachable.</summary>
        public static ControlClient Connect(string endpoint, int timeoutMs = 3000)
        {
            var c = new ControlClient(endpoint);
            c._socket = ZmtpSocket.Connect(endpoint, "DEALER", timeoutMs);
            return c;
        }

        /// <summary>
        /// Sends one request map and returns the reply map. Throws ControlException when the reply has ok: false,
        /// ZmqException on timeout or connection loss (the next request reconnects).
        /// </summary>
        public Dictionary<object, object> Request(IDictionary<string, object> request, int timeoutMs = -1)
        {
            if (timeoutMs < 0) timeoutMs = TimeoutMs;
            lock (_lock)
            {
                if (_disposed) throw new ObjectDisposedException("ControlClient");
                if (_socket == null) _socket = ZmtpSocket.Connect(Endpoint, "DEALER", Math.Min(timeoutMs, 3000));
                long id = _nextId++;
                var body = new Dictionary<string, object>(request.Count + 2);
                foreach (var kv in request) body[kv.Key] = kv.Value;
                body["id"] = id;
                if (!body.ContainsKey("proto")) body["proto"] = ProtocolMajor;
                try
                {
                    _socket.Send(new[] { new byte[0], MsgPack.Pack(body) });
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    while (true)
                    {
                        int left = (int)Math.Max(0, timeoutMs - clock.ElapsedMilliseconds);
                        if (!_socket.TryReceive(_reply, left))
                            throw new ZmqException(Endpoint + ": no reply to '" + request["cmd"] + "' within " + timeoutMs + " ms");
                        // DEALER sees [empty delimiter, reply].
                        int part = _reply.PartCount == 2 && _reply.Length(0) == 0 ? 1 : 0;
                        Dictionary<object, object> reply;
                        try
                        {
                            reply = MsgPack.Unpack(_reply.Buffer(part), 0, _reply.Length(part)) as Dictionary<object, object>;
                        }
                        catch (FormatException) { continue; }
                        object rid;
                        long ridValue;
                        if (reply == null || !reply.TryGetValue("id", out rid) || !MsgPack.TryGetLong(rid, out ridValue) || ridValue != id)
                            continue; // a late reply to an earlier, timed-out request
                        object ok;
                        if (!reply.TryGetValue("ok", out ok) || !(ok is bool) || !(bool)ok)
                        {
                            object code, error;
                            reply.TryGetValue("code", out code);
                            reply.TryGetValue("error", out error);
                            throw new ControlException(code as string ?? "unknown", (error as string) ?? "request failed");
                        }
                        return reply;
                    }
                }
                catch (ZmqException)
                {
                    // A half-read or lost connection: start clean next time.
                    _socket.Dispose();
                    _socket = null;
                    throw;
                }
            }
        }

        static Dictionary<string, object> Cmd(string name)
        {
            var d = new Dictionary<string, object>();
            d["cmd"] = name;
            return d;
        }

        public Dictionary<object, object> Hello(string clientName = "unity")
        {
            var r = Cmd("hello");
            r["client"] = clientName;
            return Request(r);
        }

        /// <summary>
        /// Sets some parameters by name (others keep their current value) for hold seconds (0 = until Release).
        /// stream null/"" = the only stream, "*" = all. Unknown names make the daemon refuse (ControlException bad_pose).
        /// </summary>
        public Dictionary<object, object> SetPose(string stream, IDictionary<string, float> pose, double hold = 5.0, bool replace = false)
        {
            var r = Cmd("set_pose");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            var p = new Dictionary<string, object>(pose.Count);
            foreach (var kv in pose) p[kv.Key] = (double)kv.Value;
            r["pose"] = p;
            r["hold"] = hold;
            if (replace) r["replace"] = true;
            return Request(r);
        }

        /// <summary>Ends a hold now; the tracker drives the stream again.</summary>
        public Dictionary<object, object> Release(string stream)
        {
            var r = Cmd("release");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            return Request(r);
        }

        /// <summary>The pose the stream renders now: {name: value} for all 45 parameters.</summary>
        public Dictionary<string, float> GetPose(string stream)
        {
            var r = Cmd("get_pose");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            var reply = Request(r);
            var pose = new Dictionary<string, float>();
            var map = reply["pose"] as Dictionary<object, object>;
            if (map != null)
                foreach (var kv in map)
                {
                    double v;
                    if (kv.Key is string && MsgPack.TryGetDouble(kv.Value, out v)) pose[(string)kv.Key] = (float)v;
                }
            return pose;
        }

        // --- layers over the pose (protocols/control.md, since 1.2) ------------------------------------------

        /// <summary>The expression library: {name: {parameter: value}}.</summary>
        public Dictionary<object, object> Expressions()
        {
            return Request(Cmd("expressions"))["expressions"] as Dictionary<object, object>;
        }

        /// <summary>
        /// Fades to a named expression over fade seconds (eased; an interrupted fade continues from where it is).
        /// hold &gt; 0: after that many seconds, back to the expression before. "neutral" clears.
        /// </summary>
        public Dictionary<object, object> SetExpression(string stream, string name, double intensity = 1.0,
                                                        double fade = 0.3, double hold = -1)
        {
            var r = Cmd("set_expression");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            r["name"] = name;
            r["intensity"] = intensity;
            r["fade"] = fade;
            if (hold >= 0) r["hold"] = hold;
            return Request(r);
        }

        /// <summary>
        /// Injects named values as `source`: mode "set" (weighted replace) or "add" (weighted stack); they lapse
        /// timeout seconds after the last call (0 = until ReleaseSource). Send every frame or so to keep them.
        /// </summary>
        public Dictionary<object, object> Inject(string stream, string source, IDictionary<string, float> values,
                                                 double weight = 1.0, string mode = "set", double timeout = 1.0)
        {
            var r = Cmd("inject");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            r["source"] = source;
            var p = new Dictionary<string, object>(values.Count);
            foreach (var kv in values) p[kv.Key] = (double)kv.Value;
            r["params"] = p;
            r["weight"] = weight;
            r["mode"] = mode;
            r["timeout"] = timeout;
            return Request(r);
        }

        /// <summary>Drops one source's injected values now.</summary>
        public Dictionary<object, object> ReleaseSource(string stream, string source)
        {
            var r = Cmd("release");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            r["source"] = source;
            return Request(r);
        }

        /// <summary>Procedural talking on or off (a chat UI while its text streams in).</summary>
        public Dictionary<object, object> Talk(string stream, bool on)
        {
            var r = Cmd("talk");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            r["on"] = on;
            return Request(r);
        }

        /// <summary>The mouth level 0-1 from an audio meter; send continuously (it lapses after 1 s).</summary>
        public Dictionary<object, object> Mouth(string stream, double level)
        {
            var r = Cmd("mouth");
            if (!string.IsNullOrEmpty(stream)) r["stream"] = stream;
            r["level"] = level;
            return Request(r);
        }

        public Dictionary<object, object> Stats() { return Request(Cmd("stats")); }

        public Dictionary<object, object> Streams() { return Request(Cmd("streams")); }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            ZmtpSocket s = _socket;
            if (s != null) s.Dispose();
        }
    }
}
