// C# test program for the package's core assembly (Tha4Bridge.Core), driven by tests/unity/test_client.py
// against a real `tha4bridge serve`. Prints one JSON object per line; exit code 0 = every check passed.
//   msgpack CASES.msgpack               decode each case (a msgpack array of bin items), print canonical JSON
//                                        and the bytes our writer produces for the decoded value
//   live FRAMES CONTROL STREAM N MODE   N frames from the daemon, header checks, control round trip;
//                                        MODE shm adds the ring checks and the slow-reader checks
//                                        (shm-quick: ring checks only)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;

namespace Tha4Bridge.Tests
{
    static class CoreTests
    {
        static int Main(string[] args)
        {
            try
            {
                if (args.Length == 2 && args[0] == "msgpack") MsgPackCases(args[1]);
                else if (args.Length >= 2 && args[0] == "header") Headers(args);
                else if (args.Length == 2 && args[0] == "ring") Ring(args[1]);
                else if (args.Length == 5 && args[0] == "watch") Watch(args[1], args[2], double.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture), int.Parse(args[4]));
                else if (args.Length == 2 && args[0] == "connect") ConnectOnly(args[1]);
                else if (args.Length == 6 && args[0] == "live") Live(args[1], args[2], args[3], int.Parse(args[4]), args[5]);
                else
                {
                    Console.Error.WriteLine("usage: msgpack FILE | live FRAMES CONTROL STREAM N shm|shm-quick|inline");
                    return 2;
                }
            }
            catch (Exception e)
            {
                Check.That(false, "unexpected exception: " + e);
            }
            return Check.Finish();
        }

        static string Hex(byte[] b)
        {
            var sb = new StringBuilder(b.Length * 2);
            foreach (byte x in b) sb.Append(x.ToString("x2"));
            return sb.ToString();
        }

        static void MsgPackCases(string path)
        {
            var cases = MsgPack.Unpack(File.ReadAllBytes(path)) as List<object>;
            Check.That(cases != null, "cases file is a msgpack array");
            for (int i = 0; i < cases.Count; i++)
            {
                var data = (byte[])cases[i];
                string body;
                try
                {
                    object v = MsgPack.Unpack(data);
                    body = "{\"index\": " + i + ", \"value\": " + Json.Of(v) + ", \"repacked\": \"" + Hex(MsgPack.Pack(v)) + "\"}";
                }
                catch (FormatException e)
                {
                    body = "{\"index\": " + i + ", \"error\": " + Json.Str(e.Message) + "}";
                }
                Check.Emit("case", body);
            }
        }

        static string D(double v) { return Json.Of(v); }

        // Prints every frame for up to `seconds`, stopping early once `generations` distinct generations were seen.
        static void Watch(string framesEp, string stream, double seconds, int generations)
        {
            var seen = new HashSet<long>();
            var clock = Stopwatch.StartNew();
            using (var frames = FrameClient.Connect(framesEp, stream))
            {
                byte[] pixels = null;
                long bad = 0;
                while (clock.Elapsed.TotalSeconds < seconds && seen.Count < generations)
                {
                    FrameInfo h;
                    bool got = frames.TryGetLatestFrame(ref pixels, out h, 200);
                    if (frames.Stats.BadMessages != bad)  // each skipped message as it happens: a test steps on it
                    {
                        bad = frames.Stats.BadMessages;
                        Check.Emit("bad", bad.ToString());
                    }
                    if (!got) continue;
                    seen.Add(h.Generation);
                    Check.Emit("frame", "{\"seq\": " + h.Seq + ", \"generation\": " + h.Generation + ", \"transport\": " + Json.Str(h.Transport)
                        + ", \"sha_flipped\": \"" + Check.Sha256(pixels, (int)h.Size) + "\"}");
                }
                var st = frames.Stats;
                Check.Emit("stats", "{\"delivered\": " + st.Delivered + ", \"bad\": " + st.BadMessages + ", \"reconnects\": " + st.Reconnects
                    + ", \"duplicates\": " + st.Duplicates + ", \"cpu_ms\": " + (long)Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds
                    + ", \"last_error\": " + (frames.LastError == null ? "null" : Json.Str(frames.LastError)) + "}");
            }
        }

