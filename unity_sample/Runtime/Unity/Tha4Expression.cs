// Drives THA4 parameters by name from game code or inspector sliders. Changes are sent to the daemon's
// control socket from a background thread (the newest values win; the main thread never waits on the
// network). While enabled, the component re-sends its values before the hold expires, so it keeps
// overriding the tracker for the parameters it lists; disabling it releases the hold.
using System;
using System.Collections.Generic;
using System.Threading;
using UnityEngine;

namespace Tha4Bridge.Unity
{
    [AddComponentMenu("THA4 Bridge/THA4 Expression")]
    public sealed class Tha4Expression : MonoBehaviour
    {
        [Serializable]
        public class Channel
        {
            [Tooltip("A THA4 parameter name, e.g. mouth_aaa, eye_wink_left, head_x (see README for all 45).")]
            public string parameter = "mouth_aaa";

            [Tooltip("Rotations (iris_rotation_*, head_*, neck_z, body_*) use -1..1; every other parameter 0..1 (values are clamped).")]
            [Range(-1f, 1f)]
            public float value;

            public Channel() { }
            public Channel(string parameter, float value) { this.parameter = parameter; this.value = value; }
        }

        [Tooltip("The daemon's control endpoint (tha4bridge serve --control).")]
        public string controlEndpoint = Tha4Endpoints.Control;

        [Tooltip("Stream (character) to drive. Empty = the only stream; '*' = every stream.")]
        public string stream = "";

        [Tooltip("Seconds each update overrides the tracker. The component refreshes it while enabled; 0 = until disabled.")]
        [Min(0f)]
        public float holdSeconds = 2f;

        [Tooltip("The parameters this component sets. Edit the sliders in Play mode to test; game code calls Set().")]
        public List<Channel> channels = new List<Channel>();

        /// <summary>Last problem talking to the daemon (null when fine); also logged once per distinct message.</summary>
        public string LastProblem { get; private set; }

        readonly object _lock = new object();
        readonly AutoResetEvent _wake = new AutoResetEvent(false);
        Dictionary<string, float> _pending;
        bool _releasePending;
        Thread _thread;
        volatile bool _stop;
        string _problem, _loggedProblem;
        readonly Dictionary<string, float> _lastSent = new Dictionary<string, float>();
        readonly HashSet<string> _warnedNames = new HashSet<string>();
        float _lastSendTime = float.NegativeInfinity;
        int _lastKnownCount = -1;

        void Reset()
        {
            channels = new List<Channel>
            {
                new Channel("mouth_aaa", 0f), new Channel("mouth_iii", 0f), new Channel("mouth_uuu", 0f),
                new Channel("eye_wink_left", 0f), new Channel("eye_wink_right", 0f),
                new Channel("eyebrow_happy_left", 0f), new Channel("eyebrow_happy_right", 0f),
                new Channel("head_x", 0f), new Channel("head_y", 0f), new Channel("neck_z", 0f),
            };
        }

        /// <summary>Sets one parameter (adds a channel for it if needed); sent on the next frame.</summary>
        public void Set(string parameter, float value)
        {
            if (!Tha4Parameters.IsKnown(parameter)) throw new ArgumentException("'" + parameter + "' is not a THA4 parameter name");
            foreach (Channel c in channels)
                if (c.parameter == parameter) { c.value = value; return; }
            channels.Add(new Channel(parameter, value));
        }

        public void SetMany(IDictionary<string, float> values)
        {
            foreach (var kv in values) Set(kv.Key, kv.Value);
        }

        public float Get(string parameter)
        {
            foreach (Channel c in channels)
                if (c.parameter == parameter) return c.value;
            return 0f;
        }

        void OnEnable()
        {
            _stop = false;
            _lastSent.Clear();
            _lastSendTime = float.NegativeInfinity;
            _lastKnownCount = -1;
            string endpoint = controlEndpoint, streamName = stream;
            float hold = holdSeconds;
            _thread = new Thread(() => SendLoop(endpoint, streamName, hold));
            _thread.IsBackground = true;
            _thread.Name = "THA4 expression sender";
            _thread.Start();
        }

        void OnDisable()
        {
            lock (_lock)
            {
                _pending = null;
                _releasePending = true; // give the face back to the tracker
            }
            _stop = true;
            _wake.Set();
            if (_thread != null)
            {
                if (!_thread.Join(1500)) Debug.LogWarning("THA4 expression sender did not stop within 1.5 s");
                _thread = null;
            }
        }

        void Update()
        {
            // Compare against what was last sent without allocating; build a map only when sending.
            int known = 0;
            bool changed = false;
            foreach (Channel c in channels)
            {
                if (!Tha4Parameters.IsKnown(c.parameter))
                {
                    if (_warnedNames.Add(c.parameter ?? ""))
                        Debug.LogWarning("THA4 Expression on " + name + ": '" + c.parameter + "' is not a THA4 parameter name; ignored");
                    continue;
                }
                known++;
                float sent;
                if (!_lastSent.TryGetValue(c.parameter, out sent) || sent != Tha4Parameters.Clamp(c.parameter, c.value)) changed = true;
            }
            if (known != _lastKnownCount) changed = true; // a channel was added or removed
            string problem;
            lock (_lock) problem = _problem;
            // Refresh at half the hold so the override never lapses while the component is enabled, and
            // retry every second after a failed send.
            float sinceSend = Time.unscaledTime - _lastSendTime;
            bool refresh = (holdSeconds > 0f && sinceSend > holdSeconds * 0.5f) || (problem != null && sinceSend > 1f);
            if (known > 0 && (changed || refresh))
            {
                var pose = new Dictionary<string, float>(known);
                foreach (Channel c in channels)
                    if (Tha4Parameters.IsKnown(c.parameter)) pose[c.parameter] = Tha4Parameters.Clamp(c.parameter, c.value);
                lock (_lock) _pending = pose;
                _wake.Set();
                _lastSent.Clear();
                foreach (var kv in pose) _lastSent[kv.Key] = kv.Value;
                _lastSendTime = Time.unscaledTime;
                _lastKnownCount = known;
            }

            LastProblem = problem;
            if (problem != null && problem != _loggedProblem) Debug.LogWarning(problem);
            _loggedProblem = problem;
        }

        void SendLoop(string endpoint, string streamName, float hold)
        {
            ControlClient control = null;
            try
            {
                while (true)
                {
                    _wake.WaitOne(250);
                    Dictionary<string, float> pose;
                    bool release;
                    lock (_lock)
                    {
                        pose = _pending;
                        _pending = null;
                        release = _releasePending;
                        _releasePending = false;
                    }
                    if (pose == null && !release)
                    {
                        if (_stop) return;
                        continue;
                    }
                    try
                    {
                        if (control == null) control = ControlClient.Connect(endpoint, 1000);
                        control.TimeoutMs = 1000;
                        if (pose != null) control.SetPose(streamName, pose, hold);
                        if (release) control.Release(string.IsNullOrEmpty(streamName) ? null : streamName);
                        lock (_lock) _problem = null;
                    }
                    catch (Exception e)
                    {
                        lock (_lock) _problem = "THA4 Expression: " + e.Message;
                        if (control != null) control.Dispose();
                        control = null;
                    }
                    if (_stop) return;
                }
            }
            finally
            {
                if (control != null) control.Dispose();
            }
        }
    }
}
