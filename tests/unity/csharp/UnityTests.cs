// Runs the package's MonoBehaviours (compiled against tests/unity/csharp/UnityStubs.cs) against a real daemon,
// calling their Unity messages the way the engine would: OnEnable, Update per frame, OnDisable, OnDestroy.
//   receiver FRAMES CONTROL STREAM   Tha4FrameReceiver shows frames; Tha4Expression drives the pose;
//                                    both stop promptly on disable.
//   defaults CONTROL FRAMES          a fresh component's (and the sample's) endpoints are the daemon's
//                                    defaults, as tha4bridge/defaults.py states them.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Reflection;
using System.Threading;
using UnityEngine;
using UnityEngine.UI;
using Tha4Bridge.Unity;
using Tha4Bridge.Samples;

namespace Tha4Bridge.Tests
{
    static class UnityTests
    {
        static int Main(string[] args)
        {
            try
            {
                if (args.Length == 4 && args[0] == "receiver") Receiver(args[1], args[2], args[3]);
                else if (args.Length == 3 && args[0] == "defaults") Defaults(args[1], args[2]);
                else
                {
                    Console.Error.WriteLine("usage: receiver FRAMES CONTROL STREAM | defaults CONTROL FRAMES");
                    return 2;
                }
            }
            catch (Exception e)
            {
                Check.That(false, "unexpected exception: " + e);
            }
            foreach (string m in UnityEngine.Debug.Messages) Check.Emit("unity_log", Json.Str(m));
            return Check.Finish();
        }

        // Unity calls these private methods by name; so do we.
        static void Send(object component, string message)
        {
            MethodInfo m = component.GetType().GetMethod(message, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);
            if (m != null) m.Invoke(component, null);
        }

        // What a user gets on adding a component in the editor: no field set, no Unity message sent.
        static void Defaults(string control, string frames)
        {
            var go = new GameObject("THA4");
            Check.Equal(control, Tha4Endpoints.Control, "Tha4Endpoints.Control");
            Check.Equal(frames, Tha4Endpoints.Frames, "Tha4Endpoints.Frames");
            Check.Equal(frames, go.AddComponent<Tha4FrameReceiver>().framesEndpoint, "Tha4FrameReceiver.framesEndpoint");
            Check.Equal(control, go.AddComponent<Tha4Expression>().controlEndpoint, "Tha4Expression.controlEndpoint");
            Check.Equal(control, go.AddComponent<Tha4Mood>().controlEndpoint, "Tha4Mood.controlEndpoint");
            var viewer = go.AddComponent<Tha4BasicViewer>();
            Check.Equal(frames, viewer.framesEndpoint, "Tha4BasicViewer.framesEndpoint");
            Check.Equal(control, viewer.controlEndpoint, "Tha4BasicViewer.controlEndpoint");
        }

        static void Receiver(string framesEp, string controlEp, string stream)
        {
            var go = new GameObject("THA4", typeof(RectTransform), typeof(RawImage));
            var image = go.GetComponent<RawImage>();
            var receiver = go.AddComponent<Tha4FrameReceiver>();
            receiver.framesEndpoint = framesEp;
            receiver.stream = stream;
            receiver.targetRawImage = image;
            var expression = go.AddComponent<Tha4Expression>();
            expression.controlEndpoint = controlEp;
            expression.stream = stream;
            expression.holdSeconds = 30f;
            Send(expression, "Reset");
            Check.That(expression.channels.Count > 0, "Reset() fills default channels");

            int shown = 0;
            receiver.FrameShown += (tex, info) =>
            {
                shown++;
                Check.Emit("shown", "{\"seq\": " + info.Seq + ", \"sha_flipped\": \"" + Check.Sha256(tex.LastUpload, tex.LastUpload.Length) + "\"}");
            };
            Send(receiver, "OnEnable");
            Send(expression, "OnEnable");

            // A 60 Hz "engine loop".
            var clock = Stopwatch.StartNew();
            while (shown < 3 && clock.Elapsed.TotalSeconds < 60)
            {
                Send(receiver, "Update");
                Send(expression, "Update");
                Thread.Sleep(16);
            }
            Check.That(shown >= 3, "three frames shown within 60 s (" + shown + ")");
            Check.That(receiver.FrameTexture != null && image.texture == receiver.FrameTexture, "the RawImage shows the frame texture");
            Check.That(receiver.FrameTexture != null && receiver.FrameTexture.width == 512 && receiver.FrameTexture.height == 512, "texture is 512x512");
            Material m = image.material;
            Check.That(m != null, "the RawImage got the frame material");
            if (m != null && receiver.LastFrame != null)
            {
                float blend;
                m.Floats.TryGetValue(Shader.PropertyToID("_SrcBlend"), out blend);
                float expected = receiver.LastFrame.Premultiplied ? (float)UnityEngine.Rendering.BlendMode.One : (float)UnityEngine.Rendering.BlendMode.SrcAlpha;
                Check.Equal(expected, blend, "_SrcBlend matches the frame's alpha mode");
            }

            // Expression: game code sets a parameter; the daemon must report it.
            expression.Set("mouth_aaa", 0.75f);
            expression.Set("eye_wink_left", 2f); // clamped to 1 before sending
            float mouth = -1f, wink = -1f;
            using (var control = ControlClient.Connect(controlEp))
            {
                clock.Restart();
                while (clock.Elapsed.TotalSeconds < 10)
                {
                    Send(receiver, "Update");
                    Send(expression, "Update");
                    Thread.Sleep(16);
                    var pose = control.GetPose(stream);
                    mouth = pose["mouth_aaa"];
                    wink = pose["eye_wink_left"];
                    if (Math.Abs(mouth - 0.75f) < 1e-6 && wink == 1f) break;
                }
                Check.That(Math.Abs(mouth - 0.75f) < 1e-6, "Tha4Expression set mouth_aaa (daemon has " + mouth + ")");
                Check.Equal(1f, wink, "values are clamped to the parameter range");
                try
                {
                    expression.Set("not_a_parameter", 1f);
                    Check.That(false, "Set() refuses unknown names");
                }
                catch (ArgumentException) { }

                // Clean shutdown: both threads stop at once, and the hold is released.
                clock.Restart();
                Send(expression, "OnDisable");
                Send(receiver, "OnDisable");
                double stopMs = clock.Elapsed.TotalMilliseconds;
                Check.That(stopMs < 1500, "OnDisable returns promptly (" + stopMs.ToString("F0") + " ms)");
                Check.Emit("shutdown_ms", stopMs.ToString("F1", System.Globalization.CultureInfo.InvariantCulture));
                var reply = control.Request(new Dictionary<string, object> { { "cmd", "get_pose" }, { "stream", stream } });
                Check.That(reply["hold_remaining"] == null, "disabling Tha4Expression releases the hold");
            }
            Send(receiver, "OnDestroy");

            // Second Play: enabling again works (no leaked sockets or threads in the way).
            int before = shown;
            Send(receiver, "OnEnable");
            clock.Restart();
            while (shown == before && clock.Elapsed.TotalSeconds < 30)
            {
                Send(receiver, "Update");
                Thread.Sleep(16);
            }
            Check.That(shown > before, "a second enable shows frames again");
            Send(receiver, "OnDisable");
        }
    }
}
