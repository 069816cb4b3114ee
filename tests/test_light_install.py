"""The offline core install (issue 20), the sibling of test_architecture.py's import graph.

In a subprocess where every module of every pip extra is blocked (torch, torchvision, timm, open_clip,
pyarrow, scikit-learn...: what `pip install rqvqa` leaves out), rqvqa, its CLI and the offline models work,
and no module of rqvqa on their path even tries to import one of those; a network model, `extract` of a
network source, `train`, `convert` and a Parquet result each say in one line which extra to install, exit
non-zero and write nothing. The block reaches the pipeline's spawned workers too (a `sitecustomize` on
PYTHONPATH). Statically, no module that the offline commands and models import at import time imports an
extra's module at import time."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO
from test_architecture import _modules, _type_checking_only

from rqvqa.extras import EXTRAS

#: what the core must run without: every extra's modules, and the test suite's own extras
BLOCKED = sorted({m for modules in EXTRAS.values() for m in modules} | {"skimage", "pandas", "pytorchvideo"})

#: installed in every process of the run: a finder refuses the blocked modules as if they were not
#: installed (an import raises ModuleNotFoundError, so does `importlib.util.find_spec`), and an import
#: statement of one of them made by rqvqa's code is logged even when the caller catches the error
SITECUSTOMIZE = """
import builtins, importlib.abc, os, sys

_BLOCKED = frozenset(os.environ["RQVQA_TEST_BLOCK"].split(","))
_LOG = os.environ["RQVQA_TEST_BLOCK_LOG"]


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
_import = builtins.__import__


def _logged(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if level == 0 and name.partition(".")[0] in _BLOCKED and importer.startswith("rqvqa"):
        with open(_LOG, "a") as log:
            log.write(f"{importer} imports {name}\\n")
    return _import(name, globals, locals, fromlist, level)


builtins.__import__ = _logged
"""

#: the runs, in one interpreter (rqvqa.cli.main called in-process); the offline part first, then the log is
#: read, then the commands that need an extra
DRIVER = """
import contextlib, io, json, os, sys
from pathlib import Path

clip, tmp = sys.argv[1], Path(sys.argv[2])
log = Path(os.environ["RQVQA_TEST_BLOCK_LOG"])
import rqvqa
from rqvqa.cli import main


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue()}


result = {"cards": {c["name"]: [c["status"], c["extra"]] for c in rqvqa.list_models()}}
result["lite"] = run("predict", clip, "--json", "--workers", "1")
result["diagnose"] = run("diagnose", clip, "--json")
result["list"] = run("predict", "--list-models")
result["jsonl"] = run("predict", clip, "--model", "niqe", "--max-frames", "1", "--out", str(tmp / "r.jsonl"))
result["info"] = run("info", clip, "--json")
result["synth"] = run("synth", str(tmp / "s.mp4"), "--size", "64x48", "--seconds", "1")
result["weights"] = run("weights", "list", "--json")
head = "path,model,status,score,lower_better,per_second,second_frames,error"
rows = [f"v{i}.mp4,lite,ok,{i},false,{i},0," for i in range(1, 6)]
(tmp / "p.csv").write_text("\\n".join([head, *rows]))
labels = [f"v{i}.mp4,{mos}" for i, mos in zip(range(1, 6), (1, 2, 4, 3, 5))]  # one swap: SRCC 0.9
(tmp / "l.csv").write_text("\\n".join(["video,mos", *labels]))
result["evaluate"] = run("evaluate", str(tmp / "p.csv"), str(tmp / "l.csv"), "--fit", "none", "--json")
result["offline_imports"] = log.read_text() if log.exists() else ""
(tmp / "m.csv").write_text(f"video,mos,group\\n{clip},3.0,a\\n")
result["liqe"] = run("predict", clip, "--model", "liqe", "--out", str(tmp / "liqe.jsonl"))
result["parquet"] = run("predict", clip, "--out", str(tmp / "r.parquet"))
result["extract"] = run("extract", str(tmp / "m.csv"), "--sources", "liqe", "--store", str(tmp / "store"))
result["train"] = run("train", str(tmp / "m.csv"), "--features", "f.npy", "--out", str(tmp / "trained"))
result["convert"] = run("convert", "x.pth", "-o", str(tmp / "x.safetensors"), "--kind", "rqvqa")
result["benchmark"] = run("benchmark-features", "f.npy", "mos.csv")
result["written"] = sorted(p.name for p in tmp.iterdir())
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def blocked_run(tmp_path_factory, small_video):
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    work = tmp_path_factory.mktemp("light")
    log = site / "imports.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "src")]),
        "RQVQA_TEST_BLOCK": ",".join(BLOCKED),
        "RQVQA_TEST_BLOCK_LOG": str(log),
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(small_video), str(work)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_block_covers_the_networks():
    networks = {"torch", "torchvision", "timm", "open_clip", "huggingface_hub", "safetensors"}
    assert networks | {"pyarrow", "sklearn", "openpyxl"} <= set(BLOCKED)


