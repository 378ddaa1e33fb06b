// Receives the daemon's frames: subscribes to the ZeroMQ notifications and hands out the newest frame,
// copying it from the shared-memory ring (transport "shm") or from the message itself ("inline").
// One thread uses a FrameClient; Dispose may be called from another thread to stop it.
using System;
using System.Diagnostics;
using System.Text;

namespace Tha4Bridge
{
    public sealed class FrameClientStats
    {
        /// <summary>Messages received for the stream.</summary>
        public long Notifications;
        /// <summary>Frames handed out by TryGetLatestFrame.</summary>
        public long Delivered;
        /// <summary>Frames passed over because a newer one was already waiting.</summary>
        public long Skipped;
        /// <summary>shm: the slot held a newer frame by the time we looked (reader too slow).</summary>
        public long Overwritten;
        /// <summary>shm: the slot changed during the copy; the copy was discarded.</summary>
        public long Torn;
        /// <summary>shm: the writer was inside the slot when we looked.</summary>
        public long Busy;
        /// <summary>Headers of frames already delivered (the daemon re-sends the latest one to new subscribers).</summary>
        public long Duplicates;
        /// <summary>Messages that could not be used (bad header, wrong size, ring file missing...).</summary>
        public long BadMessages;
        public long Reconnects;

        public FrameClientStats Clone() { return (FrameClientStats)MemberwiseClone(); }

        public override string ToString()
        {
            return "notifications=" + Notifications + " delivered=" + Delivered + " skipped=" + Skipped
                + " duplicates=" + Duplicates + " overwritten=" + Overwritten + " torn=" + Torn + " busy=" + Busy + " bad=" + BadMessages
                + " reconnects=" + Reconnects;
        }
    }

    public sealed class FrameClient : IDisposable
    {
        // Cap on messages drained per call, so a sender faster than us cannot keep us from returning.
        const int MaxDrain = 256;
        const int ReconnectIntervalMs = 500;

        readonly object _lock = new object();
        readonly Stopwatch _clock = Stopwatch.StartNew();
        ZmtpSocket _socket;
        FrameRing _ring;
        ZmqMessage _recv = new ZmqMessage(), _newest = new ZmqMessage();
        byte[] _streamBytes;
        long _nextReconnectAt;
        long _lastSeq, _lastGeneration; // of the last frame delivered
        volatile bool _disposed;

        public string Endpoint { get; private set; }
        /// <summary>The stream shown; when created with "" it becomes the first stream seen.</summary>
        public string Stream { get; private set; }
        public int ConnectTimeoutMs = 3000;
        public readonly FrameClientStats Stats = new FrameClientStats();
        /// <summary>Why the last attempt failed (connection, header or ring problems); null when fine.</summary>
        public string LastError { get; private set; }
        public bool IsConnected { get { return _socket != null; } }

        /// <summary>Test hook handed to every ring opened (see FrameRing.MidCopyHook).</summary>
        internal Action MidCopyHook;

        FrameClient(string endpoint, string stream)
        {
            Endpoint = endpoint;
            Stream = stream ?? "";
            _streamBytes = Encoding.UTF8.GetBytes(Stream);
        }

        /// <summary>
        /// Connects to the daemon's frames endpoint (e.g. Tha4Endpoints.Frames, the default) and subscribes to one stream
        /// ("" = the first stream that arrives). Throws ZmqException if the daemon cannot be reached; later
        /// disconnections are retried inside TryGetLatestFrame.
        /// </summary>
        public static FrameClient Connect(string endpoint, string stream = "", int timeoutMs = 3000)
        {
            var c = new FrameClient(endpoint, stream);
            c.ConnectTimeoutMs = timeoutMs;
            c._socket = c.OpenSocket();
            return c;
        }

        ZmtpSocket OpenSocket()
        {
            ZmtpSocket s = ZmtpSocket.Connect(Endpoint, "SUB", ConnectTimeoutMs);
            try { s.Subscribe(_streamBytes); }
            catch { s.Dispose(); throw; }
            return s;
        }

