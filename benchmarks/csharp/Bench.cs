// C# side of benchmarks/bench_csharp.py: how fast the package's client gets the newest 512x512 RGBA frame.
//   copy RING_PATH N            per-frame cost of FrameRing.TryCopy with the row flip, against two baselines
//                               measured here: the same copy without flip, and MemoryMappedViewAccessor.ReadArray
//   sustained ENDPOINT SECONDS  FrameClient.TryGetLatestFrame in a loop while the writer publishes unthrottled
// Prints one JSON object per line.
using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Collections.Generic;
using Tha4Bridge;

static class Bench
{
    static string F(double v) { return v.ToString("0.###", CultureInfo.InvariantCulture); }

    static int Main(string[] args)
    {
        if (args.Length == 3 && args[0] == "copy") return Copy(args[1], int.Parse(args[2]));
        if (args.Length == 3 && args[0] == "sustained") return Sustained(args[1], double.Parse(args[2], CultureInfo.InvariantCulture));
        Console.Error.WriteLine("usage: copy RING N | sustained ENDPOINT SECONDS");
        return 2;
    }

    static double TimeCopies(FrameRing ring, byte[] dst, bool flip, int n, out int ok)
    {
        ok = 0;
        // The ring is idle during this measurement (the writer paused), so every slot holds a known frame;
        // rotating over the slots reads 4 MiB like a live reader would.
        var seqs = new long[ring.SlotCount];
        for (int s = 0; s < ring.SlotCount; s++) seqs[s] = ring.SlotSeq(s);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            int slot = i % ring.SlotCount;
            if (ring.TryCopy(seqs[slot], slot, dst, flip) == SlotRead.Ok) ok++;
        }
        return sw.Elapsed.TotalMilliseconds * 1000.0 / n;
    }

    static int Copy(string path, int n)
    {
        using (var ring = FrameRing.Open(path))
        {
            var dst = new byte[ring.SlotSize];
            int ok;
            TimeCopies(ring, dst, true, 50, out ok); // warm up the JIT and the caches
            TimeCopies(ring, dst, false, 50, out ok);
            // Interleave the two variants in rounds so drift on a shared machine hits both alike.
            double plainUs = 0, flipUs = 0;
            int okPlain = 0, okFlip = 0;
            const int Rounds = 5;
            for (int r = 0; r < Rounds; r++)
            {
                plainUs += TimeCopies(ring, dst, false, n / Rounds, out ok) / Rounds;
                okPlain += ok;
                flipUs += TimeCopies(ring, dst, true, n / Rounds, out ok) / Rounds;
                okFlip += ok;
            }

            // ReadArray: the obvious managed API, ~370x slower on Mono (facts); a few iterations suffice.
            double readArrayUs;
            int m = Math.Max(3, n / 200);
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            using (var map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, false))
            using (var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read))
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < m; i++)
                    view.ReadArray(ring.SlotOffset(i % ring.SlotCount), dst, 0, (int)ring.SlotSize);
                readArrayUs = sw.Elapsed.TotalMilliseconds * 1000.0 / m;
            }
            Console.WriteLine("{\"copy\": {\"n\": " + (n / Rounds) * Rounds + ", \"ok_plain\": " + okPlain + ", \"ok_flip\": " + okFlip
                + ", \"plain_us\": " + F(plainUs) + ", \"flip_us\": " + F(flipUs) + ", \"read_array_us\": " + F(readArrayUs)
                + ", \"read_array_n\": " + m + "}}");
        }
        return 0;
    }

    static int Sustained(string endpoint, double seconds)
    {
        using (var client = FrameClient.Connect(endpoint))
        {
            byte[] pixels = null;
            FrameInfo info;
            // First frame (connection, subscription, ring mapping) is not part of the steady state.
            if (!client.TryGetLatestFrame(ref pixels, out info, 10000))
            {
                Console.WriteLine("{\"error\": \"no frame within 10 s: " + client.LastError + "\"}");
                return 1;
            }
            string transport = info.Transport;
            var before = client.Stats.Clone();
            var latencies = new List<double>();
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            int delivered = 0;
            while (sw.Elapsed.TotalSeconds < seconds)
            {
                if (!client.TryGetLatestFrame(ref pixels, out info, 100)) continue;
                delivered++;
                double now = (DateTime.UtcNow - new DateTime(1970, 1, 1)).TotalSeconds;
                if (info.TPublished > 0) latencies.Add((now - info.TPublished) * 1000.0);
            }
            double elapsed = sw.Elapsed.TotalSeconds;
            double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds;
            latencies.Sort();
            double p50 = latencies.Count > 0 ? latencies[latencies.Count / 2] : -1;
            double p99 = latencies.Count > 0 ? latencies[(int)(latencies.Count * 0.99)] : -1;
            var st = client.Stats;
            Console.WriteLine("{\"sustained\": {\"transport\": \"" + transport + "\", \"seconds\": " + F(elapsed)
                + ", \"delivered\": " + delivered + ", \"fps\": " + F(delivered / elapsed)
                + ", \"client_cpu_us_per_frame\": " + F(delivered > 0 ? cpuMs * 1000.0 / delivered : -1)
                + ", \"notifications\": " + (st.Notifications - before.Notifications)
                + ", \"skipped\": " + (st.Skipped - before.Skipped)
                + ", \"torn\": " + (st.Torn - before.Torn) + ", \"overwritten\": " + (st.Overwritten - before.Overwritten)
                + ", \"latency_ms_p50\": " + F(p50) + ", \"latency_ms_p99\": " + F(p99) + "}}");
        }
        return 0;
    }
}
