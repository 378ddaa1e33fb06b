// Reader for the daemon's shared-memory ring file (protocols/frames.md §2): maps the file read-only,
// validates the header, and copies one slot out under the seqlock rule, flipping rows on the way
// (Unity textures are bottom-up; flipping during the copy costs nothing measurable).
using System;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Threading;

namespace Tha4Bridge
{
    public enum SlotRead
    {
        /// <summary>The copy is exactly the requested frame.</summary>
        Ok,
        /// <summary>The slot already holds a newer frame (the reader was too late).</summary>
        Overwritten,
        /// <summary>The writer was inside the slot when the read started.</summary>
        Busy,
        /// <summary>The slot changed during the copy; the copied bytes are a mix and were discarded.</summary>
        Torn,
        /// <summary>The slot holds an older frame than requested (notification raced ahead of the file; retry).</summary>
        NotYetWritten,
    }

    public sealed unsafe class FrameRing : IDisposable
    {
        public const int ProtocolMajor = 1;
        const ulong Busy = 0xFFFFFFFFFFFFFFFFUL;
        static readonly byte[] Magic = Encoding.ASCII.GetBytes("THA4RING");

        readonly FileStream _file;
        readonly MemoryMappedFile _map;
        readonly MemoryMappedViewAccessor _view;
        readonly byte* _base;
        readonly long _mappedLength;
        bool _disposed;

        public string Path { get; private set; }
        public int VersionMajor { get; private set; }
        public int VersionMinor { get; private set; }
        public ulong Generation { get; private set; }
        public int WriterPid { get; private set; }
        public int Width { get; private set; }
        public int Height { get; private set; }
        public int RowStride { get; private set; }
        public bool Premultiplied { get; private set; }
        public int SlotCount { get; private set; }
        public long SlotSize { get; private set; }
        public string Stream { get; private set; }
        readonly long _slotTable, _slotEntrySize, _slotStride, _firstSlot;

        /// <summary>Test hook: runs halfway through a slot copy, so tests can make the reader slow.</summary>
        internal Action MidCopyHook;

        FrameRing(string path)
        {
            Path = path;
            // FileShare.ReadWrite|Delete: the daemon keeps writing, and on Windows must still be able to delete it.
            _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            try
            {
                _mappedLength = _file.Length;
                if (_mappedLength < 256) throw new InvalidDataException("ring file " + path + " is too short (" + _mappedLength + " bytes)");
                _map = MemoryMappedFile.CreateFromFile(_file, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, true);
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                byte* p = null;
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                _base = p + _view.PointerOffset;
            }
            catch
            {
                DisposeHandles();
                throw;
            }

            try
            {
                for (int i = 0; i < 8; i++)
                    if (_base[i] != Magic[i])
                        throw new InvalidDataException("ring file " + path + " has no THA4RING magic (not a ring, or not finished being created)");
                Thread.MemoryBarrier(); // magic is written last: read the rest only after seeing it
                VersionMajor = U16(8);
                VersionMinor = U16(10);
                if (VersionMajor != ProtocolMajor)
                    throw new InvalidDataException("ring file " + path + " speaks frames protocol " + VersionMajor + ".x, this client speaks " + ProtocolMajor + ".x");
                Generation = U64(16);
                WriterPid = (int)U32(24);
                Width = (int)U32(32);
                Height = (int)U32(36);
                RowStride = (int)U32(40);
                uint format = U32(44);
                if (format != 1) throw new InvalidDataException("ring file " + path + ": pixel_format " + format + " is not rgba8 (1)");
                Premultiplied = U32(48) == 1;
                SlotCount = (int)U32(56);
                _slotTable = U32(60);
                _slotEntrySize = U32(64);
                _slotStride = (long)U64(72);
                SlotSize = (long)U64(80);
                _firstSlot = (long)U64(88);
                Stream = ReadName(128, 64);
                // Refuse layouts that would make us read outside the mapping.
                if (Width <= 0 || Height <= 0 || RowStride < Width * 4 || SlotSize != (long)Height * RowStride)
                    throw new InvalidDataException("ring file " + path + ": inconsistent size fields");
                if (SlotCount < 1 || _slotEntrySize < 8 || _slotTable + SlotCount * _slotEntrySize > _firstSlot
                    || _slotStride < SlotSize || _firstSlot + SlotCount * _slotStride > _mappedLength)
                    throw new InvalidDataException("ring file " + path + ": slot layout does not fit the file");
            }
            catch
            {
                DisposeHandles();
                throw;
            }
        }

        /// <summary>Maps an existing ring file read-only. Throws IOException / InvalidDataException with the reason.</summary>
        public static FrameRing Open(string path)
        {
            return new FrameRing(path);
        }

