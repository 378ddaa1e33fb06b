// Named expressions and talking for one character: game code calls Show("joy") or Talk(true); the requests go
// to the daemon's control socket on a background thread (the main thread never waits on the network), the
// newest request of each kind wins. The daemon fades between expressions (protocols/control.md, since 1.2).
using System;
using System.Threading;
using UnityEngine;

namespace Tha4Bridge.Unity
{
    [AddComponentMenu("THA4 Bridge/THA4 Mood")]
    public sealed class Tha4Mood : MonoBehaviour
    {
        [Tooltip("The daemon's control endpoint (tha4bridge serve --control).")]
        public string controlEndpoint = Tha4Endpoints.Control;

        [Tooltip("Stream (character). Empty = the only stream; '*' = every stream.")]
        public string stream = "";

        [Tooltip("Default fade in seconds when Show() is called without one.")]
        [Min(0f)]
        public float fadeSeconds = 0.3f;

        /// <summary>Last problem talking to the daemon (null when fine), e.g. an unknown expression name.</summary>
        public string LastProblem { get; private set; }

        readonly object _lock = new object();
        readonly AutoResetEvent _wake = new AutoResetEvent(false);
        string _expression;
        float _intensity = 1f, _fade, _hold = -1f;
        bool? _talk;
        Thread _thread;
        volatile bool _stop;

        /// <summary>Fades to a named expression (see the daemon's `expressions` command); hold &gt; 0 then returns
        /// to the one before after that many seconds.</summary>
        public void Show(string expression, float intensity = 1f, float fade = -1f, float hold = -1f)
        {
            lock (_lock) { _expression = expression; _intensity = intensity; _fade = fade < 0 ? fadeSeconds : fade; _hold = hold; }
            _wake.Set();
        }

        /// <summary>Procedural talking on or off (while a chat line is shown).</summary>
        public void Talk(bool on)
        {
            lock (_lock) _talk = on;
            _wake.Set();
        }

        void OnEnable()
        {
            _stop = false;
            string endpoint = controlEndpoint, streamName = stream;
            _thread = new Thread(() => SendLoop(endpoint, streamName)) { IsBackground = true, Name = "THA4 mood" };
            _thread.Start();
        }

        void OnDisable()
        {
            _stop = true;
            _wake.Set();
            if (_thread != null && !_thread.Join(1500)) Debug.LogWarning("THA4 mood sender did not stop within 1.5 s");
            _thread = null;
        }

        void SendLoop(string endpoint, string streamName)
        {
            ControlClient control = null;
            try
            {
                while (!_stop)
                {
                    _wake.WaitOne(500);
                    string expression; float intensity, fade, hold; bool? talk;
                    lock (_lock)
                    {
                        expression = _expression; intensity = _intensity; fade = _fade; hold = _hold; talk = _talk;
                        _expression = null; _talk = null;
                    }
                    if (expression == null && talk == null) continue;
                    try
                    {
                        if (control == null) control = ControlClient.Connect(endpoint, 1000);
                        if (expression != null) control.SetExpression(streamName, expression, intensity, fade, hold);
                        if (talk != null) control.Talk(streamName, talk.Value);
                        LastProblem = null;
                    }
                    catch (ControlException e) { LastProblem = "THA4 mood: " + e.Code + ": " + e.Message; }
                    catch (Exception e)
                    {
                        LastProblem = "THA4 mood: " + e.Message;
                        if (control != null) control.Dispose();
                        control = null;
                    }
                }
            }
            finally
            {
                if (control != null) control.Dispose();
            }
        }
    }
}
