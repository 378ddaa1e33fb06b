"""distiller: build a THA4 student for one character image from a teacher."""
import os

# Large CPU tensors on transparent huge pages. Why: a batch-8 step of the body student allocates and frees about
# 17 GB of activations, and on 4 KB pages faulting them in cost the kernel twice the arithmetic's time (18-21 s a
# step here; 11 s on huge pages; benchmarks/bench_distill.py). PyTorch reads this once, at its first allocation,
# so it is set here, before the distiller imports torch. (Keeping freed blocks in glibc's heap instead was faster
# still, but PyTorch's 64-byte-aligned blocks fragmented it: 8.5 → 12.5 GB resident in ten steps.)
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
