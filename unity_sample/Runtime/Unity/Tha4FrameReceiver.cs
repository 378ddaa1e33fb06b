// Shows the daemon's frames in Unity: a background thread receives the newest frame (FrameClient, rows
// already flipped bottom-up), and Update uploads it to a Texture2D on the main thread, the only thread
// allowed to touch Unity objects. Stopping closes the socket first, which wakes the thread at once, so
// leaving Play mode never hangs the editor.
using System;
using System.Runtime.InteropServices;
using System.Threading;
using UnityEngine;
using UnityEngine.UI;

namespace Tha4Bridge.Unity
{
    [AddComponentMenu("THA4 Bridge/THA4 Frame Receiver")]
    [DisallowMultipleComponent]
    public sealed class Tha4FrameReceiver : MonoBehaviour
    {
        [Tooltip("The daemon's frames endpoint (tha4bridge serve --frames). Only tcp:// is supported.")]
        public string framesEndpoint = Tha4Endpoints.Frames;

        [Tooltip("Stream (character) to show. Empty = the first stream that arrives.")]
        public string stream = "";

        [Tooltip("Optional UI target: the frame becomes this RawImage's texture.")]
        public RawImage targetRawImage;

        [Tooltip("Optional 3D target (e.g. a Quad): the frame becomes its material's main texture.")]
        public Renderer targetRenderer;

        [Tooltip("Material using the 'Tha4Bridge/Unlit Transparent' shader (Runtime/Unity/Materials). Empty = one is created from the shader.")]
        public Material frameMaterial;

        [Tooltip("Write connection problems to the Console (each distinct message once).")]
        public bool logProblems = true;

        /// <summary>The texture frames are uploaded into (created with the first frame; RGBA32, sRGB).</summary>
        public Texture2D FrameTexture { get; private set; }
        /// <summary>Header of the frame currently shown.</summary>
        public FrameInfo LastFrame { get; private set; }
        public long FramesShown { get; private set; }
        /// <summary>Raised on the main thread after each upload.</summary>
        public event Action<Texture2D, FrameInfo> FrameShown;

        static readonly int SrcBlendId = Shader.PropertyToID("_SrcBlend");
        static readonly int PremultipliedId = Shader.PropertyToID("_Premultiplied");

        readonly object _swap = new object();
        Thread _thread;
        volatile bool _stop;
        FrameClient _client;
        // Triple buffer: the thread fills _back, publishes it as _ready; Update takes _ready as _front.
        byte[] _back, _ready, _front;
        FrameInfo _readyInfo;
        bool _hasNew;
        string _problem, _loggedProblem;
        Material _ownMaterial;
        bool? _appliedPremultiplied;

        void OnEnable()
        {
            _stop = false;
            lock (_swap) _problem = null;
            string endpoint = framesEndpoint, streamName = stream; // serialized fields are read here, on the main thread
            _thread = new Thread(() => ReceiveLoop(endpoint, streamName));
            _thread.IsBackground = true; // never keeps a player process alive
            _thread.Name = "THA4 frame receiver";
            _thread.Start();
        }

        void OnDisable()
        {
            StopReceiving();
        }

        void OnApplicationQuit()
        {
            StopReceiving();
        }

        void OnDestroy()
        {
            StopReceiving();
            if (FrameTexture != null) Destroy(FrameTexture);
            if (_ownMaterial != null) Destroy(_ownMaterial);
        }

        void StopReceiving()
        {
            _stop = true;
            FrameClient client;
            lock (_swap) client = _client;
            if (client != null) client.Dispose();
            if (_thread != null)
            {
                if (!_thread.Join(2000)) Debug.LogWarning("THA4 frame receiver thread did not stop within 2 s");
                _thread = null;
            }
        }

