// Shared helpers for the C# test programs: assertions that report and count instead of stopping, and
// one-line JSON output that pytest parses. Test-only.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Tha4Bridge.Tests
{
    static class Check
    {
        public static int Failures;

        public static void That(bool condition, string what)
        {
            if (condition) return;
            Failures++;
            Emit("fail", Json.Str(what));
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            That(EqualityComparer<T>.Default.Equals(expected, actual), what + ": expected " + expected + ", got " + actual);
        }

        /// <summary>Prints {"kind": body} on one line; body is already JSON.</summary>
        public static void Emit(string kind, string body)
        {
            Console.Out.WriteLine("{" + Json.Str(kind) + ": " + body + "}");
            Console.Out.Flush();
        }

        public static string Sha256(byte[] data, int count)
        {
            using (var sha = SHA256.Create())
            {
                byte[] h = sha.ComputeHash(data, 0, count);
                var sb = new StringBuilder(64);
                foreach (byte b in h) sb.Append(b.ToString("x2"));
                return sb.ToString();
            }
        }

        public static int Finish()
        {
            Emit("done", "{\"failures\": " + Failures + "}");
            return Failures == 0 ? 0 : 1;
        }
    }

    /// <summary>Canonical JSON of decoded msgpack values; tests/unity/test_client.py builds the same form from Python.</summary>
    static class Json
    {
        public static string Str(string s)
        {
            var sb = new StringBuilder(s.Length + 2);
            sb.Append('"');
            foreach (char c in s)
            {
                if (c == '"') sb.Append("\\\"");
                else if (c == '\\') sb.Append("\\\\");
                else if (c < 0x20 || c > 0x7e) sb.Append("\\u").Append(((int)c).ToString("x4"));
                else sb.Append(c);
            }
            sb.Append('"');
            return sb.ToString();
        }

        static string Float(double d)
        {
            if (double.IsNaN(d)) return "{\"$float\": \"nan\"}";
            if (double.IsPositiveInfinity(d)) return "{\"$float\": \"inf\"}";
            if (double.IsNegativeInfinity(d)) return "{\"$float\": \"-inf\"}";
            string s = d.ToString("R", CultureInfo.InvariantCulture);
            if (s.IndexOf('.') < 0 && s.IndexOf('E') < 0) s += ".0";
            return s;
        }

        public static string Of(object v)
        {
            if (v == null) return "null";
            if (v is bool) return (bool)v ? "true" : "false";
            if (v is long) return ((long)v).ToString(CultureInfo.InvariantCulture);
            if (v is ulong) return ((ulong)v).ToString(CultureInfo.InvariantCulture);
            if (v is int) return ((int)v).ToString(CultureInfo.InvariantCulture);
            if (v is double) return Float((double)v);
            if (v is float) return "{\"$f32\": " + Float((float)v) + "}";
            if (v is string) return Str((string)v);
            if (v is byte[])
            {
                var sb = new StringBuilder();
                foreach (byte b in (byte[])v) sb.Append(b.ToString("x2"));
                return "{\"$bin\": \"" + sb + "\"}";
            }
            var map = v as IDictionary;
            if (map != null)
            {
                var parts = new List<string>();
                foreach (DictionaryEntry e in map) parts.Add("[" + Of(e.Key) + ", " + Of(e.Value) + "]");
                return "{\"$map\": [" + string.Join(", ", parts.ToArray()) + "]}";
            }
            var list = v as IEnumerable;
            if (list != null)
            {
                var parts = new List<string>();
                foreach (object o in list) parts.Add(Of(o));
                return "[" + string.Join(", ", parts.ToArray()) + "]";
            }
            throw new ArgumentException("no JSON form for " + v.GetType());
        }
    }
}
