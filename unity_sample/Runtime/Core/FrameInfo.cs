// The per-frame header the daemon sends with every frame (protocols/frames.md §1.1), decoded.
using System;
using System.Collections.Generic;

namespace Tha4Bridge
{
    public sealed class FrameInfo
    {
        public const int ProtocolMajor = 1;

        public string Stream;
        public long Seq;
        public long Generation;
        public int Width, Height, Stride;
        public string Format;
        /// <summary>True when RGB is premultiplied by alpha: blend with One, OneMinusSrcAlpha.</summary>
        public bool Premultiplied;
        public string ColorSpace;
        /// <summary>"shm" or "inline".</summary>
        public string Transport;
        public long Size;
        /// <summary>shm only: the ring file, the slot and the byte offset of the slot's pixels.</summary>
        public string Path;
        public int Slot = -1;
        public long Offset = -1;
        public double TPose, TRenderStart, TRenderEnd, TPublished;
        public string PoseSource;
        /// <summary>The 45 THA4 parameters this frame shows, in protocol order (protocol 1.1+; null before).</summary>
        public float[] Pose;
        public int ProtoMinor;
        /// <summary>Where the frame lies in the whole frame (protocol 1.2+, a stream served with --region): its
        /// left column and top row, and the whole frame's size. A whole frame: 0, 0, Width, Height.</summary>
        public int RegionX, RegionY, FullWidth, FullHeight;
        public bool IsCrop { get { return RegionX != 0 || RegionY != 0 || FullWidth != Width || FullHeight != Height; } }
        /// <summary>True when the rows were flipped bottom-up during the copy (Unity's texture order).</summary>
        public bool RowsFlipped;

        public FrameInfo Clone() { return (FrameInfo)MemberwiseClone(); }

        /// <summary>Decodes a msgpack header. Throws FormatException naming the missing or ill-typed key.</summary>
        public static FrameInfo Parse(byte[] data, int offset, int count)
        {
            var map = MsgPack.Unpack(data, offset, count) as Dictionary<object, object>;
            if (map == null) throw new FormatException("frame header is not a msgpack map");
            long proto = Long(map, "proto");
            if (proto != ProtocolMajor)
                throw new FormatException("frame header speaks frames protocol " + proto + ".x, this client speaks " + ProtocolMajor + ".x");
            var h = new FrameInfo();
            h.ProtoMinor = (int)OptLong(map, "proto_minor", 0);
            h.Stream = Str(map, "stream");
            h.Seq = Long(map, "seq");
            h.Generation = Long(map, "generation");
            h.Width = (int)Long(map, "width");
            h.Height = (int)Long(map, "height");
            h.Stride = (int)Long(map, "stride");
            h.Format = Str(map, "format");
            h.Premultiplied = Str(map, "alpha") == "premultiplied";
            h.ColorSpace = OptStr(map, "color_space", "srgb");
            h.Transport = Str(map, "transport");
            h.Size = Long(map, "size");
            if (h.Format != "rgba8") throw new FormatException("frame format '" + h.Format + "' is not rgba8");
            if (h.Width <= 0 || h.Height <= 0 || h.Width > 16384 || h.Height > 16384 || h.Stride < h.Width * 4
                || h.Size != (long)h.Height * h.Stride)
                throw new FormatException("frame header has inconsistent width/height/stride/size");
            if (h.Transport == "shm")
            {
                h.Path = Str(map, "path");
                h.Slot = (int)Long(map, "slot");
                h.Offset = Long(map, "offset");
            }
            else if (h.Transport != "inline")
                throw new FormatException("frame transport '" + h.Transport + "' is neither shm nor inline");
            h.TPose = OptDouble(map, "t_pose");
            h.TRenderStart = OptDouble(map, "t_render_start");
            h.TRenderEnd = OptDouble(map, "t_render_end");
            h.TPublished = OptDouble(map, "t_published");
            h.PoseSource = OptStr(map, "pose_source", "");
            h.Pose = OptFloats(map, "pose");
            var region = OptFloats(map, "region");  // [x, y, w, h]; w, h equal width, height
            if (region != null && region.Length == 4) { h.RegionX = (int)region[0]; h.RegionY = (int)region[1]; }
            h.FullWidth = (int)OptLong(map, "full_width", h.Width);
            h.FullHeight = (int)OptLong(map, "full_height", h.Height);
            return h;
        }

        static object Get(Dictionary<object, object> map, string key)
        {
            object v;
            if (!map.TryGetValue(key, out v)) throw new FormatException("frame header lacks '" + key + "'");
            return v;
        }

        static long Long(Dictionary<object, object> map, string key)
        {
            long v;
            if (!MsgPack.TryGetLong(Get(map, key), out v)) throw new FormatException("frame header '" + key + "' is not an integer");
            return v;
        }

        static long OptLong(Dictionary<object, object> map, string key, long fallback)
        {
            object o;
            long v;
            return map.TryGetValue(key, out o) && MsgPack.TryGetLong(o, out v) ? v : fallback;
        }

        static string Str(Dictionary<object, object> map, string key)
        {
            var s = Get(map, key) as string;
            if (s == null) throw new FormatException("frame header '" + key + "' is not a string");
            return s;
        }

        static string OptStr(Dictionary<object, object> map, string key, string fallback)
        {
            object o;
            return map.TryGetValue(key, out o) && o is string ? (string)o : fallback;
        }

        static float[] OptFloats(Dictionary<object, object> map, string key)
        {
            object o;
            var list = map.TryGetValue(key, out o) ? o as List<object> : null;
            if (list == null) return null;
            var values = new float[list.Count];
            for (int i = 0; i < values.Length; i++)
            {
                double v;
                if (!MsgPack.TryGetDouble(list[i], out v)) return null;  // ill-typed: treated as absent
                values[i] = (float)v;
            }
            return values;
        }

        static double OptDouble(Dictionary<object, object> map, string key)
        {
            object o;
            double v;
            return map.TryGetValue(key, out o) && MsgPack.TryGetDouble(o, out v) ? v : 0.0;
        }
    }
}
