// MessagePack reader and writer: just what the daemon's headers and control messages use.
// Decoded values are plain .NET objects so callers need no schema classes:
//   nil -> null, bool -> bool, integers -> long (ulong above long.MaxValue), float32 -> float,
//   float64 -> double, str -> string, bin -> byte[], array -> List<object>, map -> Dictionary<object, object>.
// Ext types (incl. timestamps) are not part of the protocol and raise FormatException.
using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Tha4Bridge
{
    public static class MsgPack
    {
        public static object Unpack(byte[] data)
        {
            return Unpack(data, 0, data.Length);
        }

        /// <summary>Decodes exactly one value that must fill data[offset, offset+count).</summary>
        public static object Unpack(byte[] data, int offset, int count)
        {
            var reader = new MsgPackReader(data, offset, count);
            object value = reader.ReadValue();
            if (reader.Position != offset + count)
                throw new FormatException("msgpack: " + (offset + count - reader.Position) + " trailing bytes");
            return value;
        }

        public static byte[] Pack(object value)
        {
            var writer = new MsgPackWriter();
            writer.Write(value);
            return writer.ToArray();
        }

        // Numbers arrive as long, ulong, float or double depending on the sender; these helpers accept any of them.
        public static bool TryGetDouble(object value, out double result)
        {
            if (value is long) { result = (long)value; return true; }
            if (value is double) { result = (double)value; return true; }
            if (value is float) { result = (float)value; return true; }
            if (value is ulong) { result = (ulong)value; return true; }
            if (value is int) { result = (int)value; return true; }
            result = 0;
            return false;
        }

        public static bool TryGetLong(object value, out long result)
        {
            if (value is long) { result = (long)value; return true; }
            if (value is int) { result = (int)value; return true; }
            if (value is ulong && (ulong)value <= long.MaxValue) { result = (long)(ulong)value; return true; }
            result = 0;
            return false;
        }
    }

    public sealed class MsgPackReader
    {
        // Nesting deeper than this is never produced by the daemon; refusing it keeps a hostile message from
        // overflowing the stack.
        const int MaxDepth = 64;
        readonly byte[] _data;
        readonly int _end;
        int _pos;

        public MsgPackReader(byte[] data, int offset, int count)
        {
            if (data == null) throw new ArgumentNullException("data");
            if (offset < 0 || count < 0 || offset + count > data.Length) throw new ArgumentOutOfRangeException("count");
            _data = data;
            _pos = offset;
            _end = offset + count;
        }

        public int Position { get { return _pos; } }

        public object ReadValue()
        {
            return Read(0);
        }

        object Read(int depth)
        {
            if (depth > MaxDepth) throw new FormatException("msgpack: nesting deeper than " + MaxDepth);
            byte b = Byte();
            if (b <= 0x7f) return (long)b;
            if (b >= 0xe0) return (long)(sbyte)b;
            if ((b & 0xf0) == 0x80) return Map(b & 0x0f, depth);
            if ((b & 0xf0) == 0x90) return Array(b & 0x0f, depth);
            if ((b & 0xe0) == 0xa0) return Str(b & 0x1f);
            switch (b)
            {
                case 0xc0: return null;
                case 0xc2: return false;
                case 0xc3: return true;
                case 0xc4: return Bin(Byte());
                case 0xc5: return Bin((long)BigEndian(2));
                case 0xc6: return Bin(Length32());
                case 0xca: return BitConverter.ToSingle(BitConverter.GetBytes((int)BigEndian(4)), 0);
                case 0xcb: return BitConverter.Int64BitsToDouble((long)BigEndian(8));
                case 0xcc: return (long)Byte();
                case 0xcd: return (long)BigEndian(2);
                case 0xce: return (long)BigEndian(4);
                case 0xcf:
                {
                    ulong u = BigEndian(8);
                    if (u > long.MaxValue) return u;
                    return (long)u;
                }
                case 0xd0: return (long)(sbyte)Byte();
                case 0xd1: return (long)(short)BigEndian(2);
                case 0xd2: return (long)(int)BigEndian(4);
                case 0xd3: return (long)BigEndian(8);
                case 0xd9: return Str(Byte());
                case 0xda: return Str((long)BigEndian(2));
                case 0xdb: return Str(Length32());
                case 0xdc: return Array((long)BigEndian(2), depth);
                case 0xdd: return Array(Length32(), depth);
                case 0xde: return Map((long)BigEndian(2), depth);
                case 0xdf: return Map(Length32(), depth);
                case 0xc1: throw new FormatException("msgpack: 0xc1 is never used");
                default: throw new FormatException("msgpack: ext type 0x" + b.ToString("x2") + " is not supported");
            }
        }

        byte Byte()
        {
            if (_pos >= _end) throw new FormatException("msgpack: truncated");
            return _data[_pos++];
        }

        ulong BigEndian(int n)
        {
            Need(n);
            ulong v = 0;
            for (int i = 0; i < n; i++) v = (v << 8) | _data[_pos++];
            return v;
        }

        long Length32()
        {
            return (long)BigEndian(4);
        }

        void Need(long n)
        {
            if (n > _end - _pos) throw new FormatException("msgpack: truncated");
        }

        string Str(long n)
        {
            Need(n);
            string s = Encoding.UTF8.GetString(_data, _pos, (int)n);
            _pos += (int)n;
            return s;
        }

        byte[] Bin(long n)
        {
            Need(n);
            var b = new byte[n];
            Buffer.BlockCopy(_data, _pos, b, 0, (int)n);
            _pos += (int)n;
            return b;
        }

        List<object> Array(long n, int depth)
        {
            Need(n); // every element takes at least one byte; stops huge bogus counts before allocating
            var list = new List<object>((int)n);
            for (long i = 0; i < n; i++) list.Add(Read(depth + 1));
            return list;
        }

        Dictionary<object, object> Map(long n, int depth)
        {
            Need(2 * n);
            var map = new Dictionary<object, object>((int)n);
            for (long i = 0; i < n; i++)
            {
                object key = Read(depth + 1);
                if (key == null) throw new FormatException("msgpack: nil map key");
                if (key is List<object> || key is Dictionary<object, object> || key is byte[])
                    throw new FormatException("msgpack: map keys must be scalars");
                map[key] = Read(depth + 1);
            }
            return map;
        }
    }

    public sealed class MsgPackWriter
    {
        readonly MemoryStream _out = new MemoryStream(256);

        public byte[] ToArray() { return _out.ToArray(); }

        public void Reset() { _out.SetLength(0); }

        /// <summary>Writes null, bool, any integer type, float, double, string, byte[], IDictionary or IEnumerable.</summary>
        public void Write(object value)
        {
            if (value == null) { WriteNil(); return; }
            if (value is bool) { WriteBool((bool)value); return; }
            if (value is string) { WriteString((string)value); return; }
            if (value is float) { WriteFloat32((float)value); return; }
            if (value is double) { WriteFloat64((double)value); return; }
            if (value is ulong) { WriteUInt64((ulong)value); return; }
            if (value is long || value is int || value is short || value is sbyte || value is byte || value is ushort || value is uint)
            {
                WriteInt(Convert.ToInt64(value));
                return;
            }
            if (value is byte[]) { WriteBin((byte[])value); return; }
            var dict = value as IDictionary;
            if (dict != null)
            {
                WriteMapHeader(dict.Count);
                foreach (DictionaryEntry e in dict)
                {
                    Write(e.Key);
                    Write(e.Value);
                }
                return;
            }
            var seq = value as IEnumerable;
            if (seq != null)
            {
                var items = new List<object>();
                foreach (object o in seq) items.Add(o);
                WriteArrayHeader(items.Count);
                foreach (object o in items) Write(o);
                return;
            }
            throw new ArgumentException("msgpack: cannot write " + value.GetType());
        }

        public void WriteNil() { _out.WriteByte(0xc0); }

        public void WriteBool(bool v) { _out.WriteByte(v ? (byte)0xc3 : (byte)0xc2); }

        // Smallest encoding, as msgpack-python does, so the C# and Python writers produce the same bytes.
        public void WriteInt(long v)
        {
            if (v >= 0)
            {
                WriteUInt64((ulong)v);
                return;
            }
            if (v >= -32) _out.WriteByte((byte)(sbyte)v);
            else if (v >= sbyte.MinValue) { _out.WriteByte(0xd0); BigEndian((ulong)v, 1); }
            else if (v >= short.MinValue) { _out.WriteByte(0xd1); BigEndian((ulong)v, 2); }
            else if (v >= int.MinValue) { _out.WriteByte(0xd2); BigEndian((ulong)v, 4); }
            else { _out.WriteByte(0xd3); BigEndian((ulong)v, 8); }
        }

        public void WriteUInt64(ulong v)
        {
            if (v <= 0x7f) _out.WriteByte((byte)v);
            else if (v <= byte.MaxValue) { _out.WriteByte(0xcc); BigEndian(v, 1); }
            else if (v <= ushort.MaxValue) { _out.WriteByte(0xcd); BigEndian(v, 2); }
            else if (v <= uint.MaxValue) { _out.WriteByte(0xce); BigEndian(v, 4); }
            else { _out.WriteByte(0xcf); BigEndian(v, 8); }
        }

        public void WriteFloat32(float v)
        {
            _out.WriteByte(0xca);
            BigEndian((uint)BitConverter.ToInt32(BitConverter.GetBytes(v), 0), 4);
        }

        public void WriteFloat64(double v)
        {
            _out.WriteByte(0xcb);
            BigEndian((ulong)BitConverter.DoubleToInt64Bits(v), 8);
        }

        public void WriteString(string s)
        {
            byte[] b = Encoding.UTF8.GetBytes(s);
            int n = b.Length;
            if (n <= 31) _out.WriteByte((byte)(0xa0 | n));
            else if (n <= byte.MaxValue) { _out.WriteByte(0xd9); BigEndian((ulong)n, 1); }
            else if (n <= ushort.MaxValue) { _out.WriteByte(0xda); BigEndian((ulong)n, 2); }
            else { _out.WriteByte(0xdb); BigEndian((ulong)n, 4); }
            _out.Write(b, 0, n);
        }

        public void WriteBin(byte[] b)
        {
            int n = b.Length;
            if (n <= byte.MaxValue) { _out.WriteByte(0xc4); BigEndian((ulong)n, 1); }
            else if (n <= ushort.MaxValue) { _out.WriteByte(0xc5); BigEndian((ulong)n, 2); }
            else { _out.WriteByte(0xc6); BigEndian((ulong)n, 4); }
            _out.Write(b, 0, n);
        }

        public void WriteArrayHeader(int n)
        {
            if (n <= 15) _out.WriteByte((byte)(0x90 | n));
            else if (n <= ushort.MaxValue) { _out.WriteByte(0xdc); BigEndian((ulong)n, 2); }
            else { _out.WriteByte(0xdd); BigEndian((ulong)n, 4); }
        }

        public void WriteMapHeader(int n)
        {
            if (n <= 15) _out.WriteByte((byte)(0x80 | n));
            else if (n <= ushort.MaxValue) { _out.WriteByte(0xde); BigEndian((ulong)n, 2); }
            else { _out.WriteByte(0xdf); BigEndian((ulong)n, 4); }
        }

        void BigEndian(ulong v, int n)
        {
            for (int i = n - 1; i >= 0; i--) _out.WriteByte((byte)(v >> (8 * i)));
        }
    }
}
