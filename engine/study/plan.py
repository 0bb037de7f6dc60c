"""What a study runs: an ordered list of steps, each one `logg-engine` command line.

Why command lines: each step is then exactly what a user could type (the study prints it),
runs in its own process (a crash or a kill loses that step only), and keeps every rule the
command already has — the scaling grid skips points the store holds, an analysis with the
same parameters replaces itself, `data generate` resumes shard by shard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from engine.errors import SpecError

GPU_ONLY = "waiting for a GPU"


@dataclass(frozen=True)
class Step:
    """One step: a stable key (what state.json remembers), a title, the logg-engine
    arguments, and a rough cost in seconds on a 2-core CPU (for the time-left estimate)."""

    key: str
    title: str
    argv: tuple[str, ...]
    cost_s: float
    skip_reason: str | None = None   # e.g. GPU_ONLY: listed, not run

    @property
    def digest(self) -> str:
        """Changes when the command changes, so an edited plan reruns the step."""
        return hashlib.sha256("\0".join(self.argv).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StudyConfig:
    """A study: the dataset preset it builds and the sizes each part runs at.

    Sizes are training rows; `max_size` caps every size (a quick pass), and a part whose
    sizes are all above the cap runs at the cap instead of disappearing (so the quick pass
    still shows every section of the report)."""

    name: str
    dataset_preset: str
    dataset: str
    sizes: tuple[int, ...]
    vit_sizes: tuple[int, ...]
    vit_gpu_sizes: tuple[int, ...]
    moe_size: int
    gate_size: int
    deleakage_size: int
    templatefit_size: int | None
    gates: tuple[str, ...] = ("logreg", "mlp", "linear")
    snr_gate: bool = True
    crlb: bool = True                # CRLB columns (and so the ceiling step)
    test_split: str = "test"
    lgbm_preset: str = "lgbm-fast"
    vit_preset: str = "vit-cpu"
    vit_overrides: tuple[str, ...] = ()
    generate_size: int | None = None
    device: str = "cpu"
    max_size: int | None = None
    physics: str = "me"             # the generator's physics (engine.generator.physics)
    # the physics `logg-engine study NAME` uses without --physics: research runs on
    # generator v2 (its lattice makes bosz-1m faster to build than v1's exact synthesis and
    # it carries the research data's gravity information); demo and tiny stay on v1, whose
    # continuous-label default set builds in minutes (v2: ~12x the CPU per spectrum)
    default_physics: str = "me"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def folder_name(self) -> str:
        """studies/<name>/, or <name>-<cap> for a quick pass on a smaller dataset."""
        return f"{self.name}-{size_arg(self.generate_size)}" if self.generate_size else self.name

    def with_physics(self, physics: str) -> StudyConfig:
        """The same study on data of another generator physics (`lte` = generator v2): its
        own dataset (`bosz-1m-lte`) and study folder (`research-lte`), so runs on data of
        different generator versions never share a study or a dataset name."""
        from engine.generator.physics import DEFAULT_PHYSICS, check_physics

        if check_physics(physics) == DEFAULT_PHYSICS:
            return self
        return replace(self, physics=physics, name=f"{self.name}-{physics}",
                       dataset=f"{self.dataset}-{physics}")

    def capped(self, max_size: int | None) -> StudyConfig:
        if max_size is None:
            return self
        if max_size <= 0:
            raise SpecError(f"--max-size must be > 0, got {max_size}", key="max-size")
        cap = lambda n: min(n, max_size)  # noqa: E731
        keep = lambda ns: tuple(n for n in ns if n <= max_size) or (max_size,)  # noqa: E731
        return replace(self, sizes=keep(self.sizes), vit_sizes=keep(self.vit_sizes),
                       vit_gpu_sizes=tuple(n for n in self.vit_gpu_sizes if n <= max_size),
                       moe_size=cap(self.moe_size), gate_size=cap(self.gate_size),
                       deleakage_size=cap(self.deleakage_size),
                       templatefit_size=(cap(self.templatefit_size)
                                         if self.templatefit_size else None),
                       max_size=max_size, **self._capped_dataset(max_size))

    def _capped_dataset(self, max_size: int) -> dict:
        """A cap below the preset's training rows builds a smaller dataset under its own
        name (`bosz-1m-100k`): shards are a pure function of their names, so a quick pass
        must not leave differently split shards in the full dataset's folder."""
        from engine.generator.presets import get_preset

        if max_size >= get_preset(self.dataset_preset).train_rows:
            return {}
        return {"generate_size": max_size, "dataset": f"{self.dataset}-{size_arg(max_size)}"}


K, M = 1000, 1_000_000

STUDIES: dict[str, StudyConfig] = {
    # The research's own scale (ORIGINAL_SYSTEM: 50k–1M, test_10k, MoE at 1M).
    "research": StudyConfig(
        name="research", dataset_preset="bosz-1m", dataset="bosz-1m",
        sizes=(50 * K, 100 * K, 200 * K, 500 * K, M),
        vit_sizes=(50 * K, 100 * K), vit_gpu_sizes=(200 * K, 500 * K, M),
        moe_size=M, gate_size=M, deleakage_size=100 * K, templatefit_size=2 * K,
        test_split="test_10k", default_physics="lte"),
    # The demo: the same steps on the default data, small enough for ~10 minutes.
    "demo": StudyConfig(
        name="demo", dataset_preset="default", dataset="default",
        sizes=(2 * K, 5 * K, 10 * K, 30 * K), vit_sizes=(10 * K,), vit_gpu_sizes=(),
        moe_size=10 * K, gate_size=10 * K, deleakage_size=5 * K, templatefit_size=None,
        gates=("logreg",), snr_gate=False, vit_overrides=("epochs=3",)),
    # Seconds per step, no CRLBs (so no ceiling): what the tests run.
    "tiny": StudyConfig(
        name="tiny", dataset_preset="tiny", dataset="tiny", sizes=(500, 1000),
        vit_sizes=(500,), vit_gpu_sizes=(1000,), moe_size=1000, gate_size=1000,
        deleakage_size=500, templatefit_size=None, gates=("logreg",), snr_gate=False,
        vit_overrides=("epochs=1",), crlb=False),
}


