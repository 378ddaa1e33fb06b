// A minimal ZeroMQ (ZMTP 3.0, NULL security, TCP) peer in managed code, so the package needs no native
// libzmq per platform and works under Mono, .NET and IL2CPP alike. It speaks just what the client needs:
// SUB (frames) and REQ (control) against the daemon's libzmq sockets. Not supported: ipc://, CURVE,
// automatic reconnect (callers reconnect: see FrameClient), more than one peer per socket.
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Tha4Bridge
{
    /// <summary>One multipart ZeroMQ message; part buffers are reused between receives to spare the GC.</summary>
    public sealed class ZmqMessage
    {
        readonly List<byte[]> _buffers = new List<byte[]>();
        readonly List<int> _lengths = new List<int>();

        public int PartCount { get { return _lengths.Count; } }
        public byte[] Buffer(int part) { return _buffers[part]; }
        public int Length(int part) { return _lengths[part]; }

        public byte[] ToArray(int part)
        {
            var b = new byte[_lengths[part]];
            System.Buffer.BlockCopy(_buffers[part], 0, b, 0, b.Length);
            return b;
        }

        internal void Clear() { _lengths.Clear(); }

        internal byte[] AddPart(int length)
        {
            int i = _lengths.Count;
            if (i == _buffers.Count) _buffers.Add(new byte[Math.Max(length, 64)]);
            else if (_buffers[i].Length < length) _buffers[i] = new byte[length];
            _lengths.Add(length);
            return _buffers[i];
        }
    }

    public class ZmqException : Exception
    {
        public ZmqException(string message) : base(message) { }
        public ZmqException(string message, Exception inner) : base(message, inner) { }
    }

    public sealed class ZmtpSocket : IDisposable
    {
        const byte FlagMore = 1, FlagLong = 2, FlagCommand = 4;
        // A frame larger than this is a protocol error for this client (frames are 512x512x4 = 1 MiB).
        public const long MaxFrameBytes = 256L << 20;

        readonly Socket _socket;
        readonly byte[] _in = new byte[64 * 1024];
        int _inStart, _inEnd;
        readonly byte[] _sizeBytes = new byte[8];
        readonly object _sendLock = new object();
        int _receiveTimeout = -1;
        volatile bool _disposed;

        public string Endpoint { get; private set; }
        public string SocketType { get; private set; }
        /// <summary>Once a message has started arriving, how long to wait for its remaining bytes.</summary>
        public int MessageTimeoutMs = 5000;

        ZmtpSocket(Socket socket, string endpoint, string socketType)
        {
            _socket = socket;
            Endpoint = endpoint;
            SocketType = socketType;
        }

        /// <summary>Connects to "tcp://host:port" and completes the ZMTP handshake as the given socket type.</summary>
        public static ZmtpSocket Connect(string endpoint, string socketType, int timeoutMs)
        {
            IPEndPoint ep = ParseEndpoint(endpoint);
            var s = new Socket(ep.AddressFamily, System.Net.Sockets.SocketType.Stream, ProtocolType.Tcp);
            try
            {
                s.NoDelay = true;
                s.ReceiveBufferSize = 4 << 20; // an inline frame is 1 MiB: let the kernel hold a few
                IAsyncResult ar = s.BeginConnect(ep, null, null);
                if (!ar.AsyncWaitHandle.WaitOne(timeoutMs))
                    throw new ZmqException("connect to " + endpoint + " timed out after " + timeoutMs + " ms");
                s.EndConnect(ar);
            }
            catch (SocketException e)
            {
                s.Close();
                throw new ZmqException("cannot connect to " + endpoint + ": " + e.Message, e);
            }
            catch
            {
                s.Close();
                throw;
            }
            var z = new ZmtpSocket(s, endpoint, socketType);
            try
            {
                z.Handshake(timeoutMs);
            }
            catch
            {
                z.Dispose();
                throw;
            }
            return z;
        }

        public static IPEndPoint ParseEndpoint(string endpoint)
        {
            if (endpoint == null || !endpoint.StartsWith("tcp://", StringComparison.Ordinal))
                throw new ArgumentException("only tcp://host:port endpoints are supported, got '" + endpoint + "'");
            string rest = endpoint.Substring(6);
            int colon = rest.LastIndexOf(':');
            int port;
            if (colon <= 0 || !int.TryParse(rest.Substring(colon + 1), out port) || port <= 0 || port > 65535)
                throw new ArgumentException("endpoint '" + endpoint + "' needs a host and a port");
            string host = rest.Substring(0, colon).Trim('[', ']');
            if (host == "*") throw new ArgumentException("'*' is for binding; connect to an address such as 127.0.0.1");
            IPAddress addr;
            if (!IPAddress.TryParse(host, out addr))
            {
                IPAddress[] all = Dns.GetHostAddresses(host);
                if (all.Length == 0) throw new ArgumentException("cannot resolve host '" + host + "'");
                addr = all[0];
                foreach (IPAddress a in all)
                    if (a.AddressFamily == AddressFamily.InterNetwork) { addr = a; break; }
            }
            return new IPEndPoint(addr, port);
        }

        void Handshake(int timeoutMs)
        {
            // Greeting: signature, version 3.0, mechanism NULL, as-server 0. Announcing 3.0 (not 3.1) makes
            // libzmq accept the 0x01-prefixed subscribe message and not expect SUBSCRIBE commands.
            var greeting = new byte[64];
            greeting[0] = 0xff;
            greeting[9] = 0x7f;
            greeting[10] = 3;
            greeting[11] = 0;
            Encoding.ASCII.GetBytes("NULL", 0, 4, greeting, 12);
            SendAll(greeting, 0, 64);

            var peer = new byte[64];
            ReadExact(peer, 0, 64, timeoutMs);
            if (peer[0] != 0xff || peer[9] != 0x7f)
                throw new ZmqException(Endpoint + " is not a ZeroMQ peer (bad greeting signature)");
            if (peer[10] < 3)
                throw new ZmqException(Endpoint + " speaks ZMTP " + peer[10] + ".x; 3.0 or newer is needed");
            string mech = Encoding.ASCII.GetString(peer, 12, 20).TrimEnd('\0');
            if (mech != "NULL")
                throw new ZmqException(Endpoint + " wants security mechanism " + mech + "; only NULL is supported");

            SendCommand("READY", Property("Socket-Type", SocketType));

            // The peer's READY must come first.
            var msg = new ZmqMessage();
            bool isCommand;
            ReadFrame(msg, timeoutMs, out isCommand);
            if (!isCommand || !CommandIs(msg, 0, "READY"))
                throw new ZmqException(Endpoint + ": expected READY from peer");
        }

        static byte[] Property(string name, string value)
        {
            byte[] n = Encoding.ASCII.GetBytes(name);
            byte[] v = Encoding.ASCII.GetBytes(value);
            var p = new byte[1 + n.Length + 4 + v.Length];
            p[0] = (byte)n.Length;
            System.Buffer.BlockCopy(n, 0, p, 1, n.Length);
            int o = 1 + n.Length;
            p[o] = (byte)(v.Length >> 24); p[o + 1] = (byte)(v.Length >> 16); p[o + 2] = (byte)(v.Length >> 8); p[o + 3] = (byte)v.Length;
            System.Buffer.BlockCopy(v, 0, p, o + 4, v.Length);
            return p;
        }

        void SendCommand(string name, byte[] data)
        {
            byte[] n = Encoding.ASCII.GetBytes(name);
            var body = new byte[1 + n.Length + data.Length];
            body[0] = (byte)n.Length;
            System.Buffer.BlockCopy(n, 0, body, 1, n.Length);
            System.Buffer.BlockCopy(data, 0, body, 1 + n.Length, data.Length);
            lock (_sendLock) SendFrame(body, 0, body.Length, FlagCommand);
        }

        static bool CommandIs(ZmqMessage msg, int part, string name)
        {
            byte[] b = msg.Buffer(part);
            int len = msg.Length(part);
            if (len < 1 + name.Length || b[0] != name.Length) return false;
            for (int i = 0; i < name.Length; i++)
                if (b[1 + i] != name[i]) return false;
            return true;
        }

        /// <summary>Sends one multipart message.</summary>
        public void Send(IList<byte[]> parts)
        {
            lock (_sendLock)
            {
                for (int i = 0; i < parts.Count; i++)
                    SendFrame(parts[i], 0, parts[i].Length, i < parts.Count - 1 ? FlagMore : (byte)0);
            }
        }

        void SendFrame(byte[] data, int offset, int count, byte flags)
        {
            byte[] head;
            if (count <= 255)
                head = new byte[] { flags, (byte)count };
            else
            {
                head = new byte[9];
                head[0] = (byte)(flags | FlagLong);
                ulong n = (ulong)count;
                for (int i = 0; i < 8; i++) head[1 + i] = (byte)(n >> (56 - 8 * i));
            }
            SendAll(head, 0, head.Length);
            SendAll(data, offset, count);
        }

        void SendAll(byte[] data, int offset, int count)
        {
            try
            {
                while (count > 0)
                {
                    int n = _socket.Send(data, offset, count, SocketFlags.None);
                    offset += n;
                    count -= n;
                }
            }
            catch (ObjectDisposedException e) { throw new ZmqException(Endpoint + ": socket closed", e); }
            catch (SocketException e) { throw new ZmqException(Endpoint + ": send failed: " + e.Message, e); }
        }

        /// <summary>True if bytes of a next message are already here (buffered or in the kernel).</summary>
        public bool HasPending
        {
            get
            {
                if (_inEnd > _inStart) return true;
                try { return _socket.Available > 0; }
                catch (ObjectDisposedException) { return false; }
            }
        }

        /// <summary>
        /// Receives one message into msg. Returns false if none started within timeoutMs (0 = only if already
        /// pending, -1 = wait forever). Commands (PING) are answered and skipped. Throws ZmqException when the
        /// connection is lost or the peer breaks the protocol.
        /// </summary>
        public bool TryReceive(ZmqMessage msg, int timeoutMs)
        {
            while (true)
            {
                if (!WaitReadable(timeoutMs)) return false;
                msg.Clear();
                bool isCommand;
                bool more = ReadFrame(msg, MessageTimeoutMs, out isCommand);
                if (isCommand)
                {
                    HandleCommand(msg);
                    continue;
                }
                while (more)
                {
                    more = ReadFrame(msg, MessageTimeoutMs, out isCommand);
                    if (isCommand) throw new ZmqException(Endpoint + ": command inside a multipart message");
                }
                return true;
            }
        }

        void HandleCommand(ZmqMessage msg)
        {
            // Heartbeats (ZMTP 3.1): answer PING with PONG carrying the ping's context.
            if (CommandIs(msg, 0, "PING"))
            {
                int len = msg.Length(0);
                int ctxStart = 1 + 4 + 2;
                int ctxLen = Math.Max(0, len - ctxStart);
                var ctx = new byte[ctxLen];
                System.Buffer.BlockCopy(msg.Buffer(0), ctxStart, ctx, 0, ctxLen);
                SendCommand("PONG", ctx);
            }
            else if (CommandIs(msg, 0, "ERROR"))
                throw new ZmqException(Endpoint + ": peer sent ERROR");
            msg.Clear();
        }

        bool WaitReadable(int timeoutMs)
        {
            if (_inEnd > _inStart) return true;
            try
            {
                int micros = timeoutMs < 0 ? -1 : (int)Math.Min((long)timeoutMs * 1000, int.MaxValue);
                return _socket.Poll(micros, SelectMode.SelectRead);
            }
            catch (ObjectDisposedException e) { throw new ZmqException(Endpoint + ": socket closed", e); }
            catch (SocketException e) { throw new ZmqException(Endpoint + ": " + e.Message, e); }
        }

        // Reads one frame and appends it to msg; returns the MORE flag.
        bool ReadFrame(ZmqMessage msg, int timeoutMs, out bool isCommand)
        {
            ReadExact(_sizeBytes, 0, 1, timeoutMs);
            byte flags = _sizeBytes[0];
            if ((flags & 0xf8) != 0) throw new ZmqException(Endpoint + ": bad frame flags 0x" + flags.ToString("x2"));
            long size;
            if ((flags & FlagLong) != 0)
            {
                ReadExact(_sizeBytes, 0, 8, timeoutMs);
                ulong u = 0;
                for (int i = 0; i < 8; i++) u = (u << 8) | _sizeBytes[i];
                if (u > (ulong)MaxFrameBytes) throw new ZmqException(Endpoint + ": frame of " + u + " bytes is too large");
                size = (long)u;
            }
            else
            {
                ReadExact(_sizeBytes, 0, 1, timeoutMs);
                size = _sizeBytes[0];
            }
            isCommand = (flags & FlagCommand) != 0;
            byte[] dst = msg.AddPart((int)size);
            ReadExact(dst, 0, (int)size, timeoutMs);
            return (flags & FlagMore) != 0;
        }

        void ReadExact(byte[] dst, int offset, int count, int timeoutMs)
        {
            int buffered = _inEnd - _inStart;
            if (buffered > 0)
            {
                int n = Math.Min(buffered, count);
                System.Buffer.BlockCopy(_in, _inStart, dst, offset, n);
                _inStart += n;
                offset += n;
                count -= n;
            }
            if (count == 0) return;
            try
            {
                int t = timeoutMs < 0 ? 0 : Math.Max(timeoutMs, 1);
                if (t != _receiveTimeout) _socket.ReceiveTimeout = _receiveTimeout = t; // a syscall: only on change
                // Large reads go straight into the destination; small ones refill the buffer so headers cost
                // one syscall, not one per field.
                while (count >= _in.Length / 2)
                {
                    int n = _socket.Receive(dst, offset, count, SocketFlags.None);
                    if (n == 0) throw new ZmqException(Endpoint + ": connection closed by peer");
                    offset += n;
                    count -= n;
                }
                while (count > 0)
                {
                    _inStart = 0;
                    _inEnd = _socket.Receive(_in, 0, _in.Length, SocketFlags.None);
                    if (_inEnd == 0) throw new ZmqException(Endpoint + ": connection closed by peer");
                    int n = Math.Min(_inEnd, count);
                    System.Buffer.BlockCopy(_in, 0, dst, offset, n);
                    _inStart = n;
                    offset += n;
                    count -= n;
                }
            }
            catch (ObjectDisposedException e) { throw new ZmqException(Endpoint + ": socket closed", e); }
            catch (SocketException e)
            {
                if (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
                    throw new ZmqException(Endpoint + ": timed out in the middle of a message", e);
                throw new ZmqException(Endpoint + ": receive failed: " + e.Message, e);
            }
        }

        /// <summary>SUB only: subscribe to messages whose first part starts with prefix (empty = all).</summary>
        public void Subscribe(byte[] prefix)
        {
            var body = new byte[1 + prefix.Length];
            body[0] = 1;
            System.Buffer.BlockCopy(prefix, 0, body, 1, prefix.Length);
            lock (_sendLock) SendFrame(body, 0, body.Length, 0);
        }

        public bool IsDisposed { get { return _disposed; } }

        /// <summary>Closes the connection; a thread blocked in TryReceive wakes with ZmqException.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception) { }
            _socket.Close();
        }
    }
}