        ushort U16(long o) { return *(ushort*)(_base + o); }
        uint U32(long o) { return *(uint*)(_base + o); }
        ulong U64(long o) { return *(ulong*)(_base + o); }

        // Reads an 8-byte field with a single aligned load that the JIT may not cache or reorder.
        ulong Volatile64(long o) { return (ulong)Volatile.Read(ref *(long*)(_base + o)); }

        string ReadName(long o, int max)
        {
            int n = 0;
            while (n < max && _base[o + n] != 0) n++;
            var b = new byte[n];
            for (int i = 0; i < n; i++) b[i] = _base[o + i];
            return Encoding.UTF8.GetString(b);
        }

        /// <summary>1 = live, 2 = closed by the daemon (stop reading and re-open by path when a new header comes).</summary>
        public int State { get { CheckAlive(); return (int)Volatile.Read(ref *(int*)(_base + 28)); } }
        public bool IsClosed { get { return State == 2; } }

        /// <summary>Seq of the newest published frame (0 = none yet) and its slot, read in the writer's reverse order.</summary>
        public void GetLatest(out long seq, out int slot)
        {
            CheckAlive();
            seq = (long)Volatile64(112);
            Thread.MemoryBarrier();
            slot = (int)Volatile.Read(ref *(int*)(_base + 120));
        }

        public long SlotOffset(int slot) { return _firstSlot + slot * _slotStride; }

        /// <summary>The seq the slot table says the slot holds right now (0 never written, -1 busy).</summary>
        public long SlotSeq(int slot)
        {
            CheckAlive();
            CheckSlot(slot);
            return (long)Volatile64(_slotTable + slot * _slotEntrySize);
        }

        /// <summary>The slot's timestamps (t_pose, t_render_start, t_render_end); only meaningful with a successful copy.</summary>
        public void SlotTimes(int slot, out double tPose, out double tRenderStart, out double tRenderEnd)
        {
            CheckAlive();
            CheckSlot(slot);
            long e = _slotTable + slot * _slotEntrySize;
            tPose = *(double*)(_base + e + 8);
            tRenderStart = *(double*)(_base + e + 16);
            tRenderEnd = *(double*)(_base + e + 24);
        }

        /// <summary>
        /// Copies frame `seq` out of `slot` into dst (at least SlotSize bytes) with the seqlock check of
        /// frames.md §2.2. flipRows writes the rows bottom-up, as Texture2D.LoadRawTextureData expects.
        /// Only SlotRead.Ok means dst holds the frame.
        /// </summary>
        public SlotRead TryCopy(long seq, int slot, byte[] dst, bool flipRows)
        {
            CheckAlive();
            CheckSlot(slot);
            if (dst == null || dst.Length < SlotSize) throw new ArgumentException("destination must hold " + SlotSize + " bytes");
            long seqField = _slotTable + slot * _slotEntrySize;
            Thread.MemoryBarrier();
            ulong s1 = Volatile64(seqField);
            if (s1 == Busy) return SlotRead.Busy;
            if (s1 != (ulong)seq) return s1 > (ulong)seq ? SlotRead.Overwritten : SlotRead.NotYetWritten;
            Thread.MemoryBarrier();

            byte* src = _base + SlotOffset(slot);
            int rows = Height;
            int rowBytes = Width * 4;
            fixed (byte* d = dst)
            {
                if (!flipRows && RowStride == rowBytes)
                {
                    long half = (long)rowBytes * (rows / 2);
                    Buffer.MemoryCopy(src, d, dst.Length, half);
                    if (MidCopyHook != null) MidCopyHook();
                    Buffer.MemoryCopy(src + half, d + half, dst.Length - half, SlotSize - half);
                }
                else
                {
                    for (int y = 0; y < rows; y++)
                    {
                        if (y == rows / 2 && MidCopyHook != null) MidCopyHook();
                        int dy = flipRows ? rows - 1 - y : y;
                        Buffer.MemoryCopy(src + (long)y * RowStride, d + (long)dy * rowBytes, rowBytes, rowBytes);
                    }
                }
            }

            Thread.MemoryBarrier(); // the copy's loads must complete before the second seq load
            ulong s2 = Volatile64(seqField);
            return s2 == s1 ? SlotRead.Ok : SlotRead.Torn;
        }

        void CheckSlot(int slot)
        {
            if (slot < 0 || slot >= SlotCount) throw new ArgumentOutOfRangeException("slot", "slot " + slot + " not in 0.." + (SlotCount - 1));
        }

        void CheckAlive()
        {
            if (_disposed) throw new ObjectDisposedException("FrameRing " + Path);
        }

        void DisposeHandles()
        {
            if (_view != null)
            {
                if (_base != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
                _view.Dispose();
            }
            if (_map != null) _map.Dispose();
            if (_file != null) _file.Dispose();
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            DisposeHandles();
        }
    }
}