        static void ConnectOnly(string endpoint)
        {
            var clock = Stopwatch.StartNew();
            try
            {
                using (FrameClient.Connect(endpoint, "", 1000)) { }
                Check.Emit("connect", "{\"ok\": true}");
            }
            catch (ZmqException e)
            {
                Check.Emit("connect", "{\"ok\": false, \"error\": " + Json.Str(e.Message) + ", \"ms\": " + (long)clock.Elapsed.TotalMilliseconds + "}");
            }
        }

        static void Headers(string[] files)
        {
            for (int i = 1; i < files.Length; i++)
            {
                byte[] data = File.ReadAllBytes(files[i]);
                FrameInfo h = FrameInfo.Parse(data, 0, data.Length);
                Check.Emit("header", "{\"seq\": " + h.Seq + ", \"generation\": " + h.Generation + ", \"width\": " + h.Width
                    + ", \"height\": " + h.Height + ", \"stride\": " + h.Stride + ", \"size\": " + h.Size
                    + ", \"transport\": " + Json.Str(h.Transport) + ", \"premultiplied\": " + (h.Premultiplied ? "true" : "false")
                    + ", \"pose_source\": " + Json.Str(h.PoseSource) + ", \"path\": " + (h.Path == null ? "null" : Json.Str(h.Path))
                    + ", \"slot\": " + h.Slot + ", \"offset\": " + h.Offset + ", \"t_pose\": " + D(h.TPose)
                    + ", \"t_published\": " + D(h.TPublished) + ", \"pose\": " + Floats(h.Pose)
                    + ", \"region\": [" + h.RegionX + ", " + h.RegionY + ", " + h.FullWidth + ", " + h.FullHeight + "]"
                    + ", \"crop\": " + (h.IsCrop ? "true" : "false") + "}");
            }
        }

        static string Floats(float[] values)
        {
            if (values == null) return "null";
            var parts = new string[values.Length];
            for (int i = 0; i < values.Length; i++) parts[i] = D(values[i]);
            return "[" + string.Join(", ", parts) + "]";
        }

        static void Ring(string path)
        {
            using (FrameRing ring = FrameRing.Open(path))
            {
                long latest;
                int latestSlot;
                ring.GetLatest(out latest, out latestSlot);
                var slots = new List<string>();
                var offsets = new List<string>();
                for (int i = 0; i < ring.SlotCount; i++)
                {
                    double a, b, c;
                    ring.SlotTimes(i, out a, out b, out c);
                    slots.Add("{\"seq\": " + (ulong)ring.SlotSeq(i) + ", \"t_pose\": " + D(a) + ", \"t_render_start\": " + D(b)
                        + ", \"t_render_end\": " + D(c) + "}");
                    offsets.Add(ring.SlotOffset(i).ToString());
                }
                var dst = new byte[ring.SlotSize];
                string reads = "{\"slot2_seq7\": " + Json.Str(ring.TryCopy(7, 2, dst, true).ToString())
                    + ", \"slot0_seq4\": " + Json.Str(ring.TryCopy(4, 0, dst, true).ToString())
                    + ", \"slot0_seq9\": " + Json.Str(ring.TryCopy(9, 0, dst, true).ToString())
                    + ", \"slot3_seq8\": " + Json.Str(ring.TryCopy(8, 3, dst, true).ToString()) + "}";
                Check.Emit("ring", "{\"version_major\": " + ring.VersionMajor + ", \"version_minor\": " + ring.VersionMinor
                    + ", \"generation\": " + ring.Generation + ", \"writer_pid\": " + ring.WriterPid + ", \"state\": " + ring.State
                    + ", \"width\": " + ring.Width + ", \"height\": " + ring.Height + ", \"row_stride\": " + ring.RowStride
                    + ", \"premultiplied\": " + (ring.Premultiplied ? "true" : "false") + ", \"slot_count\": " + ring.SlotCount
                    + ", \"slot_size\": " + ring.SlotSize + ", \"latest_seq\": " + latest + ", \"latest_slot\": " + latestSlot
                    + ", \"stream\": " + Json.Str(ring.Stream) + ", \"slot_offsets\": [" + string.Join(", ", offsets.ToArray())
                    + "], \"slots\": [" + string.Join(", ", slots.ToArray()) + "], \"reads\": " + reads + "}");
            }
        }

