// The test program (tests/unity/csharp, not shipped) may reach the test hooks (FrameRing.MidCopyHook).
using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Tha4Bridge.Core.Tests")]
[assembly: InternalsVisibleTo("Tha4Bridge.Unity.Tests")]