        /// <summary>
        /// Waits up to timeoutMs (0 = don't wait) for a frame newer than the last one returned and copies the
        /// newest into pixels (reallocated if too small). flipRows stores the rows bottom-up, which is what
        /// Texture2D.LoadRawTextureData expects. Returns false when no new complete frame came in time.
        /// </summary>
        public bool TryGetLatestFrame(ref byte[] pixels, out FrameInfo info, int timeoutMs = 0, bool flipRows = true)
        {
            info = null;
            lock (_lock)
            {
                long deadline = _clock.ElapsedMilliseconds + Math.Max(0, timeoutMs);
                while (!_disposed)
                {
                    int remaining = (int)Math.Max(0, deadline - _clock.ElapsedMilliseconds);
                    if (_socket == null && !TryReconnect(remaining)) return false;
                    bool got;
                    try
                    {
                        got = DrainNewest(remaining);
                    }
                    catch (ZmqException e)
                    {
                        Drop(e.Message);
                        continue;
                    }
                    if (!got) return false;
                    if (TryDeliver(ref pixels, flipRows, out info))
                    {
                        Stats.Delivered++;
                        _lastSeq = info.Seq;
                        _lastGeneration = info.Generation;
                        LastError = null;
                        return true;
                    }
                    if (_clock.ElapsedMilliseconds >= deadline) return false;
                }
                return false;
            }
        }

        bool TryReconnect(int waitMs)
        {
            long now = _clock.ElapsedMilliseconds;
            if (now < _nextReconnectAt)
            {
                // Not yet time to retry: spend the caller's timeout waiting (a caller polling in a loop must
                // not spin while the daemon is down), and retry only if the interval ends within it.
                long wait = Math.Min(waitMs, _nextReconnectAt - now);
                if (wait > 0) System.Threading.Thread.Sleep((int)wait);
                if (_clock.ElapsedMilliseconds < _nextReconnectAt) return false;
            }
            _nextReconnectAt = _clock.ElapsedMilliseconds + ReconnectIntervalMs;
            try
            {
                _socket = OpenSocket();
                Stats.Reconnects++;
                return true;
            }
            catch (Exception e)
            {
                LastError = e.Message;
                return false;
            }
        }

        void Drop(string why)
        {
            LastError = why;
            if (_socket != null) _socket.Dispose();
            _socket = null;
            _nextReconnectAt = _clock.ElapsedMilliseconds + ReconnectIntervalMs;
        }

        // Receives everything already queued and keeps the newest message of our stream in _newest.
        bool DrainNewest(int timeoutMs)
        {
            bool have = false;
            long deadline = _clock.ElapsedMilliseconds + timeoutMs;
            for (int n = 0; n < MaxDrain; n++)
            {
                int wait = have ? 0 : (int)Math.Max(0, deadline - _clock.ElapsedMilliseconds);
                if (!_socket.TryReceive(_recv, wait)) break;
                if (!IsOurStream(_recv)) continue;
                Stats.Notifications++;
                if (have) Stats.Skipped++;
                ZmqMessage t = _newest; _newest = _recv; _recv = t;
                have = true;
            }
            return have;
        }

        bool IsOurStream(ZmqMessage m)
        {
            if (m.PartCount < 2) return false;
            int len = m.Length(0);
            byte[] name = m.Buffer(0);
            if (Stream.Length == 0)
            {
                // Lock onto the first stream seen so frames of different characters never mix.
                Stream = Encoding.UTF8.GetString(name, 0, len);
                _streamBytes = Encoding.UTF8.GetBytes(Stream);
                return true;
            }
            if (len != _streamBytes.Length) return false;
            for (int i = 0; i < len; i++)
                if (name[i] != _streamBytes[i]) return false;
            return true;
        }

