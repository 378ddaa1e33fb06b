// Minimal stand-ins for the UnityEngine APIs the package uses, so `mcs` can type-check the MonoBehaviours
// on a machine without Unity. Test-only: never part of unity_sample/. Signatures follow the Unity
// ScriptReference; bodies do the least that lets the smoke test run.
using System;
using System.Collections.Generic;

namespace UnityEngine
{
    public class Object
    {
        public string name { get; set; }
        public static void Destroy(Object obj) { }
        public static void DontDestroyOnLoad(Object obj) { }
        public static implicit operator bool(Object o) { return !ReferenceEquals(o, null); }
    }

    public class Component : Object
    {
        public GameObject gameObject { get; internal set; }
        public Transform transform { get { return gameObject.transform; } }
        public T GetComponent<T>() where T : Component { return gameObject.GetComponent<T>(); }
    }

    public class Transform : Component
    {
        public void SetParent(Transform parent, bool worldPositionStays) { }
    }

    public class RectTransform : Transform
    {
        public Vector2 anchorMin { get; set; }
        public Vector2 anchorMax { get; set; }
        public Vector2 sizeDelta { get; set; }
        public Vector2 anchoredPosition { get; set; }
        public Vector2 pivot { get; set; }
    }

    public class Behaviour : Component
    {
        public bool enabled { get; set; }
    }

    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        readonly List<Component> _components = new List<Component>();
        public Transform transform { get; private set; }

        public GameObject(string name) : this(name, new Type[0]) { }

        public GameObject(string name, params Type[] components)
        {
            this.name = name;
            transform = components != null && Array.IndexOf(components, typeof(RectTransform)) >= 0 ? new RectTransform() : new Transform();
            transform.gameObject = this;
            _components.Add(transform);
            foreach (Type t in components)
                if (t != typeof(RectTransform) && t != typeof(Transform)) AddComponent(t);
        }

        public bool activeSelf { get; private set; }
        public void SetActive(bool value) { activeSelf = value; }

        public Component AddComponent(Type t)
        {
            var c = (Component)Activator.CreateInstance(t);
            c.gameObject = this;
            _components.Add(c);
            return c;
        }

        public T AddComponent<T>() where T : Component { return (T)AddComponent(typeof(T)); }

