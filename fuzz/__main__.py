"""``python -m fuzz``: run a fuzz campaign against the VMMDev + Shared Folders target
(``--target vmmdev``, the default) or the program loader (``--target loader``).

    python -m fuzz --inputs 1000000              # long campaign (atheris when installed)
    python -m fuzz --inputs 2000 --max-time 20   # smoke
    python -m fuzz --engine random --inputs N    # fallback engine, no coverage feedback
    python -m fuzz --target loader --inputs 100000   # mutated ELF files through the loader
    python -m fuzz --reproduce FILE...           # run given inputs once each, report

The loader target (``fuzz/loader_target.py``) feeds each input to the ELF and flat
loaders; its seeds are the well-formed ELFs of ``fuzz/elf.py`` (written to
``--work``/seeds-loader for libFuzzer) and atheris instruments ``hgcmlab.machine.loader``.

The atheris engine is libFuzzer over the instrumented ``devices``, ``services`` and
``runtime`` packages; new coverage-increasing inputs go to ``--work`` (the committed seed
corpus ``fuzz/corpus`` is read but never written), crashes to ``--work``/crash-*.
Exit status: 0 clean, 1 finding.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

SEED_CORPUS = Path(__file__).parent / "corpus"
_INSTRUMENTED = {"vmmdev": ["hgcmlab.devices", "hgcmlab.services", "hgcmlab.runtime"], "loader": ["hgcmlab.machine.loader"]}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs to run (libFuzzer -runs)")
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--target", choices=("vmmdev", "loader"), default="vmmdev",
                        help="what to fuzz: VMMDev + Shared Folders requests, or program files")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hgcmlab-fuzz"),
                        help="working corpus and crash artifacts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-time", type=int, default=0, help="stop after this many seconds (0: no limit)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--reproduce", type=Path, nargs="*", help="run these inputs once each")
    return parser.parse_args(argv)


def _seeds(target: str) -> list[bytes]:
    if target == "loader":
        from fuzz.elf import loader_seeds

        return loader_seeds()
    return [p.read_bytes() for p in sorted(SEED_CORPUS.iterdir()) if p.is_file()]


def _target(name: str) -> Callable[[bytes], None]:
    """The function one input is run through (built after atheris instrumented imports)."""
    if name == "loader":
        from fuzz.loader_target import check_loader

        return check_loader
    from fuzz.harness import Harness

    return Harness().run


def _seed_directory(args: argparse.Namespace) -> Path:
    """The seed corpus libFuzzer reads: the committed one, or the generated loader seeds."""
    if args.target != "loader":
        return SEED_CORPUS
    directory = args.work / "seeds-loader"
    directory.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(_seeds("loader")):
        (directory / f"elf-{index:02d}").write_bytes(seed)
    return directory


def _engine(choice: str) -> str:
    if choice != "auto":
        return choice
    return "atheris" if importlib.util.find_spec("atheris") is not None else "random"


def _run_atheris(args: argparse.Namespace) -> int:
    import atheris

    with atheris.instrument_imports(include=_INSTRUMENTED[args.target]):
        target = _target(args.target)
    work = args.work / ("corpus" if args.target == "vmmdev" else f"corpus-{args.target}")
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def one_input(data: bytes) -> None:
        target(data)

    libfuzzer = [sys.argv[0], f"-runs={args.inputs}", f"-seed={args.seed}", f"-timeout={args.timeout}",
                 "-max_len=4096", f"-artifact_prefix={args.work}/", "-print_final_stats=1",
                 str(work), str(_seed_directory(args))]
    if args.max_time:
        libfuzzer.insert(1, f"-max_total_time={args.max_time}")
    atheris.Setup(libfuzzer, one_input)
    print(f"atheris: {args.inputs} inputs, corpus {work}, started {started:.0f}", flush=True)
    atheris.Fuzz()  # exits the process: 0 when -runs is reached, non-zero on a finding
    return 0


def _run_random(args: argparse.Namespace) -> int:
    from fuzz.engine import campaign

    run_one = _target(args.target)
    deadline = time.monotonic() + args.max_time if args.max_time else None

    def target(data: bytes) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise SystemExit(0)
        run_one(data)

    def progress(stats: object) -> None:
        print(f"random: {getattr(stats, 'inputs')} inputs", flush=True)

    stats = campaign(target, _seeds(args.target), args.inputs, seed=args.seed, timeout=args.timeout,
                     progress=progress)
    print(f"random: {stats.inputs} inputs, {len(stats.findings)} findings", flush=True)
    for data, why in stats.findings:
        args.work.mkdir(parents=True, exist_ok=True)
        path = args.work / f"crash-{abs(hash(data)):x}"
        path.write_bytes(data)
        print(f"finding: {why} -> {path}", flush=True)
    return 1 if stats.findings else 0


def _reproduce(paths: list[Path], target_name: str) -> int:
    target = _target(target_name)
    failed = 0
    for path in paths:
        try:
            target(path.read_bytes())
            print(f"{path}: clean")
        except Exception as exc:  # noqa: BLE001 - report every escape
            failed += 1
            print(f"{path}: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.reproduce:
        return _reproduce(args.reproduce, args.target)
    engine = _engine(args.engine)
    return _run_atheris(args) if engine == "atheris" else _run_random(args)


if __name__ == "__main__":
    sys.exit(main())
