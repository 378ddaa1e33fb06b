"""`distiller eval`: how close a student is to its teacher on fixed validation poses (PSNR, SSIM; LPIPS when its
weights are already on this machine: nothing is downloaded at run time)."""
from __future__ import annotations

from pathlib import Path

import torch

from tha4bridge.poser import pick_device
from tha4bridge.student import StudentPoser

from .poses import PoseSource
from .report import batch_psnr, ssim
from .targets import make_targets


def _lpips(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """LPIPS (AlexNet) if the `lpips` package and torchvision's AlexNet weights are present locally."""
    try:
        import lpips  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        return None
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(hub.glob("alexnet-*.pth")):
        return None
    import lpips

    metric = lpips.LPIPS(net="alex", verbose=False)
    with torch.no_grad():
        rgb = lambda x: x[:, :3].float().cpu()  # noqa: E731  (official convention is already in [-1, 1])
        return float(metric(rgb(a), rgb(b)).mean())


def evaluate(student: str, teacher: str, image: str = "", poses: int = 16, device: str = "auto") -> dict:
    device = pick_device(device)
    targets = make_targets(teacher, image or str(Path(student) / "character.png"), device)
    pupil = StudentPoser(student, device=device, mode="exact")
    p = PoseSource(0).validation(poses).to(device)
    ours, theirs = [], []
    for i in range(0, len(p), 4):
        ours.append(pupil.render(p[i:i + 4]).clone().cpu())
        theirs.append(targets.body(p[i:i + 4]).final.cpu())
    a, b = torch.cat(ours), torch.cat(theirs)
    return {"poses": len(p), "psnr_db": batch_psnr(a, b), "ssim": ssim(a, b), "lpips": _lpips(a, b)}