        // ---------------------------------------------------------------------------------------------

        static void Live(string framesEp, string controlEp, string stream, int needed, string mode)
        {
            bool shm = mode.StartsWith("shm"); // "shm-quick": no slow-reader checks (they need the ring lapped 3 times)
            using (var frames = FrameClient.Connect(framesEp, stream))
            using (var control = ControlClient.Connect(controlEp))
            {
                ReceiveFrames(frames, needed, shm);
                ControlRoundTrip(frames, control, stream);
                if (mode == "shm") SlowReader(frames, stream);
                Check.Emit("client_stats", Json.Str(frames.Stats.ToString()));
            }
        }

        static FrameRing _ring;

        static void ReceiveFrames(FrameClient frames, int needed, bool shm)
        {
            byte[] pixels = null;
            long lastSeq = 0;
            int got = 0;
            var clock = Stopwatch.StartNew();
            while (got < needed && clock.Elapsed.TotalSeconds < 60)
            {
                FrameInfo h;
                if (!frames.TryGetLatestFrame(ref pixels, out h, 2000)) continue;
                got++;
                Check.That(h.Seq > lastSeq, "seq increases: " + lastSeq + " -> " + h.Seq);
                lastSeq = h.Seq;
                CheckHeader(h, shm);
                Check.Emit("frame", "{\"seq\": " + h.Seq + ", \"sha_flipped\": \"" + Check.Sha256(pixels, (int)h.Size)
                    + "\", \"transport\": " + Json.Str(h.Transport) + ", \"alpha\": " + Json.Str(h.Premultiplied ? "premultiplied" : "straight")
                    + ", \"t_published\": " + h.TPublished.ToString("R", System.Globalization.CultureInfo.InvariantCulture)
                    + ", \"received_at\": " + (DateTime.UtcNow - new DateTime(1970, 1, 1)).TotalSeconds.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "}");
            }
            Check.Equal(needed, got, "frames received within 60 s");
        }

        static void CheckHeader(FrameInfo h, bool shm)
        {
            Check.Equal(1, FrameInfo.ProtocolMajor, "proto");
            Check.Equal(512, h.Width, "width");
            Check.Equal(512, h.Height, "height");
            Check.Equal(512 * 4, h.Stride, "stride");
            Check.Equal("rgba8", h.Format, "format");
            Check.Equal("srgb", h.ColorSpace, "color_space");
            Check.Equal((long)512 * 512 * 4, h.Size, "size");
            Check.Equal(shm ? "shm" : "inline", h.Transport, "transport");
            Check.That(h.Pose != null && h.Pose.Length == 45, "pose: 45 parameters (protocol 1.1)");
            Check.That(h.TRenderStart <= h.TRenderEnd && h.TRenderEnd <= h.TPublished, "t_render_start <= t_render_end <= t_published");
            Check.That(Math.Abs(h.TPublished - (DateTime.UtcNow - new DateTime(1970, 1, 1)).TotalSeconds) < 30, "t_published is wall-clock seconds");
            Check.That(h.PoseSource == "idle" || h.PoseSource == "control" || h.PoseSource.StartsWith("tracker:"), "pose_source '" + h.PoseSource + "'");
            Check.That(h.RowsFlipped, "rows flipped for Unity");
            if (!shm)
            {
                Check.That(h.Path == null && h.Slot == -1, "inline header has no path/slot");
                return;
            }
            if (_ring == null || _ring.Generation != (ulong)h.Generation) _ring = FrameRing.Open(h.Path);
            string file = Path.GetFileName(h.Path);
            Check.Equal("tha4bridge-" + _ring.WriterPid + "-" + h.Stream + ".ring", file, "ring file name");
            Check.Equal((ulong)h.Generation, _ring.Generation, "generation matches the ring");
            Check.Equal(h.Stream, _ring.Stream, "ring stream name");
            Check.That(_ring.SlotCount >= 3, "slot_count >= 3");
            Check.That(h.Slot >= 0 && h.Slot < _ring.SlotCount, "slot in range");
            Check.Equal(_ring.SlotOffset(h.Slot), h.Offset, "offset = first_slot_offset + slot * slot_stride");
            Check.Equal(0L, h.Offset % 4096, "slot offset is page aligned");
            Check.Equal(h.Premultiplied, _ring.Premultiplied, "alpha mode matches the ring");
            Check.Equal(1, _ring.State, "ring state live");
        }

