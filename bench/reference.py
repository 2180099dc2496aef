"""GAN Studio against a reference implementation's own code: the training step and the generator
forward of junyanz/pytorch-CycleGAN-and-pix2pix, yunjey/stargan or rosinality/stylegan2-pytorch,
imported from a local checkout, next to GAN Studio's on the same architecture, batch, image size
and losses, interleaved round by round in one process (so both see the same spells of load).

    python bench/reference.py --reference ~/src/pytorch-CycleGAN-and-pix2pix [--threads 1]
        [--rounds 5] [--steps 1] [--precision auto fp32] [--workloads pix2pix-256 ...]
        [--parts train forward]

The checkout's kind is detected from its files; its modules are imported from that path (put on
sys.path), nothing of it is copied here. Without --reference the bench says how to get one and
times bench/train_step.py's re-created reference configuration (fp32, NCHW, loop Adam) instead.

Workloads (GAN Studio preset, reference configuration):

- pix2pix-256: pix2pix-facades (unet_256, batch 1, 256 px, batch norm, dropout, vanilla GAN, L1
  100) against junyanz's Pix2PixModel: ``set_input`` + ``optimize_parameters`` per step.
- cyclegan-128, cyclegan-256: cyclegan-horse2zebra (resnet_9blocks, instance norm, LSGAN, cycle
  10, identity 0.5, pools of 50) at 128 / 256 px against junyanz's CycleGANModel.
- stargan-128: stargan-celeba (128 px, batch 16, 5 attributes, WGAN-GP) against yunjey's
  ``Solver.train()`` run for n_critic = 5 iterations: one unit is 5 D steps and 1 G step.
- stylegan-64: stylegan-ffhq at 64 px, channel multiplier 1, batch 2 (style 512, 8 mapping
  layers, mixing 0.9, R1 10 every 16 steps, path length 2 every 4) against the body of
  rosinality's ``train()`` loop, written here as a function that calls their modules (Generator,
  Discriminator, and train.py's mixing_noise, d_logistic_loss, d_r1_loss, g_nonsaturating_loss,
  g_path_regularize, requires_grad, accumulate), from data to the EMA update, without the logging.
  Each round times one step of each kind (plain, path length, R1 + path length) on both sides, by
  setting the step counter the intervals read, and weighs them 12 : 3 : 1 as a 16-step cycle holds
  them.

Generator forward: the reference's generator as its test script runs it (no_grad; junyanz and
yunjey keep their nets in training mode, rosinality's g_ema in eval with random noise) against
GAN Studio's generator at each ``--precision`` (inference_mode, the same mode) and against the
Translator loaded from an exported model file (``trainer.api.load_model``, ``run_tensor``: what
the studio and scripts run, with its input checks and its own precision).

``--precision``: GAN Studio's side; ``auto`` is what the presets run (bf16 autocast on a CPU with
native bf16, on CUDA), ``fp32`` compares like with like. The reference always runs as it is
(fp32). Ratios are reference / GAN Studio: above 1 means GAN Studio is faster.

rosinality's op/fused_act.py and op/upfirdn2d.py compile CUDA extensions on import; this bench
makes ``torch.utils.cpp_extension.load`` return a stand-in while they import, so their own
pure-PyTorch CPU paths run (``fused_leaky_relu`` and ``upfirdn2d`` branch on the device), and
stands in for tqdm and lmdb when they are not installed (train.py imports them; the step uses
neither). A checkout too old to have CPU paths stops with a message naming the extension.

The re-creation (bench/train_step.py's "reference" variant) is timed in the same rounds and
printed as re-created / real (within 10 % is agreement). Measured 2026-11-30 with this machine's
other work paused (2 cores, load average 1-2, 1 thread, 7 rounds, torch 2.14.1, CPU clock):
pix2pix 256 0.92, CycleGAN 128 0.96: they agree; StarGAN 128 batch 16 (3 rounds) 0.77: the
re-creation did less than yunjey's Solver.train() (66.8 against 86.4 s per n_critic iteration).
Since the re-creation also runs oneDNN's direct convolutions on small maps (2026-11-30, load
0.8-1.1): pix2pix 256 1.00 (3 rounds), StarGAN 0.89 (2 rounds); and since it also runs yunjey's
passes for StarGAN (``StarGAN.plain_passes``: the D step's fake made with G's graph, reals and fakes
in two D passes, G's fake computed again), StarGAN 0.92 (2 rounds, load 1.0-1.6): within 10 %,
they agree for all three. Earlier runs beside other work scattered by 16-23 %
(2026-11-29: pix2pix 1.00 and 1.23, CycleGAN 1.16 and 0.84, StarGAN 0.90). Prefer the real code
whenever a checkout is at hand.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import json
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch

from timing import load_average, machine_line, median, time_interleaved
from train_step import build
from trainer.api import load_model
from trainer.device import resolve_device, resolve_precision, use_channels_last
from trainer.modelfile import save_model

CLONE = {
    "junyanz": "git clone https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix",
    "stargan": "git clone https://github.com/yunjey/stargan",
    "rosinality": "git clone https://github.com/rosinality/stylegan2-pytorch",
}
SOURCE = {"junyanz": "junyanz/pytorch-CycleGAN-and-pix2pix", "stargan": "yunjey/stargan",
          "rosinality": "rosinality/stylegan2-pytorch"}


@dataclass
class Workload:
    kind: str  # the reference implementation
    title: str
    preset: str
    overrides: list[str] = field(default_factory=list)
    unit: str = "step"
    unit_steps: int = 1  # GAN Studio train_step calls per unit
    # kinds of step -> (step counter that makes one, steps of that kind per regularisation cycle)
    phases: dict[str, tuple[int, int]] = field(default_factory=dict)


#: StyleGAN2's 16-step cycle with R1 every 16 steps and path length every 4 (counter % interval == 0)
STYLEGAN_CYCLE = {"plain": (1, 12), "path length": (4, 3), "R1 + path length": (0, 1)}


WORKLOADS = {
    "pix2pix-256": Workload("junyanz", "pix2pix unet_256, batch 1, 256 px", "pix2pix-facades"),
    "cyclegan-128": Workload("junyanz", "CycleGAN resnet_9blocks, batch 1, 128 px", "cyclegan-horse2zebra",
                             ["data.image_size=128"]),
    "cyclegan-256": Workload("junyanz", "CycleGAN resnet_9blocks, batch 1, 256 px", "cyclegan-horse2zebra"),
    "stargan-128": Workload("stargan", "StarGAN 128 px, batch 16", "stargan-celeba",
                            unit="n_critic iteration (5 D steps, 1 G step)", unit_steps=5),
    "stylegan-64": Workload("rosinality", "StyleGAN2 64 px, channel multiplier 1, batch 2", "stylegan-ffhq",
                            ["data.image_size=64", "model.channel_multiplier=1", "train.batch_size=2"],
                            unit="step (mean over the 16-step cycle: 12 plain, 3 path length, 1 R1 + path length)",
                            phases=STYLEGAN_CYCLE),
}


def detect(path: Path) -> str:
    """Which reference a checkout is, from its files."""
    if (path / "models" / "networks.py").is_file() and (path / "models" / "cycle_gan_model.py").is_file():
        return "junyanz"
    if (path / "solver.py").is_file() and (path / "model.py").is_file():
        return "stargan"
    if (path / "op" / "upfirdn2d.py").is_file() and (path / "model.py").is_file() and (path / "train.py").is_file():
        return "rosinality"
    raise SystemExit(f"{path}: not a checkout of {', '.join(SOURCE.values())} (looked for models/networks.py, "
                     "solver.py, op/upfirdn2d.py)")


def quiet():
    """The reference code prints its networks while building them."""
    return contextlib.redirect_stdout(io.StringIO())


# -- the reference side: (training unit, generator forward) from their modules
def junyanz(workload: Workload, cfg, batch: dict, device: torch.device):
    from models import create_model  # noqa: the checkout's models package
    m = cfg.model
    pix2pix = cfg.method == "pix2pix"
    opt = argparse.Namespace(  # their train_options defaults with the model's modify_commandline_options
        model="pix2pix" if pix2pix else "cycle_gan", isTrain=True, gpu_ids=[0] if device.type == "cuda" else [],
        device=device,  # read by checkouts from 2025 on (their DDP rewrite); older ones use gpu_ids
        checkpoints_dir=tempfile.gettempdir(), name="bench", preprocess="resize_and_crop", direction="AtoB",
        input_nc=3, output_nc=3, ngf=m.ngf, ndf=m.ndf, netD="basic", n_layers_D=3, norm=m.norm,
        netG=f"unet_{cfg.data.image_size}" if pix2pix else f"resnet_{m.n_blocks}blocks",
        no_dropout=not m.dropout, init_type="normal", init_gain=0.02, gan_mode=m.gan_mode,
        pool_size=0 if pix2pix else m.pool_size, lr=cfg.train.lr, beta1=cfg.train.beta1,
        lambda_L1=getattr(m, "lambda_l1", 100.0), lambda_A=getattr(m, "lambda_A", 10.0),
        lambda_B=getattr(m, "lambda_B", 10.0), lambda_identity=getattr(m, "lambda_identity", 0.5))
    with quiet():
        model = create_model(opt)
    data = {"A": batch["A"].to(device), "B": batch["B"].to(device), "A_paths": [], "B_paths": []}

    def step():
        model.set_input(data)
        model.optimize_parameters()
    G = model.netG if pix2pix else model.netG_A  # test.py: no model.eval() unless --eval

    def forward():
        with torch.no_grad():
            G(data["A"])
    step()  # warmed up as GAN Studio's side is (bench/train_step.py)
    return step, forward


def stargan(workload: Workload, cfg, batch: dict, device: torch.device):
    from solver import Solver  # noqa: the checkout's solver.py
    m, t = cfg.model, cfg.train
    never = 10 ** 9  # no logging, sampling, saving or learning-rate decay inside the timed iterations
    config = argparse.Namespace(
        c_dim=len(m.selected_attrs), c2_dim=8, image_size=cfg.data.image_size, g_conv_dim=m.g_conv_dim,
        d_conv_dim=m.d_conv_dim, g_repeat_num=m.g_repeat_num, d_repeat_num=m.d_repeat_num,
        lambda_cls=m.lambda_cls, lambda_rec=m.lambda_rec, lambda_gp=m.lambda_gp, dataset="CelebA",
        batch_size=t.batch_size, num_iters=m.n_critic, num_iters_decay=0, g_lr=t.lr, d_lr=t.lr,
        n_critic=m.n_critic, beta1=t.beta1, beta2=t.beta2, resume_iters=None, selected_attrs=list(m.selected_attrs),
        test_iters=0, use_tensorboard=False, log_dir=tempfile.gettempdir(), sample_dir=tempfile.gettempdir(),
        model_save_dir=tempfile.gettempdir(), result_dir=tempfile.gettempdir(), log_step=never,
        sample_step=never, model_save_step=never, lr_update_step=never)
    x, label = batch["image"], batch["label"]
    with quiet():
        solver = Solver([(x, label)], None, config)  # their loader: a list of one batch
    if solver.device != device:  # the solver picks CUDA when it sees one
        solver.device = device
        solver.G.to(device)
        solver.D.to(device)

    def step():  # one n_critic iteration of their train(): n_critic D steps, then one G step
        with quiet():
            solver.train()

    def forward():  # their test(): G in training mode under no_grad
        with torch.no_grad():
            solver.G(x.to(device), label.to(device))
    step()
    return step, forward


class _NoExtension:
    """What rosinality's op modules get from ``load`` here: the CPU path never touches it."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        raise RuntimeError(f"rosinality's CUDA extension {self.name!r} is not built (bench/reference.py runs its CPU "
                           "path); this checkout has no pure-PyTorch fallback: use a newer one")


