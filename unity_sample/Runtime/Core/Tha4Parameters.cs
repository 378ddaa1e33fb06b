// The 45 THA4 pose parameters in pose-vector order, with their ranges: a copy of tha4bridge/pose.py that
// tests/unity/test_client.py::test_csharp_parameter_names_match_python checks against the Python source, so the two cannot drift apart.
using System;
using System.Collections.Generic;

namespace Tha4Bridge
{
    public static class Tha4Parameters
    {
        public static readonly string[] Names =
        {
            "eyebrow_troubled_left",
            "eyebrow_troubled_right",
            "eyebrow_angry_left",
            "eyebrow_angry_right",
            "eyebrow_lowered_left",
            "eyebrow_lowered_right",
            "eyebrow_raised_left",
            "eyebrow_raised_right",
            "eyebrow_happy_left",
            "eyebrow_happy_right",
            "eyebrow_serious_left",
            "eyebrow_serious_right",
            "eye_wink_left",
            "eye_wink_right",
            "eye_happy_wink_left",
            "eye_happy_wink_right",
            "eye_surprised_left",
            "eye_surprised_right",
            "eye_relaxed_left",
            "eye_relaxed_right",
            "eye_unimpressed_left",
            "eye_unimpressed_right",
            "eye_raised_lower_eyelid_left",
            "eye_raised_lower_eyelid_right",
            "iris_small_left",
            "iris_small_right",
            "mouth_aaa",
            "mouth_iii",
            "mouth_uuu",
            "mouth_eee",
            "mouth_ooo",
            "mouth_delta",
            "mouth_lowered_corner_left",
            "mouth_lowered_corner_right",
            "mouth_raised_corner_left",
            "mouth_raised_corner_right",
            "mouth_smirk",
            "iris_rotation_x",
            "iris_rotation_y",
            "head_x",
            "head_y",
            "neck_z",
            "body_y",
            "body_z",
            "breathing"
        };

        // Rotations are signed [-1, 1]; every other parameter is a [0, 1] intensity.
        static readonly HashSet<string> Signed = new HashSet<string>
        {
            "iris_rotation_x", "iris_rotation_y", "head_x", "head_y", "neck_z", "body_y", "body_z"
        };

        static readonly Dictionary<string, int> IndexOf = BuildIndex();

        static Dictionary<string, int> BuildIndex()
        {
            var d = new Dictionary<string, int>();
            for (int i = 0; i < Names.Length; i++) d[Names[i]] = i;
            return d;
        }

        public static int Count { get { return Names.Length; } }

        public static bool IsKnown(string name) { return name != null && IndexOf.ContainsKey(name); }

        /// <summary>Position in the pose vector, or -1 for an unknown name.</summary>
        public static int Index(string name)
        {
            int i;
            return name != null && IndexOf.TryGetValue(name, out i) ? i : -1;
        }

        public static float Min(string name) { return Signed.Contains(name) ? -1f : 0f; }

        public static float Max(string name) { return 1f; }

        /// <summary>Clamps into the parameter's range; NaN/infinity become 0, as the daemon does.</summary>
        public static float Clamp(string name, float value)
        {
            if (float.IsNaN(value) || float.IsInfinity(value)) return 0f;
            return Math.Max(Min(name), Math.Min(Max(name), value));
        }
    }
}