        // ---------------------------------------------------------------------------------------------

        static FrameInfo WaitFrame(FrameClient frames, ref byte[] pixels, Func<FrameInfo, bool> want, double seconds)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                FrameInfo h;
                if (frames.TryGetLatestFrame(ref pixels, out h, 500) && want(h)) return h;
            }
            return null;
        }

        static int CountDifferentBytes(byte[] a, byte[] b, int n)
        {
            int d = 0;
            for (int i = 0; i < n; i++) if (a[i] != b[i]) d++;
            return d;
        }

        static void ControlRoundTrip(FrameClient frames, ControlClient control, string stream)
        {
            var hello = control.Hello("csharp-tests");
            Check.Equal(1L, (long)hello["proto"], "hello proto");
            var names = hello["parameter_names"] as List<object>;
            Check.That(names != null && names.Count == Tha4Parameters.Count, "hello lists 45 parameter names");
            for (int i = 0; names != null && i < names.Count; i++)
                Check.Equal(Tha4Parameters.Names[i], (string)names[i], "parameter " + i);

            // A neutral, non-breathing pose: after this, frames change only when we change the pose.
            var neutral = new Dictionary<string, float> { { "breathing", 0f } };
            var r = control.SetPose(stream, neutral, 30.0, true);
            Check.Equal(1L, (long)r["applied"], "set_pose applied");
            byte[] before = null, again = null, after = null;
            FrameInfo b = WaitFrame(frames, ref before, h => h.PoseSource == "control", 15);
            Check.That(b != null, "a frame rendered from the control pose arrives");
            FrameInfo b2 = WaitFrame(frames, ref again, h => b != null && h.Seq > b.Seq, 15);
            Check.That(b2 != null, "the idle re-render of the same pose arrives");
            if (b == null || b2 == null) return;
            Check.Equal(0, CountDifferentBytes(before, again, (int)b.Size), "same pose renders the same bytes");

            var expression = new Dictionary<string, float> { { "mouth_aaa", 1f }, { "eye_wink_left", 1f }, { "eye_wink_right", 1f } };
            long setAt = b2.Seq;
            r = control.SetPose(stream, expression, 30.0);
            Check.Equal(3L, (long)r["applied"], "set_pose applied 3");
            var pose = control.GetPose(stream);
            Check.Equal(1f, pose["mouth_aaa"], "get_pose mouth_aaa");
            Check.Equal(0f, pose["breathing"], "get_pose keeps breathing from the earlier set_pose");
            // The first frame whose bytes differ from the neutral one must come soon after set_pose.
            byte[] scratch = null;
            FrameInfo a = WaitFrame(frames, ref scratch, h => h.Seq > setAt && CountDifferentBytes(before, scratch, (int)h.Size) > 0, 15);
            Check.That(a != null, "the frame changes after set_pose");
            if (a != null)
            {
                after = scratch;
                int diff = CountDifferentBytes(before, after, (int)a.Size);
                Check.That(diff > 1000, "the expression changes many bytes (" + diff + ")");
                Check.Emit("expression_frame", "{\"seq\": " + a.Seq + ", \"changed_bytes\": " + diff + ", \"sha_flipped\": \"" + Check.Sha256(after, (int)a.Size) + "\"}");
            }

            try
            {
                control.SetPose(stream, new Dictionary<string, float> { { "no_such_parameter", 1f } }, 1.0);
                Check.That(false, "an unknown parameter is refused");
            }
            catch (ControlException e)
            {
                Check.Equal("bad_pose", e.Code, "unknown parameter -> bad_pose");
            }
            var stats = control.Stats();
            var streams = stats["streams"] as Dictionary<object, object>;
            Check.That(streams != null && streams.ContainsKey(stream), "stats lists the stream");
            var publisher = stats["publisher"] as Dictionary<object, object>;
            long subs;
            Check.That(publisher != null && MsgPack.TryGetLong(publisher["subscribers"], out subs) && subs >= 1, "stats counts our subscription");
            control.Release(stream);
            var released = control.Request(new Dictionary<string, object> { { "cmd", "get_pose" }, { "stream", stream } });
            Check.That(released["hold_remaining"] == null, "release ends the hold");
        }

        // ---------------------------------------------------------------------------------------------

        static void WaitUntilLapped(FrameRing ring, long seq)
        {
            var clock = Stopwatch.StartNew();
            long latest;
            int slot;
            do
            {
                Thread.Sleep(20);
                ring.GetLatest(out latest, out slot);
            } while (latest < seq + ring.SlotCount && clock.Elapsed.TotalSeconds < 20);
            Check.That(latest >= seq + ring.SlotCount, "the daemon laps the ring while the reader is slow");
        }

        static void SlowReader(FrameClient frames, string stream)
        {
            FrameRing ring = _ring;
            var dst = new byte[ring.SlotSize];
            long seq;
            int slot;

            // A reader that is fast enough gets clean copies.
            int ok = 0;
            for (int i = 0; i < 5; i++)
            {
                ring.GetLatest(out seq, out slot);
                if (ring.TryCopy(seq, slot, dst, true) == SlotRead.Ok) ok++;
                Thread.Sleep(30);
            }
            Check.That(ok >= 4, "prompt copies succeed (" + ok + "/5)");

            // Too late: the slot was reused before the copy started.
            ring.GetLatest(out seq, out slot);
            WaitUntilLapped(ring, seq);
            SlotRead late = ring.TryCopy(seq, slot, dst, true);
            Check.Equal(SlotRead.Overwritten, late, "a lapped slot is reported overwritten");

            // Too slow: the slot is reused while the copy is halfway.
            ring.GetLatest(out seq, out slot);
            long s = seq;
            ring.MidCopyHook = () => WaitUntilLapped(ring, s);
            SlotRead slow = ring.TryCopy(seq, slot, dst, true);
            ring.MidCopyHook = null;
            Check.Equal(SlotRead.Torn, slow, "a copy overtaken by the writer is reported torn");
            Check.Emit("slow_reader", "{\"late\": " + Json.Str(late.ToString()) + ", \"slow\": " + Json.Str(slow.ToString()) + "}");

            // The same through FrameClient: a torn copy is counted and never handed out.
            using (var slowClient = FrameClient.Connect(frames.Endpoint, stream))
            {
                slowClient.MidCopyHook = () => { long l; int sl; ring.GetLatest(out l, out sl); long start = l; WaitUntilLapped(ring, start); };
                byte[] px = null;
                FrameInfo h;
                bool delivered = slowClient.TryGetLatestFrame(ref px, out h, 2000);
                Check.That(!delivered, "FrameClient does not deliver a torn frame");
                Check.That(slowClient.Stats.Torn >= 1, "FrameClient counts torn copies (" + slowClient.Stats + ")");
                slowClient.MidCopyHook = null;
            }
        }
    }
}