def get_study(name: str) -> StudyConfig:
    if name not in STUDIES:
        raise SpecError(f"unknown study {name!r}", key="study",
                        hint=f"use one of: {', '.join(STUDIES)}")
    return STUDIES[name]


def size_arg(n: int) -> str:
    """50000 → '50k', 1000000 → '1M' (what --size accepts)."""
    if n % M == 0:
        return f"{n // M}M"
    return f"{n // K}k" if n % K == 0 else str(n)


def plan_steps(cfg: StudyConfig, *, gpu: bool = False) -> list[Step]:
    """The study's steps in order. Costs are rough 2-core CPU seconds measured on earlier
    runs (ridge ~0.5 ms/row, lgbm-fast ~2.5 ms/row + 5 min, vit-cpu ~17 ms/row, generation
    with CRLBs ~4 ms/row, the 1M MoE oracles ~0.6 ms/row and gates ~0.2 ms/row, de-leakage
    ~3 ms/row); the runner rescales each kind by what it measures as it goes."""
    ds = ("--dataset", cfg.dataset)
    gen = ["data", "generate", "--preset", cfg.dataset_preset, "--name", cfg.dataset]
    if cfg.generate_size is not None:
        gen += ["--size", size_arg(cfg.generate_size)]
    if not cfg.crlb:
        gen += ["--no-crlb"]
    if cfg.physics != "me":
        gen += ["--physics", cfg.physics]
    if cfg.device != "cpu":                 # a GPU study also synthesises on the GPU
        gen += ["--device", cfg.device]
    rows = cfg.generate_size or max(cfg.sizes + cfg.vit_sizes)
    steps = [Step("data", f"build dataset {cfg.dataset}", tuple(gen), 4e-3 * rows + 30)]
    grid = ("scaling", *ds, "--test-split", cfg.test_split)
    for model, preset, per_row, fixed in (("ridge", None, 5e-4, 20),
                                          ("lgbm", cfg.lgbm_preset, 2.5e-3, 300)):
        for n in cfg.sizes:
            argv = (*grid, "--models", model, "--sizes", size_arg(n))
            argv += ("--preset", f"{model}={preset}") if preset else ()
            steps.append(Step(f"{model}-{size_arg(n)}", f"{model} at {size_arg(n)}", argv,
                              per_row * n + fixed))
    vit_sets = tuple(a for o in cfg.vit_overrides for a in ("--set", f"vit:{o}"))
    for n in sorted(set(cfg.vit_sizes) | set(cfg.vit_gpu_sizes)):
        on_gpu = n in cfg.vit_gpu_sizes and n not in cfg.vit_sizes
        device = "cuda" if on_gpu else cfg.device
        argv = (*grid, "--models", "vit", "--sizes", size_arg(n),
                "--preset", f"vit={cfg.vit_preset}", "--device", device, *vit_sets)
        steps.append(Step(f"vit-{size_arg(n)}", f"vit ({cfg.vit_preset}) at {size_arg(n)}",
                          argv, 1.7e-2 * n * (0.2 if cfg.vit_overrides else 1) + 30,
                          skip_reason=GPU_ONLY if on_gpu and not gpu else None))
    # an analysis the store already holds (same parameters, same data) is shown, not redone
    moe = ("--size", size_arg(cfg.moe_size), *ds, "--if-missing")
    gate = ("--size", size_arg(cfg.gate_size), *ds, "--if-missing")
    steps += [
        Step("moe-oracle-snr", "MoE oracle, SNR bins",
             ("moe", "oracle", "--bins", "snr", *moe), 6e-4 * cfg.moe_size + 60),
        Step("moe-oracle-teff-mh", "MoE oracle, Teff×[M/H] bins",
             ("moe", "oracle", "--bins", "teff-mh", *moe), 6e-4 * cfg.moe_size + 60),
    ]
    for g in cfg.gates:
        steps.append(Step(f"moe-gate-{g}", f"MoE gate {g}, Teff×[M/H] bins",
                          ("moe", "gate", "--bins", "teff-mh", "--gate", g, *gate),
                          2e-4 * cfg.gate_size + 40))
    if cfg.snr_gate:
        steps.append(Step("moe-gate-snr", "MoE gate logreg, SNR bins",
                          ("moe", "gate", "--bins", "snr", "--gate", "logreg", *gate),
                          2e-4 * cfg.gate_size + 40))
    steps.append(Step("deleakage", "error-vector de-leakage",
                      ("deleakage", "--size", size_arg(cfg.deleakage_size), *ds,
                       "--if-missing"),
                      3.2e-3 * cfg.deleakage_size + 20))
    if cfg.templatefit_size:   # 10 min at 2k on test_10k (2.2 study, 2026-12-07)
        steps.append(Step("template-fit", "template fit",
                          (*grid, "--models", "template-fit", "--sizes",
                           size_arg(cfg.templatefit_size)), 600))
    if cfg.crlb:
        steps.append(Step("ceiling", "physical ceiling, every run beside it",
                          ("ceiling", *ds), 10))
    return steps
