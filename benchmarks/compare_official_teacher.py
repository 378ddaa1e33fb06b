"""Our THA4 teacher against the official code, run side by side in this process on the same weights and poses.

    python benchmarks/compare_official_teacher.py --official-src PATH/talking-head-anime-4-demo/src

Nothing of the official code is in this repository: point --official-src at a checkout of
pkhungurn/talking-head-anime-4-demo. Weights are the fixture's deterministic synthetic ones (written to a
temporary folder for the official loader), the image and poses are the fixture's (../shared/.../teacher_synthetic).

Prints, per pose, the worst PSNR and the largest |Δ| over all 33 output entries for two arithmetics of ours:
  `native deconv` — our default: transposed convolutions on ATen's native kernel, as torch 1.13.1 (the official
                    environment) ran them; `onednn deconv` — torch's current default kernel, as the official code
                    gets when run on this torch. With the same kernels the two codes agree bit for bit.
and, beside it, each side's PSNR against the fixture's stored outputs (one machine's float32 rounding).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from distiller.teacher import encoder_decoder
from distiller.teacher.teacher import NETWORKS, Teacher
from tha4bridge.imaging import load_character_png, psnr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_teacher import SYNTHETIC, teacher_and_image  # noqa: E402


def official_outputs(src: Path, state_dicts: dict, image: torch.Tensor, poses: torch.Tensor) -> list[list]:
    sys.path.insert(0, str(src))
    from tha4.poser.modes import mode_07  # the official code, from the user's checkout

    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name in NETWORKS:
            files[name] = str(Path(tmp) / f"{name}.pt")
            torch.save(state_dicts[name], files[name])
        poser = mode_07.create_poser(torch.device("cpu"), files)
        with torch.no_grad():
            return [[t.clone() for t in poser.get_posing_outputs(image[None], poses[k:k + 1])]
                    for k in range(len(poses))]


def our_outputs(teacher: Teacher, image: torch.Tensor, poses: torch.Tensor, native_deconv: bool) -> list[list]:
    saved = encoder_decoder.TransposedConv.forward
    if not native_deconv:
        encoder_decoder.TransposedConv.forward = torch.nn.ConvTranspose2d.forward
    try:
        outs = []
        for k in range(len(poses)):
            teacher._decomposed = None  # one pose at a time, as the official poser is called
            with torch.no_grad():
                outs.append(teacher(image[None], poses[k:k + 1]).official_list())
        return outs
    finally:
        encoder_decoder.TransposedConv.forward = saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official-src", required=True, type=Path, help="the official repository's src/ folder")
    args = ap.parse_args()
    if not (args.official_src / "tha4" / "poser" / "modes" / "mode_07.py").is_file():
        sys.exit(f"{args.official_src}: not the src/ folder of talking-head-anime-4-demo (no tha4/poser/modes)")
    teacher, image, kind = teacher_and_image()
    if kind != "synthetic":
        sys.exit(f"{SYNTHETIC}: the fixture's synthetic weights are needed")
    teacher.eval()
    poses = torch.from_numpy(np.load(SYNTHETIC / "poses.npy"))
    ref = np.load(SYNTHETIC / "outputs_f16.npz")
    index = json.loads((SYNTHETIC / "meta.json").read_text())["output_index_in_official_list"]

    official = official_outputs(args.official_src, {n: getattr(teacher, n).state_dict() for n in NETWORKS},
                                image, poses)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; 33 entries per pose")
    for native in (True, False):
        ours = our_outputs(teacher, image, poses, native)
        label = "native deconv" if native else "onednn deconv"
        for k in range(len(poses)):
            worst = min(psnr(a, b) for a, b in zip(ours[k], official[k]))
            delta = max((a - b).abs().max().item() for a, b in zip(ours[k], official[k]))
            print(f"ours ({label}) vs official, pose {k}: worst PSNR {worst:.1f} dB, max |Δ| {delta:.2e}")
        for name, i in index.items():
            row = [(psnr(ours[k][i][0], ref[name][k].astype(np.float32)),
                    psnr(official[k][i][0], ref[name][k].astype(np.float32))) for k in range(len(poses))]
            print(f"  vs fixture {name}: ours " + "/".join(f"{a:.1f}" for a, _ in row)
                  + " | official " + "/".join(f"{b:.1f}" for _, b in row))


if __name__ == "__main__":
    main()