def test_the_offline_models_run_without_any_extra_and_never_try_torch(blocked_run):
    assert blocked_run["offline_imports"] == ""  # not even a guarded `import torch` on the offline path
    lite = blocked_run["lite"]
    assert lite["rc"] == 0, lite["err"]
    (row,) = json.loads(lite["out"])
    assert row["status"] == "ok" and 1 <= row["score"] <= 5 and row["model"] == "lite"
    diagnose = blocked_run["diagnose"]
    assert diagnose["rc"] == 0, diagnose["err"]
    assert json.loads(diagnose["out"])[0]["status"] == "ok"
    assert blocked_run["jsonl"]["rc"] == 0 and "r.jsonl" in blocked_run["written"]
    for command in ("info", "synth", "weights", "evaluate"):  # the other commands of the core
        assert blocked_run[command]["rc"] == 0, (command, blocked_run[command]["err"])
    assert json.loads(blocked_run["evaluate"]["out"])["metrics"]["SRCC"] == pytest.approx(0.9)


def test_the_listing_says_which_models_need_which_extra(blocked_run):
    cards = blocked_run["cards"]
    for name in ("lite", "lite-v1", "videval", "videval-light", "brisque", "niqe"):
        assert cards[name] == ["offline", None], name
    for name in ("liqe", "fastvqa", "qalign", "rqvqa-kvq"):
        assert cards[name] == ["needs extra", "models"], name
    listing = blocked_run["list"]
    assert listing["rc"] == 0 and "rqvqa[models]" in listing["out"] and "needs extra" in listing["out"]


@pytest.mark.parametrize(
    ("run", "extra", "leftover"),
    [
        ("liqe", "models", "liqe.jsonl"),
        ("parquet", "parquet", "r.parquet"),
        ("extract", "models", "store"),
        ("train", "models", "trained"),
        ("convert", "models", "x.safetensors"),
        ("benchmark", "benchmark", None),
    ],
)
def test_what_needs_an_extra_names_it_in_one_line_and_writes_nothing(blocked_run, run, extra, leftover):
    outcome = blocked_run[run]
    assert outcome["rc"] != 0
    err = outcome["err"].strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("rqvqa: error: ") and f"pip install 'rqvqa[{extra}]'" in err, err
    assert leftover not in blocked_run["written"]


def test_pyproject_core_holds_no_extra_and_test_installs_them_all():
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert set(extras) - {"all", "test"} == set(EXTRAS)  # one extra each, declared in both places
    assert extras["all"] == [f"rqvqa[{','.join(EXTRAS)}]"] and "rqvqa[all]" in extras["test"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in requirements}

    heavy = {"torch", "torchvision", "timm", "open-clip-torch", "sentencepiece", "bitsandbytes", "pyarrow"}
    assert not names(project["dependencies"]) & (heavy | {"scikit-learn", "openpyxl", "huggingface_hub"})
    assert heavy - {"bitsandbytes", "pyarrow"} <= names(extras["models"])


