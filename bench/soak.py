"""Kill -9 soak of the run directory: a tiny training run killed at N random moments, resumed each
time, then compared with the same run done in one go (GitHub issue 29).

    python bench/soak.py --n 20            # about 2-4 minutes on 2 CPU cores

Each kill lands at one of four kinds of moment, drawn at random:

- ``startup``: while the job starts (loading torch, reading the dataset, loading the checkpoint);
- ``step``: a random moment of training, a few steps after the resume point;
- ``checkpoint``: while a checkpoint is being written (its ``.incomplete-*`` folder exists);
- ``pruning``: while an old checkpoint is being deleted (its ``.pruning-*`` folder exists).

The job runs in slow motion for the last two (a child process that wraps ``gan-trainer`` and
sleeps inside checkpoint writes and deletions, ``--slow`` seconds a file), so that the kills land
inside those windows and not only next to them. Nothing else is changed in the job.

It prints, and writes as JSON with ``--json``: the resumes that worked (a resume worked when it
loaded the newest intact checkpoint, or started from 0 without one, and did not fail by itself),
the steps lost (trained again after each kill), the leftovers found after the kills (removed by the
next start) and at the end, duplicated and missing metric lines, and whether the final weights are
those of an uninterrupted run, bit for bit.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("startup", "step", "checkpoint", "pruning")


def overrides(data: Path, steps: int) -> list[str]:
    return [f"data.root={json.dumps(str(data))}", "data.synth=\"\"", "data.image_size=32", "data.load_size=36",
            f"train.steps={steps}", "train.batch_size=2", "train.decay_steps=0", "train.log_every=1",
            "train.sample_every=10", "train.checkpoint_every=4", "train.keep_checkpoints=2",
            "train.precision=\"off\"", "train.device=\"cpu\"", "data.num_workers=0", "model.ngf=8", "model.ndf=8",
            "train.threads=1"]


# -- the child: gan-trainer in slow motion inside checkpoint writes and deletions

def child(argv: list[str]) -> int:
    import shutil

    import trainer.rundir as rundir
    import trainer.run as run
    from trainer.cli import main
    slow = float(os.environ.get("SOAK_SLOW", "0.03"))
    write_file, rmtree = rundir.write_file, shutil.rmtree

    def slow_write_file(path, data):
        time.sleep(slow)
        out = write_file(path, data)
        time.sleep(slow)
        return out

    def slow_rmtree(path, ignore_errors=False, *a, **k):
        path = Path(path)
        if path.name.startswith(".pruning-") and path.is_dir():
            for f in sorted(path.iterdir()):
                time.sleep(slow)
                f.unlink(missing_ok=True)
            time.sleep(slow)
        return rmtree(path, ignore_errors=ignore_errors, *a, **k)
    rundir.write_file = run.checkpoints.write_file = slow_write_file
    shutil.rmtree = slow_rmtree
    return main(argv)


# -- the parent

def newest_intact(rd) -> int:
    for step, path in reversed(rd.checkpoints()):
        if rd.verify_checkpoint(path) is None:
            return step
    return 0


def logged_max(rd) -> int:
    steps = [m.get("step", 0) for m in rd.read_metrics()]
    return max(steps, default=0)


def spawn(run_dir: Path, args: list[str], slow: float) -> subprocess.Popen:
    with open(run_dir.parent / "soak.log", "a") as log:
        log.write(f"\n=== {' '.join(args[:2])} at {time.strftime('%H:%M:%S')}\n")
    return subprocess.Popen([sys.executable, __file__, "--child", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "SOAK_SLOW": str(slow)})


def kill_at(proc: subprocess.Popen, rd, kind: str, rng: random.Random, slow: float, timeout: float) -> bool:
    """Wait for a moment of ``kind`` and kill -9; False when the job ended by itself first."""
    start = time.time()

    def wait(predicate, poll):
        while time.time() - start < timeout:
            if proc.poll() is not None:
                return False
            if predicate():
                return True
            time.sleep(poll)
        return True  # not seen in time: killed anyway, at a random moment

    def names():
        try:
            return set(os.listdir(rd.checkpoints_dir))
        except OSError:
            return set()
    before = names()  # leftovers of the last kill, which this start removes: not the moment wanted

    def found(prefix):
        return any(p.startswith(prefix) for p in names() - before)
    if kind == "startup":
        after = rng.uniform(0.05, 3.0)
        if not wait(lambda: time.time() - start > after, 0.01):
            return False
    elif kind == "step":
        target = max(newest_intact(rd), logged_max(rd)) + rng.randint(1, 6)
        if not wait(lambda: logged_max(rd) >= target, 0.005):
            return False
        time.sleep(rng.uniform(0, 0.05))
    else:
        prefix = ".incomplete-" if kind == "checkpoint" else ".pruning-"
        if not wait(lambda: found(prefix), 0.002):
            return False
        time.sleep(rng.uniform(0, 1.5 * slow))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return True


def soak(n: int, steps: int, seed: int, slow: float, work: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    from trainer import config, registry, run
    from trainer.data.synth import synthesize
    from trainer.rundir import RunDir

    rng = random.Random(seed)
    data = synthesize("sketches", work / "data", n=40, size=32, workers=1)
    sets = overrides(data, steps)
    t0 = time.time()
    run.train(registry.load_config("pix2pix-sketches", sets), work / "straight", progress=False, log=lambda *a: None)
    straight_s = time.time() - t0

    rd = RunDir(work / "killed")
    rd.path.parent.mkdir(parents=True, exist_ok=True)
    cli_sets = sum((["--set", o] for o in sets), [])
    kills, resumes = [], []
    ended_early = False
    for i in range(n):
        first = i == 0
        expected = newest_intact(rd) if not first else None
        args = (["train", "pix2pix-sketches", "--run-dir", str(rd.path)] if first else ["resume", str(rd.path)]) \
            + ["--no-progress"] + (cli_sets if first else [])
        proc = spawn(rd.path, args, slow)
        kind = rng.choice(KINDS)
        killed = kill_at(proc, rd, kind, rng, slow, timeout=300)
        output = proc.communicate()[0]
        with open(rd.path.parent / "soak.log", "a") as f:
            f.write(output)
        if not first:
            got = re.search(r"resuming .* at step (\d+)", output)
            fresh = "no checkpoint yet" in output
            bad = proc.returncode not in (0, -signal.SIGKILL) or "Traceback" in output or "\nerror:" in output
            loaded = int(got.group(1)) if got else (0 if fresh else None)
            resumes.append({"expected": expected, "loaded": loaded, "rc": proc.returncode,
                            "worked": not bad and (loaded is None or loaded == expected)})
        leftovers = [p.name for p in rd.leftovers()]
        reached = logged_max(rd)
        ckpt = newest_intact(rd)
        kills.append({"kind": kind, "killed": killed, "reached": reached, "checkpoint": ckpt,
                      "lost": max(0, reached - ckpt), "leftovers": leftovers})
        print(f"kill {i + 1:2d}/{n} {kind:10s} {'killed' if killed else 'ended by itself':16s} "
              f"logged step {reached:4d}, newest intact checkpoint {ckpt:4d}"
              + (f", leftovers {', '.join(leftovers)}" if leftovers else ""), flush=True)
        if not killed:
            ended_early = True
            break
    # the last resume runs to the end
    expected = newest_intact(rd)
    proc = spawn(rd.path, ["resume", str(rd.path), "--no-progress"], slow)
    output = proc.communicate()[0]
    got = re.search(r"resuming .* at step (\d+)", output)
    final_ok = proc.returncode == 0 and rd.read_status().get("state") == "finished"
    resumes.append({"expected": expected, "loaded": int(got.group(1)) if got else None, "rc": proc.returncode,
                    "worked": final_ok and (got is None or int(got.group(1)) == expected)})

    steps_logged = [m["step"] for m in rd.read_metrics()]
    duplicated = len(steps_logged) - len(set(steps_logged))
    missing = sorted(set(range(1, steps + 1)) - set(steps_logged))
    a = load_file(str(work / "straight" / "checkpoints" / f"step-{steps:06d}" / "nets.safetensors"))
    final = rd.checkpoint_path(steps) / "nets.safetensors"
    b = load_file(str(final)) if final.is_file() else {}
    equal = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    diff = max((float((a[k] - b[k]).abs().max()) for k in a if k in b and a[k].is_floating_point()), default=None)
    return {
        "kills": len([k for k in kills if k["killed"]]), "asked": n, "ended_early": ended_early, "steps": steps,
        "by_kind": {kind: sum(k["kind"] == kind and k["killed"] for k in kills) for kind in KINDS},
        "resumes_worked": sum(r["worked"] for r in resumes), "resumes": len(resumes),
        "steps_lost": sum(k["lost"] for k in kills), "steps_lost_max": max((k["lost"] for k in kills), default=0),
        "leftovers_after_kills": sum(len(k["leftovers"]) for k in kills),
        "leftovers_at_end": [p.name for p in rd.leftovers()],
        "damaged_set_aside": sorted(p.name for p in rd.checkpoints_dir.glob("damaged-*")),
        "duplicated_metric_lines": duplicated, "missing_metric_steps": missing,
        "final_state": rd.read_status().get("state"), "final_weights_equal": equal, "max_abs_diff": diff,
        "straight_seconds": round(straight_s, 1), "kill_log": kills, "resume_log": resumes,
    }


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20, help="kills (default: 20)")
    p.add_argument("--steps", type=int, default=240, help="steps of the run (default: 240)")
    p.add_argument("--seed", type=int, default=0, help="seed of the moments drawn (default: 0)")
    p.add_argument("--slow", type=float, default=0.03, help="seconds of slow motion per checkpoint file written or "
                                                           "deleted (default: 0.03)")
    p.add_argument("--work", help="working folder (default: a temporary one, removed)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        os.environ.setdefault("GAN_STUDIO_CACHE", str(work / "cache"))
        r = soak(args.n, args.steps, args.seed, args.slow, work)
    print()
    print(f"kills: {r['kills']} of {r['asked']} asked ("
          + ", ".join(f"{k} {v}" for k, v in r["by_kind"].items()) + f"), run of {r['steps']} steps"
          + (" (the run ended before the last kills)" if r["ended_early"] else ""))
    print(f"resumes that worked: {r['resumes_worked']} / {r['resumes']} (the last one runs to the end: "
          f"{r['final_state']})")
    print(f"steps lost: {r['steps_lost']} in all, at most {r['steps_lost_max']} at one kill (trained again from "
          "the checkpoint before)")
    print(f"leftovers: {r['leftovers_after_kills']} found right after the kills (removed by the next start); "
          f"{len(r['leftovers_at_end'])} at the end; damaged checkpoints set aside: {len(r['damaged_set_aside'])}")
    print(f"metric lines: {r['duplicated_metric_lines']} duplicated, {len(r['missing_metric_steps'])} steps missing")
    print(f"final weights equal to an uninterrupted run's: {'yes, bit for bit' if r['final_weights_equal'] else 'no'}"
          + ("" if r["final_weights_equal"] else f" (max abs difference {r['max_abs_diff']})"))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    ok = (r["resumes_worked"] == r["resumes"] and not r["leftovers_at_end"] and not r["duplicated_metric_lines"]
          and not r["missing_metric_steps"] and r["final_weights_equal"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
