// SetExpression and Inject from the package's ControlClient against a real daemon (tests/unity/test_layers.py).
// Test-only.
using System;
using System.Collections.Generic;
using System.Threading;
using Tha4Bridge;

namespace Tha4Bridge.Tests
{
    static class LayerTests
    {
        static int Main(string[] args)
        {
            try
            {
                using (var c = ControlClient.Connect(args[0]))
                {
                    var lib = c.Expressions();
                    Check.That(lib.ContainsKey("joy") && lib.ContainsKey("surprise"), "the library lists joy and surprise");
                    var joy = lib["joy"] as Dictionary<object, object>;
                    double corner;
                    MsgPack.TryGetDouble(joy["mouth_raised_corner_left"], out corner);

                    c.SetExpression(null, "joy", 0.5, 0.0);
                    var pose = c.GetPose(null);
                    Check.That(Math.Abs(pose["mouth_raised_corner_left"] - 0.5 * corner) < 1e-4,
                               "joy at 0.5 shows half its mouth corner: " + pose["mouth_raised_corner_left"]);

                    c.Inject(null, "unity", new Dictionary<string, float> { { "mouth_smirk", 1.0f } }, 0.5, "set", 0.4);
                    c.Inject(null, "unity-add", new Dictionary<string, float> { { "mouth_smirk", 0.2f } }, 1.0, "add", 0);
                    pose = c.GetPose(null);
                    Check.That(Math.Abs(pose["mouth_smirk"] - 0.7) < 1e-4, "set 1.0 x 0.5 then add 0.2: " + pose["mouth_smirk"]);
                    Thread.Sleep(600);  // the set source lapsed; the add source (timeout 0) stays
                    pose = c.GetPose(null);
                    Check.That(Math.Abs(pose["mouth_smirk"] - 0.2) < 1e-4, "after the lapse only the add source: " + pose["mouth_smirk"]);
                    c.ReleaseSource(null, "unity-add");
                    pose = c.GetPose(null);
                    Check.That(pose["mouth_smirk"] == 0f, "released: " + pose["mouth_smirk"]);

                    try
                    {
                        c.SetExpression(null, "no-such-face");
                        Check.That(false, "an unknown expression is refused");
                    }
                    catch (ControlException e) { Check.Equal("bad_request", e.Code, "refusal code"); }
                    try
                    {
                        c.Inject(null, "unity", new Dictionary<string, float> { { "mouth_grin", 1f } });
                        Check.That(false, "an unknown parameter is refused");
                    }
                    catch (ControlException e) { Check.Equal("bad_pose", e.Code, "refusal code"); }
                    c.SetExpression(null, "neutral", 1.0, 0.0);
                }
            }
            catch (Exception e)
            {
                Check.That(false, "unexpected " + e.GetType().Name + ": " + e.Message);
            }
            return Check.Finish();
        }
    }
}