        bool TryDeliver(ref byte[] pixels, bool flipRows, out FrameInfo info)
        {
            info = null;
            FrameInfo h;
            try
            {
                h = FrameInfo.Parse(_newest.Buffer(1), 0, _newest.Length(1));
            }
            catch (FormatException e)
            {
                Stats.BadMessages++;
                LastError = e.Message;
                return false;
            }
            // ZeroMQ keeps order, so the only repeat is the latest header re-sent when we (re)subscribe.
            // A smaller seq is a new generation (inline frames all have generation 0; seq restarts with the daemon).
            if (h.Seq == _lastSeq && h.Generation == _lastGeneration)
            {
                Stats.Duplicates++;
                return false;
            }
            if (pixels == null || pixels.Length < h.Size) pixels = new byte[h.Size];
            h.RowsFlipped = flipRows;

            if (h.Transport == "inline")
            {
                if (_newest.PartCount < 3 || _newest.Length(2) != h.Size)
                {
                    Stats.BadMessages++;
                    LastError = "inline frame " + h.Seq + " has no pixel part of " + h.Size + " bytes";
                    return false;
                }
                CopyRows(_newest.Buffer(2), pixels, h.Width * 4, h.Stride, h.Height, flipRows);
                h.Stride = h.Width * 4;
                info = h;
                return true;
            }

            FrameRing ring = RingFor(h);
            if (ring == null) return false;
            SlotRead r = ring.TryCopy(h.Seq, h.Slot, pixels, flipRows);
            if (r == SlotRead.Ok)
            {
                info = h;
                return true;
            }
            Count(r);
            // Our frame is gone, so a newer one is in the ring: take it rather than wait for its notification
            // (which a slow reader may have lost to the high-water mark).
            long seq;
            int slot;
            ring.GetLatest(out seq, out slot);
            if (seq <= h.Seq || slot < 0 || slot >= ring.SlotCount) return false;
            r = ring.TryCopy(seq, slot, pixels, flipRows);
            if (r != SlotRead.Ok)
            {
                Count(r);
                return false;
            }
            h.Seq = seq;
            h.Slot = slot;
            h.Offset = ring.SlotOffset(slot);
            ring.SlotTimes(slot, out h.TPose, out h.TRenderStart, out h.TRenderEnd);
            h.TPublished = 0; // unknown: the notification for this frame was not seen
            info = h;
            return true;
        }

        void Count(SlotRead r)
        {
            if (r == SlotRead.Torn) Stats.Torn++;
            else if (r == SlotRead.Busy) Stats.Busy++;
            else Stats.Overwritten++;
        }

        FrameRing RingFor(FrameInfo h)
        {
            if (_ring != null && (_ring.Path != h.Path || (long)_ring.Generation != h.Generation || _ring.IsClosed))
            {
                _ring.Dispose();
                _ring = null;
            }
            if (_ring == null)
            {
                try
                {
                    _ring = FrameRing.Open(h.Path);
                }
                catch (Exception e)
                {
                    Stats.BadMessages++;
                    LastError = e.Message;
                    return null;
                }
                _ring.MidCopyHook = MidCopyHook;
                if ((long)_ring.Generation != h.Generation || _ring.Width != h.Width || _ring.Height != h.Height)
                {
                    // A header from before a restart (last-value cache) naming a file that was re-created since.
                    Stats.BadMessages++;
                    LastError = "ring file " + h.Path + " does not match the header (generation or size)";
                    _ring.Dispose();
                    _ring = null;
                    return null;
                }
            }
            return _ring;
        }

        /// <summary>Copies height rows of rowBytes from src (srcStride apart) to dst packed, optionally bottom-up.</summary>
        public static void CopyRows(byte[] src, byte[] dst, int rowBytes, int srcStride, int height, bool flipRows)
        {
            if (!flipRows && srcStride == rowBytes)
            {
                Buffer.BlockCopy(src, 0, dst, 0, rowBytes * height);
                return;
            }
            for (int y = 0; y < height; y++)
                Buffer.BlockCopy(src, y * srcStride, dst, (flipRows ? height - 1 - y : y) * rowBytes, rowBytes);
        }

        /// <summary>Stops the client; safe from any thread. A thread blocked in TryGetLatestFrame returns false.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            ZmtpSocket s = _socket;
            if (s != null) s.Dispose(); // wakes a receive in progress
            lock (_lock) // the ring is unmapped only when no copy can be running
            {
                _socket = null;
                if (_ring != null) _ring.Dispose();
                _ring = null;
            }
        }
    }
}