        void ReceiveLoop(string endpoint, string streamName)
        {
            while (!_stop)
            {
                FrameClient client;
                try
                {
                    client = FrameClient.Connect(endpoint, streamName, 1000);
                }
                catch (Exception e)
                {
                    Report("THA4: cannot reach the daemon at " + endpoint + " (" + e.Message + "); retrying. Is 'tha4bridge serve' running?");
                    for (int i = 0; i < 10 && !_stop; i++) Thread.Sleep(100);
                    continue;
                }
                lock (_swap)
                {
                    if (_stop) { client.Dispose(); return; }
                    _client = client;
                }
                var sinceFrame = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    while (!_stop)
                    {
                        FrameInfo info;
                        if (!client.TryGetLatestFrame(ref _back, out info, 100, true))
                        {
                            if (_stop) break;
                            if (client.LastError != null) Report("THA4: " + client.LastError);
                            else if (sinceFrame.ElapsedMilliseconds > 5000)
                                Report("THA4: connected to " + endpoint + " but no frames" + (streamName.Length > 0 ? " of stream '" + streamName + "'" : "")
                                    + " for 5 s; check the stream name ('tha4bridge serve' prints it) and that the daemon is rendering");
                            continue;
                        }
                        sinceFrame.Reset();
                        sinceFrame.Start();
                        lock (_swap)
                        {
                            byte[] t = _ready; _ready = _back; _back = t;
                            _readyInfo = info;
                            _hasNew = true;
                        }
                    }
                }
                catch (Exception e)
                {
                    if (!_stop) Report("THA4 frame receiver: " + e);
                }
                finally
                {
                    lock (_swap) _client = null;
                    client.Dispose();
                }
            }
        }

        void Report(string problem)
        {
            lock (_swap) _problem = problem;
        }

        void Update()
        {
            FrameInfo info = null;
            string problem;
            lock (_swap)
            {
                if (_hasNew)
                {
                    byte[] t = _front; _front = _ready; _ready = t;
                    info = _readyInfo;
                    _hasNew = false;
                    _problem = null;
                }
                problem = _problem;
            }
            if (logProblems && problem != null && problem != _loggedProblem) Debug.LogWarning(problem);
            _loggedProblem = problem;
            if (info == null) return;

            Upload(info);
            LastFrame = info;
            FramesShown++;
            if (FrameShown != null) FrameShown(FrameTexture, info);
        }

        void Upload(FrameInfo info)
        {
            bool created = false;
            if (FrameTexture == null || FrameTexture.width != info.Width || FrameTexture.height != info.Height)
            {
                if (FrameTexture != null) Destroy(FrameTexture);
                // linear: false = the bytes are sRGB, so a Linear-space project decodes them correctly.
                FrameTexture = new Texture2D(info.Width, info.Height, TextureFormat.RGBA32, false, false);
                FrameTexture.name = "THA4 " + info.Stream;
                FrameTexture.wrapMode = TextureWrapMode.Clamp;
                FrameTexture.filterMode = FilterMode.Bilinear;
                created = true;
            }
            int size = info.Width * info.Height * 4;
            GCHandle pin = GCHandle.Alloc(_front, GCHandleType.Pinned);
            try
            {
                FrameTexture.LoadRawTextureData(pin.AddrOfPinnedObject(), size);
            }
            finally
            {
                pin.Free();
            }
            FrameTexture.Apply(false, false);
            if (created || _appliedPremultiplied != info.Premultiplied) AttachToTargets(info.Premultiplied);
        }

        void AttachToTargets(bool premultiplied)
        {
            if (_ownMaterial == null)
            {
                // Always a private copy: SetFloat on a material asset would rewrite the asset in the editor.
                if (frameMaterial != null) _ownMaterial = new Material(frameMaterial);
                else
                {
                    Shader shader = Shader.Find("Tha4Bridge/Unlit Transparent");
                    if (shader == null)
                    {
                        Debug.LogError("THA4: shader 'Tha4Bridge/Unlit Transparent' not found; assign the package's material to 'Frame Material'");
                        return;
                    }
                    _ownMaterial = new Material(shader);
                }
                _ownMaterial.name = "THA4 frame (instance)";
            }
            Material m = _ownMaterial;
            // Premultiplied RGB must be added as is (One); straight RGB is weighted by alpha (SrcAlpha).
            m.SetFloat(SrcBlendId, premultiplied ? (float)UnityEngine.Rendering.BlendMode.One : (float)UnityEngine.Rendering.BlendMode.SrcAlpha);
            m.SetFloat(PremultipliedId, premultiplied ? 1f : 0f);
            _appliedPremultiplied = premultiplied;
            if (targetRawImage != null)
            {
                targetRawImage.material = m;
                targetRawImage.texture = FrameTexture;
            }
            if (targetRenderer != null)
            {
                targetRenderer.sharedMaterial = m;
                m.mainTexture = FrameTexture;
            }
        }
    }
}
