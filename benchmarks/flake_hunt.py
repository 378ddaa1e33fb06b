"""Flake hunt: run test files again and again, and the suite in random order beside a busy neighbour, and list
every test that ever failed (issue 25: a suite that never fails by chance).

Two phases, both optional:

  isolation  every test file under PATHS, N times each, alone, in file order:
             `python -m pytest -q -p no:randomly FILE` (as a developer runs one file)
  suite      the test files under SUITE_PATHS together, K times, each time in a new random order (modules
             shuffled, tests shuffled within their module, so module fixtures still set up once; the seed is
             printed so an order can be replayed with --seed), while a busy neighbour process (a Python busy
             loop, nice 0) takes one core: the load under which waits that do not wait and tight timing
             thresholds fail

Random order needs no extra package: this file is also the pytest plugin that shuffles (loaded with
`-p flake_hunt`, active only when FLAKE_HUNT_SEED is set), so the test extra is unchanged.

Every run writes a JUnit XML report; failures and errors (setup/teardown too) are read from it, keyed by pytest
node id. A run that leaves no report (crash, kill, time-out) is listed as `FILE (the run itself)`. The hunt stops
starting runs when --budget seconds are spent and says exactly what ran.

    python benchmarks/flake_hunt.py                               # every file 10x, the whole suite 3x
    python benchmarks/flake_hunt.py --files 5 --suite 0 tests/transport tests/trackers
    python benchmarks/flake_hunt.py --files 0 --suite 1 --suite-paths tests/transport --seed 7
    python benchmarks/flake_hunt.py --budget 1800 --json hunt.json --pytest-args="-m 'not slow'"
    python benchmarks/flake_hunt.py --files 0 --suite 3 --suite-pytest-args="-m 'slow or not slow'"  # all CI runs
    python benchmarks/flake_hunt.py --files 10 --suite 0 --jobs 2    # two files' runs at a time on 2 cores

Exit status: 0 when nothing failed, 1 when some test failed at least once, 2 when the budget stopped the hunt
before its planned runs were done (and nothing failed).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# --- the pytest plugin half (loaded inside the pytest runs with -p flake_hunt) --------------------------------
def pytest_collection_modifyitems(session, config, items):
    seed = os.environ.get("FLAKE_HUNT_SEED")
    if seed is None:
        return
    rng = random.Random(int(seed))
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    order = list(modules)
    rng.shuffle(order)
    items[:] = []
    for name in order:
        group = modules[name]
        rng.shuffle(group)
        items.extend(group)


def pytest_report_header(config):
    seed = os.environ.get("FLAKE_HUNT_SEED")
    return None if seed is None else f"flake_hunt: random order, seed {seed}"


# --- the driver half ---------------------------------------------------------------------------------------------
@dataclass
class Failure:
    nodeid: str
    count: int = 0
    first_message: str = ""
    first_run: str = ""
    runs: list[str] = field(default_factory=list)


@dataclass
class Hunt:
    failures: dict[str, Failure] = field(default_factory=dict)
    ran: list[dict] = field(default_factory=list)  # one entry per pytest run
    stopped_by_budget: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)  # --jobs: runs report from several threads

    def record(self, nodeid: str, message: str, run: str) -> None:
        with self.lock:
            f = self.failures.setdefault(nodeid, Failure(nodeid))
            f.count += 1
            f.runs.append(run)
            if not f.first_message:
                f.first_message, f.first_run = message, run


def test_files(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        path = (ROOT / p) if not Path(p).is_absolute() else Path(p)
        if path.is_file():
            out.append(path)
        else:
            out.extend(sorted(path.rglob("test_*.py")))
    return [str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f) for f in dict.fromkeys(out)]


def nodeid_of(case: ET.Element) -> str:
    """pytest's node id from a JUnit <testcase>: classname is the module's dotted path plus any classes."""
    classname, name = case.get("classname", ""), case.get("name", "")
    file = case.get("file")
    parts = classname.split(".") if classname else []
    # the longest prefix of the dotted name that is a file under ROOT is the module
    for k in range(len(parts), 0, -1):
        candidate = Path(*parts[:k]).with_suffix(".py")
        if (ROOT / candidate).is_file():
            return "::".join([candidate.as_posix(), *parts[k:], name])
    return f"{file or classname}::{name}" if (file or classname) else name


def failures_in(report: Path) -> list[tuple[str, str]] | None:
    """(node id, first line of the message) of every failed or erroring test in a JUnit report; None when there
    is no readable report."""
    try:
        tree = ET.parse(report)
    except (OSError, ET.ParseError):
        return None
    out = []
    for case in tree.iter("testcase"):
        for tag in ("failure", "error"):
            for bad in case.findall(tag):
                message = bad.get("message") or ((bad.text or "").strip().splitlines() or [""])[-1]
                where = "" if tag == "failure" else " (error in setup/teardown or collection)"
                out.append((nodeid_of(case), (message.strip().splitlines() or [""])[0][:400] + where))
    return out


def run_pytest(hunt: Hunt, label: str, targets: list[str], extra: list[str], env_extra: dict, timeout: float,
               nice: int, keep: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="flake_hunt-") as tmp:
        report = Path(tmp) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
               f"--junitxml={report}", *extra, *targets]
        if "FLAKE_HUNT_SEED" in env_extra:  # this file, as the plugin that shuffles (PYTHONPATH below)
            cmd[4:4] = ["-p", "flake_hunt"]
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]
        env = dict(os.environ, **env_extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), str(ROOT),
                                                           env.get("PYTHONPATH")]))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
            rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-3000:]
        except subprocess.TimeoutExpired as e:
            rc, tail = "timeout", ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes)
                                   else (e.stdout or ""))[-3000:]
        seconds = time.monotonic() - t0
        found = failures_in(report)
        if keep is not None:  # the report (every test's time) and the output's end, for a slow or failed run
            stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
            keep.mkdir(parents=True, exist_ok=True)
            if report.exists():
                shutil.copy(report, keep / f"{stem}.xml")
            (keep / f"{stem}.txt").write_text(tail)
        summary = next((ln for ln in reversed(tail.splitlines()) if " in " in ln and ("passed" in ln or "failed"
                        in ln or "error" in ln or "skipped" in ln or "deselected" in ln)), "")
        with hunt.lock:
            hunt.ran.append({"run": label, "targets": targets, "rc": rc, "seconds": round(seconds, 1),
                             "summary": summary.strip("= "), "failed": len(found or [])})
        if found is None:
            if rc not in (0, 5):  # 5: nothing collected
                hunt.record(f"{' '.join(targets)} (the run itself)", f"rc={rc}, no report; output ends: "
                            f"{tail.strip().splitlines()[-1:] or ['']}", label)
        else:
            for nodeid, message in found:
                hunt.record(nodeid, message, label)
            if rc not in (0, 1, 5) and not found:
                hunt.record(f"{' '.join(targets)} (the run itself)", f"rc={rc}: {tail.strip().splitlines()[-1:]}",
                            label)
        status = "ok" if rc in (0, 5) and not found else f"FAILED ({len(found or [])} tests, rc={rc})"
        print(f"  {label}: {status} in {seconds:.1f}s  {summary.strip('= ')}", flush=True)


class Neighbour:
    """A busy loop on one core while the suite runs (nice 0: it competes with the tests as an equal)."""

    def __init__(self, enabled: bool):
        self.proc = None
        if enabled:
            self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", default=["tests"], help="files or folders for the isolation phase")
    ap.add_argument("--files", type=int, default=10, metavar="N", help="runs of each file alone (0: skip)")
    ap.add_argument("--suite", type=int, default=3, metavar="K", help="random-order suite runs (0: skip)")
    ap.add_argument("--suite-paths", nargs="*", default=None,
                    help="what a suite run runs (default: the PATHS of the isolation phase)")
    ap.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                    help="start no run after this many seconds (the one under way finishes)")
    ap.add_argument("--run-timeout", type=float, default=1800.0, help="kill one pytest run after this many seconds")
    ap.add_argument("--seed", type=int, default=None, help="seed of the first suite run's order (then +1 each)")
    ap.add_argument("--no-neighbour", action="store_true", help="suite runs without the busy neighbour")
    ap.add_argument("--neighbour-files", action="store_true", help="the busy neighbour during the isolation runs too")
    ap.add_argument("--nice", type=int, default=0, help="run pytest under `nice -n` (a shared machine)")
    ap.add_argument("--pytest-args", default="", help="extra pytest arguments, one string after =: --pytest-args=\"-m slow\"")
    ap.add_argument("--suite-pytest-args", default=None,
                    help="the suite runs' pytest arguments instead of --pytest-args, e.g. \"-m 'slow or not slow'\" "
                         "for every test CI runs")
    ap.add_argument("--jobs", type=int, default=1, metavar="J",
                    help="isolation runs at once (each file still in a pytest process of its own; J > 1 loads the "
                         "machine as a neighbour would, and a test that takes a fixed port shows up)")
    ap.add_argument("--json", type=Path, default=None, help="write what ran and what failed here")
    ap.add_argument("--keep", type=Path, default=None, metavar="DIR",
                    help="keep each run's JUnit report (every test's time) and the end of its output here")
    a = ap.parse_args(argv)

    import shlex

    extra = shlex.split(a.pytest_args)
    suite_extra = extra if a.suite_pytest_args is None else shlex.split(a.suite_pytest_args)
    files = test_files(a.paths)
    suite_targets = a.suite_paths if a.suite_paths is not None else a.paths
    seed0 = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    hunt, start = Hunt(), time.monotonic()
    planned = len(files) * a.files + a.suite

    def budget_left() -> bool:
        if a.budget is not None and time.monotonic() - start > a.budget:
            hunt.stopped_by_budget = True
            return False
        return True

    print(f"flake hunt: {len(files)} files x {a.files} alone ({a.jobs} at a time), suite ({' '.join(suite_targets)}) x {a.suite} in "
          f"random order{'' if a.no_neighbour else ' beside a busy neighbour'}; budget "
          f"{'none' if a.budget is None else f'{a.budget:.0f}s'}", flush=True)
    if a.files:
        # round-robin: a budget cut leaves every file with about the same count
        todo = [(f, i) for i in range(a.files) for f in files]
        with Neighbour(a.neighbour_files), ThreadPoolExecutor(max(1, a.jobs)) as pool:
            def one(job):
                f, i = job
                if budget_left():
                    run_pytest(hunt, f"{f} #{i + 1}", [f], extra, {}, a.run_timeout, a.nice, a.keep)

            list(pool.map(one, todo))
    for k in range(a.suite):
        if not budget_left():
            break
        seed = seed0 + k
        with Neighbour(not a.no_neighbour):
            run_pytest(hunt, f"suite #{k + 1} (seed {seed})", list(suite_targets), suite_extra,
                       {"FLAKE_HUNT_SEED": str(seed)}, a.run_timeout, a.nice, a.keep)
    elapsed = time.monotonic() - start

    print(f"\nran {len(hunt.ran)} of {planned} planned pytest runs in {elapsed:.0f}s"
          + (" (stopped by the budget)" if hunt.stopped_by_budget else ""))
    per_file: dict[str, int] = {}
    for r in hunt.ran:
        if not r["run"].startswith("suite"):
            per_file[r["targets"][0]] = per_file.get(r["targets"][0], 0) + 1
    for f in files:
        print(f"  {per_file.get(f, 0):3d}x alone  {f}")
    for r in hunt.ran:
        if r["run"].startswith("suite"):
            print(f"  {r['run']}: {r['summary']} ({r['seconds']}s)")
    if hunt.failures:
        print(f"\n{len(hunt.failures)} test(s) failed at least once:")
        for f in sorted(hunt.failures.values(), key=lambda f: -f.count):
            print(f"  {f.count}x  {f.nodeid}\n       first in {f.first_run}: {f.first_message}")
    else:
        print("\nno test failed")
    if a.json:
        a.json.write_text(json.dumps({"ran": hunt.ran, "planned": planned, "seconds": round(elapsed, 1),
                                      "stopped_by_budget": hunt.stopped_by_budget,
                                      "failures": [vars(f) for f in hunt.failures.values()]}, indent=1))
    if hunt.failures:
        return 1
    return 2 if hunt.stopped_by_budget else 0


if __name__ == "__main__":
    sys.exit(main())
