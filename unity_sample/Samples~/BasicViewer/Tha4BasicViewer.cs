// Sample: put this on an empty GameObject in an empty scene and press Play. It builds a screen-space
// canvas with a 512x512 RawImage, attaches a Tha4FrameReceiver (the character) and a Tha4Expression
// (whose sliders you can move in the Inspector), and optionally makes the character talk and blink.
using UnityEngine;
using UnityEngine.UI;
using Tha4Bridge.Unity;

namespace Tha4Bridge.Samples
{
    [AddComponentMenu("THA4 Bridge/Samples/THA4 Basic Viewer")]
    public sealed class Tha4BasicViewer : MonoBehaviour
    {
        [Tooltip("The daemon's frames endpoint (tha4bridge serve --frames).")]
        public string framesEndpoint = Tha4Endpoints.Frames;

        [Tooltip("The daemon's control endpoint (tha4bridge serve --control).")]
        public string controlEndpoint = Tha4Endpoints.Control;

        [Tooltip("Animate mouth_aaa and a blink from this script, to see the control socket at work.")]
        public bool animate = true;

        [Tooltip("Shared material with the 'Tha4Bridge/Unlit Transparent' shader; empty = created at runtime.")]
        public Material frameMaterial;

        Tha4FrameReceiver _receiver;
        Tha4Expression _expression;

        void Awake()
        {
            var canvasObject = new GameObject("THA4 Canvas", typeof(RectTransform), typeof(Canvas), typeof(CanvasScaler), typeof(GraphicRaycaster));
            canvasObject.GetComponent<Canvas>().renderMode = RenderMode.ScreenSpaceOverlay;
            canvasObject.transform.SetParent(transform, false);

            var imageObject = new GameObject("THA4 Character", typeof(RectTransform), typeof(RawImage));
            imageObject.transform.SetParent(canvasObject.transform, false);
            var rect = (RectTransform)imageObject.transform;
            rect.anchorMin = new Vector2(0.5f, 0.5f);
            rect.anchorMax = new Vector2(0.5f, 0.5f);
            rect.sizeDelta = new Vector2(512, 512);
            rect.anchoredPosition = Vector2.zero;

            // Configure before enabling, so the receiver starts with these endpoints.
            imageObject.SetActive(false);
            _receiver = imageObject.AddComponent<Tha4FrameReceiver>();
            _receiver.framesEndpoint = framesEndpoint;
            _receiver.targetRawImage = imageObject.GetComponent<RawImage>();
            _receiver.frameMaterial = frameMaterial;
            _expression = imageObject.AddComponent<Tha4Expression>();
            _expression.controlEndpoint = controlEndpoint;
            _expression.holdSeconds = 2f;
            imageObject.SetActive(true);
        }

        void Update()
        {
            if (!animate || _expression == null) return;
            float t = Time.time;
            _expression.Set("mouth_aaa", 0.5f + 0.5f * Mathf.Sin(t * 6f));
            // A 150 ms blink every 4 seconds.
            float blink = (t % 4f) < 0.15f ? 1f : 0f;
            _expression.Set("eye_wink_left", blink);
            _expression.Set("eye_wink_right", blink);
        }
    }
}