@contextlib.contextmanager
def cpu_fallbacks():
    """rosinality's modules imported without compiling their CUDA extensions (see the docstring)."""
    import torch.utils.cpp_extension as ext
    saved = ext.load
    ext.load = lambda name, *args, **kwargs: _NoExtension(name)
    for name in ("tqdm", "lmdb"):
        try:
            importlib.import_module(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.tqdm = lambda it, *args, **kwargs: it
            sys.modules[name] = stub
    try:
        yield
    finally:
        ext.load = saved


def rosinality(workload: Workload, cfg, batch: dict, device: torch.device):
    with cpu_fallbacks():
        model = importlib.import_module("model")  # the checkout's model.py and train.py
        train = importlib.import_module("train")
    m, t = cfg.model, cfg.train
    size, b = cfg.data.image_size, t.batch_size
    args = argparse.Namespace(batch=b, latent=m.style_dim, mixing=m.mixing, r1=m.r1, d_reg_every=m.d_reg_every,
                              path_regularize=m.path_regularize, g_reg_every=m.g_reg_every,
                              path_batch_shrink=m.path_batch_shrink)
    make = dict(channel_multiplier=m.channel_multiplier)
    generator = model.Generator(size, m.style_dim, m.n_mlp, **make).to(device)
    discriminator = model.Discriminator(size, **make).to(device)
    g_ema = model.Generator(size, m.style_dim, m.n_mlp, **make).to(device)
    g_ema.eval()
    train.accumulate(g_ema, generator, 0)
    g_reg_ratio = args.g_reg_every / (args.g_reg_every + 1)
    d_reg_ratio = args.d_reg_every / (args.d_reg_every + 1)
    g_optim = torch.optim.Adam(generator.parameters(), lr=t.lr * g_reg_ratio,
                               betas=(0 ** g_reg_ratio, 0.99 ** g_reg_ratio))
    d_optim = torch.optim.Adam(discriminator.parameters(), lr=t.lr * d_reg_ratio,
                               betas=(0 ** d_reg_ratio, 0.99 ** d_reg_ratio))
    accum = 0.5 ** (32 / (10 * 1000))
    state = {"i": 0, "mean_path_length": 0}
    images = batch["image"].to(device)

    def one_step():  # the body of train.py's train() loop, augmentation off, logging left out
        i = state["i"]
        real_img = images.clone()  # a fresh batch from their loader each iteration
        train.requires_grad(generator, False)
        train.requires_grad(discriminator, True)
        noise = train.mixing_noise(args.batch, args.latent, args.mixing, device)
        fake_img, _ = generator(noise)
        fake_pred = discriminator(fake_img)
        real_pred = discriminator(real_img)
        d_loss = train.d_logistic_loss(real_pred, fake_pred)
        discriminator.zero_grad()
        d_loss.backward()
        d_optim.step()
        if i % args.d_reg_every == 0:
            real_img.requires_grad = True
            real_pred = discriminator(real_img)
            r1_loss = train.d_r1_loss(real_pred, real_img)
            discriminator.zero_grad()
            (args.r1 / 2 * r1_loss * args.d_reg_every + 0 * real_pred[0]).backward()
            d_optim.step()
        train.requires_grad(generator, True)
        train.requires_grad(discriminator, False)
        noise = train.mixing_noise(args.batch, args.latent, args.mixing, device)
        fake_img, _ = generator(noise)
        fake_pred = discriminator(fake_img)
        g_loss = train.g_nonsaturating_loss(fake_pred)
        generator.zero_grad()
        g_loss.backward()
        g_optim.step()
        if i % args.g_reg_every == 0:
            path_batch_size = max(1, args.batch // args.path_batch_shrink)
            noise = train.mixing_noise(path_batch_size, args.latent, args.mixing, device)
            fake_img, latents = generator(noise, return_latents=True)
            path_loss, state["mean_path_length"], _ = train.g_path_regularize(fake_img, latents,
                                                                              state["mean_path_length"])
            generator.zero_grad()
            weighted_path_loss = args.path_regularize * args.g_reg_every * path_loss
            if args.path_batch_shrink:
                weighted_path_loss += 0 * fake_img[0, 0, 0, 0]
            weighted_path_loss.backward()
            g_optim.step()
        train.accumulate(g_ema, generator, accum)
        state["i"] = i + 1

    def step(phase=None):
        if phase is not None:
            state["i"] = phase
        one_step()
    z = torch.randn(b, m.style_dim, generator=torch.Generator().manual_seed(0)).to(device)

    def forward():  # generate.py: g_ema in eval, no_grad, truncation 1, random noise
        with torch.no_grad():
            g_ema([z])
    for _ in range(2):  # as GAN Studio's side is warmed up (bench/train_step.py: two steps)
        one_step()
    return step, forward


REFERENCES = {"junyanz": junyanz, "stargan": stargan, "rosinality": rosinality}


# -- GAN Studio's side
def generator_call(method, batch: dict):
    """The method's generator on the batch, as the reference's test script calls its own."""
    name = method.cfg.method
    if name == "stargan":
        x, c = method.to_device(batch["image"]), method.to_device(batch["label"])
        return lambda: method.G(x, c)
    if name == "stylegan":
        z = torch.randn(method.cfg.train.batch_size, method.cfg.model.style_dim,
                        generator=torch.Generator().manual_seed(0)).to(method.device)
        return lambda: method.G_ema([z])
    x = method.to_device(batch["A"])
    G = method.nets["G"] if "G" in method.nets else method.nets["G_A"]
    return lambda: G(x)


def translator_call(method, batch: dict, folder: Path):
    """The exported model's Translator, loaded as the studio loads it, on the same batch."""
    tensors, card = method.export()
    path = save_model(folder / f"{method.cfg.method}.safetensors", tensors, card)
    translator = load_model(path, method.device)
    name = method.cfg.method
    if name == "stargan":
        return lambda: translator.run_tensor(batch["image"], c=batch["label"])
    if name == "stylegan":
        z = torch.randn(method.cfg.train.batch_size, method.cfg.model.style_dim,
                        generator=torch.Generator().manual_seed(0))
        return lambda: translator.run_tensor(z=z, psi=1.0, noise_mode="random")
    return lambda: translator.run_tensor(batch["A"])


def ours(method, batch: dict, steps: int):
    def step(phase=None):
        if phase is not None:  # the step counter the regularisation intervals read
            for s in method.schedulers.values():
                s.last_epoch = phase
        for _ in range(steps):
            method.train_step(batch)
    G = generator_call(method, batch)

    def forward():
        with torch.inference_mode(), method.autocast():
            G()
    return step, forward


def precisions(names: list[str], device: torch.device) -> dict[str, str]:
    """Label -> train.precision value for each ``--precision`` (auto resolved as the presets run it)."""
    out = {}
    for name in names:
        value = {"fp32": "off", "bf16": "bf16"}.get(name) or ("bf16" if resolve_precision("auto", device) else "off")
        out[f"ours {'fp32' if value == 'off' else value}"] = value
    return out


def run_workload(key: str, workload: Workload, reference: str | None, a, device: torch.device, folder: Path):
    extra = list(workload.overrides)
    labels = precisions(a.precision, device)
    channels_last = use_channels_last("auto", device)
    warmup = max(2, workload.unit_steps)  # one n_critic cycle for StarGAN
    made = {label: build(workload.preset, device, value, channels_last, False, extra, warmup)
            for label, value in labels.items()}
    method, batch = next(iter(made.values()))
    train, forward = {}, {}
    recreated = None
    if not reference or not a.no_recreation:
        recreated = build(workload.preset, device, "off", False, True, extra, warmup)
    if reference:
        torch.manual_seed(0)
        train["reference"], forward["reference"] = REFERENCES[reference](workload, method.cfg, batch, device)
    else:  # the re-created reference stands in; its generator forward is GAN Studio's generator in fp32
        train["reference"], forward["reference"] = ours(*recreated, workload.unit_steps)
        recreated = None
    for label, (m, b) in made.items():
        train[label], forward[f"{label} G"] = ours(m, b, workload.unit_steps)
    forward["ours Translator"] = translator_call(method, batch, folder)
    if recreated is not None:
        train["re-created reference (train_step.py)"] = ours(*recreated, workload.unit_steps)[0]
    for run in forward.values():  # first calls set up kernels and buffers
        run()
    variants = {f"train: {k}": v for k, v in train.items()} if "train" in a.parts else {}
    if not variants:
        train = {}
    if workload.phases and variants:  # each kind of step timed on its own, weighted as one cycle holds them
        variants = {f"{name} @{kind}": functools.partial(run, phase) for name, run in variants.items()
                    for kind, (phase, _) in workload.phases.items()}
    if "forward" in a.parts:
        variants.update({f"forward: {k}": v for k, v in forward.items()})
    timings = time_interleaved(variants, a.rounds, a.steps, device)
    clocks = {"wall": timings.wall, "CPU": timings.cpu}
    if workload.phases and train:
        clocks = {clock: cycle(times, train, workload.phases) for clock, times in clocks.items()}
    source = f"{SOURCE[reference]} code" if reference else "re-created reference configuration (bench/train_step.py)"
    print(f"\n{key}: {workload.title}; reference: {source}; load average {load_average()}", flush=True)
    report(clocks, workload.unit)
    return {"title": workload.title, "unit": workload.unit, "source": source, "load_average": load_average(),
            **clocks}


def cycle(times: dict[str, list[float]], train: dict, phases: dict) -> dict[str, list[float]]:
    """Each training variant's kinds of step weighted as one regularisation cycle holds them, per round."""
    total = sum(n for _, n in phases.values())
    out = {}
    for name in train:
        kinds = [(times[f"train: {name} @{kind}"], n) for kind, (_, n) in phases.items()]
        out[f"train: {name}"] = [sum(ts[r] * n for ts, n in kinds) / total for r in range(len(kinds[0][0]))]
    return {**out, **{k: v for k, v in times.items() if k.startswith("forward: ")}}


def report(clocks: dict[str, dict[str, list[float]]], unit: str) -> None:
    """Medians (and minima) over the rounds on each clock, and each variant's ratio to the reference
    of its part: the median over the rounds of the ratio within a round, so that each ratio pairs
    figures taken side by side."""
    for part, per in (("train", unit), ("forward", "batch")):
        if f"{part}: reference" not in clocks["wall"]:
            continue
        print(f"  {'training' if part == 'train' else 'generator forward'}, s per {per}: median (min) on each clock; "
              "ratio to the reference: median of the rounds' ratios")
        for name in (n for n in clocks["wall"] if n.startswith(part + ": ")):
            label = name.split(": ", 1)[1]
            recreated = label.startswith("re-created")
            cells, ratios = [], []
            for clock, times in clocks.items():
                cells.append(f"{clock} {median(times[name]):8.3f} ({min(times[name]):.3f})")
                pairs = zip(times[f"{part}: reference"], times[name])
                r = median([t / base if recreated else base / t for base, t in pairs])
                ratios.append(f"{clock} {r:.2f}" + ((" (off by > 10 %)" if abs(r - 1) > 0.10 else "") if recreated else "x"))
            note = ("  re-created / real: " if recreated else "  reference / ours: ") + ", ".join(ratios)
            print(f"    {label:38s} {'  '.join(cells)}{note if label != 'reference' else ''}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", type=Path, help="a local checkout of " + ", ".join(SOURCE.values()))
    p.add_argument("--workloads", nargs="+", choices=list(WORKLOADS),
                   help="default: those of the reference (without one: all)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=1, help="units per round and variant (a unit: see each workload)")
    p.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "bf16", "fp32"],
                   help="GAN Studio's side: auto (as the presets run: bf16 autocast where native), bf16, fp32")
    p.add_argument("--no-recreation", action="store_true",
                   help="leave out bench/train_step.py's re-created reference configuration")
    p.add_argument("--parts", nargs="+", default=["train", "forward"], choices=["train", "forward"],
                   help="what to time: training steps, generator forwards (default both)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, help="also write every round's figures there")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    reference = None
    if a.reference:
        path = a.reference.expanduser().resolve()
        reference = detect(path)
        sys.path.insert(0, str(path))
    else:
        print("No --reference: timing the re-created reference configuration of bench/train_step.py instead.\n"
              "For the reference code itself, get a checkout and pass its folder:\n"
              + "\n".join(f"  {c}" for c in CLONE.values()))
    keys = a.workloads or [k for k, w in WORKLOADS.items() if reference in (None, w.kind)]
    wrong = [k for k in keys if reference and WORKLOADS[k].kind != reference]
    if wrong:
        raise SystemExit(f"{', '.join(wrong)}: not a workload of {SOURCE[reference]}")
    print(machine_line(device))
    results = {"machine": machine_line(device), "rounds": a.rounds, "steps": a.steps}
    with tempfile.TemporaryDirectory() as folder:
        for key in keys:
            results[key] = run_workload(key, WORKLOADS[key], reference, a, device, Path(folder))
            if a.json:
                a.json.write_text(json.dumps(results, indent=1))
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