        public T GetComponent<T>() where T : Component
        {
            foreach (Component c in _components)
                if (c is T) return (T)c;
            return null;
        }
    }

    public struct Vector2
    {
        public float x, y;
        public Vector2(float x, float y) { this.x = x; this.y = y; }
        public static Vector2 zero { get { return new Vector2(0, 0); } }
        public static Vector2 one { get { return new Vector2(1, 1); } }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
    }

    public struct Color
    {
        public float r, g, b, a;
        public Color(float r, float g, float b, float a) { this.r = r; this.g = g; this.b = b; this.a = a; }
        public static Color white { get { return new Color(1, 1, 1, 1); } }
    }

    public struct Rect
    {
        public float x, y, width, height;
        public Rect(float x, float y, float width, float height) { this.x = x; this.y = y; this.width = width; this.height = height; }
    }

    public enum TextureFormat { Alpha8 = 1, RGB24 = 3, RGBA32 = 4, ARGB32 = 5, BGRA32 = 14 }
    public enum TextureWrapMode { Repeat = 0, Clamp = 1, Mirror = 2, MirrorOnce = 3 }
    public enum FilterMode { Point = 0, Bilinear = 1, Trilinear = 2 }

    public class Texture : Object
    {
        public virtual int width { get; set; }
        public virtual int height { get; set; }
        public TextureWrapMode wrapMode { get; set; }
        public FilterMode filterMode { get; set; }
    }

    public sealed class Texture2D : Texture
    {
        public byte[] LastUpload; // stand-in only: what LoadRawTextureData received

        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain, bool linear)
        {
            this.width = width;
            this.height = height;
        }

        public Texture2D(int width, int height, TextureFormat textureFormat, bool mipChain) : this(width, height, textureFormat, mipChain, false) { }

        public void LoadRawTextureData(byte[] data)
        {
            if (data.Length != width * height * 4) throw new UnityException("LoadRawTextureData: not enough data provided");
            LastUpload = (byte[])data.Clone();
        }

        public void LoadRawTextureData(IntPtr data, int size)
        {
            if (size != width * height * 4) throw new UnityException("LoadRawTextureData: not enough data provided");
            LastUpload = new byte[size];
            System.Runtime.InteropServices.Marshal.Copy(data, LastUpload, 0, size);
        }

        public void Apply(bool updateMipmaps, bool makeNoLongerReadable) { }
        public void Apply() { }
    }

    public class UnityException : Exception
    {
        public UnityException(string message) : base(message) { }
    }

    public sealed class Shader : Object
    {
        static readonly Dictionary<string, int> Ids = new Dictionary<string, int>();
        public static Shader Find(string name) { return new Shader { name = name }; }
        public static int PropertyToID(string name)
        {
            lock (Ids)
            {
                int id;
                if (!Ids.TryGetValue(name, out id)) Ids[name] = id = Ids.Count + 1;
                return id;
            }
        }
    }

    public class Material : Object
    {
        public readonly Dictionary<int, float> Floats = new Dictionary<int, float>(); // stand-in only
        public Shader shader { get; set; }
        public Texture mainTexture { get; set; }
        public Material(Shader shader) { this.shader = shader; }
        public Material(Material source) { shader = source.shader; }
        public void SetFloat(int nameID, float value) { Floats[nameID] = value; }
        public void SetFloat(string name, float value) { Floats[Shader.PropertyToID(name)] = value; }
        public void SetTexture(string name, Texture value) { }
    }

    public class Renderer : Component
    {
        public Material sharedMaterial { get; set; }
        public Material material { get; set; }
    }

    public class MeshRenderer : Renderer { }

    public static class Debug
    {
        public static readonly List<string> Messages = new List<string>(); // stand-in only
        public static void Log(object message) { lock (Messages) Messages.Add("log: " + message); }
        public static void LogWarning(object message) { lock (Messages) Messages.Add("warning: " + message); }
        public static void LogError(object message) { lock (Messages) Messages.Add("error: " + message); }
    }

    public static class Time
    {
        static readonly System.Diagnostics.Stopwatch Clock = System.Diagnostics.Stopwatch.StartNew();
        public static float unscaledTime { get { return (float)Clock.Elapsed.TotalSeconds; } }
        public static float time { get { return unscaledTime; } }
        public static float deltaTime { get { return 1f / 60f; } }
    }

    public static class Mathf
    {
        public const float PI = (float)Math.PI;
        public static float Sin(float f) { return (float)Math.Sin(f); }
        public static float Clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }
        public static float Abs(float v) { return Math.Abs(v); }
    }

    public enum RenderMode { ScreenSpaceOverlay = 0, ScreenSpaceCamera = 1, WorldSpace = 2 }

    public sealed class Canvas : Behaviour
    {
        public RenderMode renderMode { get; set; }
    }

    [AttributeUsage(AttributeTargets.Field)] public sealed class SerializeField : Attribute { }
    [AttributeUsage(AttributeTargets.Field)] public sealed class HideInInspector : Attribute { }
    [AttributeUsage(AttributeTargets.Field)] public sealed class TooltipAttribute : Attribute { public TooltipAttribute(string tooltip) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class HeaderAttribute : Attribute { public HeaderAttribute(string header) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class RangeAttribute : Attribute { public RangeAttribute(float min, float max) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class MinAttribute : Attribute { public MinAttribute(float min) { } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }
    [AttributeUsage(AttributeTargets.Class)] public sealed class DisallowMultipleComponent : Attribute { }
    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)] public sealed class RequireComponent : Attribute { public RequireComponent(Type t) { } }
}

namespace UnityEngine.Rendering
{
    public enum BlendMode { Zero = 0, One = 1, DstColor = 2, SrcColor = 3, OneMinusDstColor = 4, SrcAlpha = 5, OneMinusSrcColor = 6, DstAlpha = 7, OneMinusDstAlpha = 8, SrcAlphaSaturate = 9, OneMinusSrcAlpha = 10 }
}

namespace UnityEngine.UI
{
    public class Graphic : MonoBehaviour
    {
        public virtual Material material { get; set; }
        public Color color { get; set; }
    }

    public class RawImage : Graphic
    {
        public Texture texture { get; set; }
        public Rect uvRect { get; set; }
    }

    public class CanvasScaler : MonoBehaviour { }
    public class GraphicRaycaster : MonoBehaviour { }
}