def test_a_card_with_an_extra_names_it_only_for_a_module_outside_rqvqa():
    from rqvqa.registry import ModelCard, Registry, RegistryError

    registry = Registry(families=())

    def card(name: str, predictor: str, extra: str | None) -> ModelCard:
        return ModelCard(name, "test", predictor, "", False, (None, None), "", extra=extra)

    registry.add_model(card("net", "some_absent_network_lib.models:Net", "models"))
    registry.add_model(card("ours", "rqvqa.families.absent_family:Net", "models"))
    registry.add_model(card("plain", "some_absent_network_lib:Net", None))
    for _ in range(2):  # the second ask reads the remembered failure
        with pytest.raises(RegistryError) as net:
            registry.model_class("net")
        assert str(net.value) == (
            "model 'net' needs the models extra: pip install 'rqvqa[models]' "
            "(missing module 'some_absent_network_lib')"
        )
    with pytest.raises(RegistryError, match="model 'ours' is unavailable: ModuleNotFoundError") as ours:
        registry.model_class("ours")
    assert "pip install" not in str(ours.value)  # a missing module of rqvqa is a defect, not an extra
    with pytest.raises(RegistryError, match="model 'plain' is unavailable"):
        registry.model_class("plain")


def _import_time_edges(path) -> tuple[set[str], set[str]]:
    """(rqvqa modules, other top-level modules) that a module imports when it is imported: its statements
    outside functions (class bodies run at import), `if TYPE_CHECKING:` blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    ours, theirs = set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or _type_checking_only(node, parents):
            continue
        up, in_function = node, False
        while up in parents and not in_function:
            up = parents[up]
            in_function = isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if in_function or (isinstance(node, ast.ImportFrom) and node.level):
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        for name in names:
            if name.partition(".")[0] == "rqvqa":
                ours |= {name} | {f"{name}.{a.name}" for a in node.names}
            else:
                theirs.add(name.partition(".")[0])
    return ours, theirs


def test_no_module_imported_by_the_offline_path_imports_an_extra_at_import_time():
    """Static, over every offline command and model (the subprocess above runs some of them): what the
    offline entry points import at import time, transitively, imports no extra's module at import time."""
    from rqvqa.cli import COMMANDS, NEEDS
    from rqvqa.registry import REGISTRY

    modules = _modules()
    edges = {name: _import_time_edges(path) for name, path in modules.items()}
    entry = {"rqvqa", "rqvqa.cli", "rqvqa.api", "rqvqa.pipeline"}
    entry |= {module for name, (module, _) in COMMANDS.items() if name not in NEEDS}
    entry |= {card.predictor.partition(":")[0] for card in REGISTRY.models() if card.extra is None}
    entry |= {card.source.partition(":")[0] for card in REGISTRY.sources() if card.extra is None}
    seen, todo = set(), list(entry)
    while todo:
        module = todo.pop()
        if module in seen or module not in modules:
            continue
        seen.add(module)
        todo += sorted(edges[module][0])
        parent = module.rpartition(".")[0]  # importing a submodule runs its packages' __init__ first
        todo += [parent] if parent else []
    assert {"rqvqa.cli.predict", "rqvqa.families.lite.predictor", "rqvqa.predictor"} <= seen
    blocked = {m for extra in EXTRAS.values() for m in extra}
    offenders = {m: sorted(edges[m][1] & blocked) for m in sorted(seen) if edges[m][1] & blocked}
    assert offenders == {}


def test_only_an_absent_module_of_an_extra_is_reported_as_the_extra():
    from rqvqa.extras import explain

    absent = ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn")
    assert explain(absent, "rqvqa x") == (
        "rqvqa x needs the models extra: pip install 'rqvqa[models]' (missing module 'torch')"
    )
    assert explain(ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow"), "y").startswith(
        "y needs the parquet extra"
    )
    assert (
        explain(ImportError("cannot import name 'nn' from 'torch'", name="torch"), "x") is None
    )  # a version
    assert explain(ModuleNotFoundError("No module named 'rqvqa.gone'", name="rqvqa.gone"), "x") is None
