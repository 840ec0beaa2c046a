"""The retrain flow against the same steps written as a plain Qlib script, same config and data.

    .venv/bin/python benchmarks/pipeline_vs_qlib.py [--repeats 3]

Synthesizes the demo-size dataset (60 instruments, seed 7), starts one local Prefect server (its
start-up is reported apart, as a deployment starts it once), then runs each side `--repeats` times,
alternating, each run in a fresh Python process (as a Prefect worker runs a flow run) so that peak
memory is that run's own (ru_maxrss from wait4). Both sides load the workflow through the same
`load_workflow_config` (threads capped to the cores) and record into a Qlib recorder (MLflow on SQLite):

- bare Qlib: qlib.init -> DatasetH -> R.start: fit -> predict -> calc_ic -> TopkDropout backtest ->
  risk_analysis, logging params and metrics and saving the model and predictions, as qrun would;
- the flow: `flows.retrain.retrain` (prepare -> train -> evaluate -> register -> re-score production on the
  candidate's window -> decide -> promote), with the registry on SQLite, with Prefect's default settings;
  from the second run on there is a production model, and its re-scoring (loading it and its saved dataset
  state, building its features for the window, predicting, the same metrics and backtest) is a row of its own;
- the same flow with Prefect's flow run heartbeats turned off, to show how much of the overhead is their
  teardown (the target is judged on the defaults: heartbeats are how Prefect detects crashed runs).

The timed region of a run starts after the imports (reported separately) and ends when the run returns;
the time the cyclic garbage collector ran during it is reported too (the flow's Qlib steps run with the
process's long-lived objects frozen out of its passes, see `tasks.core.qlib.session.long_lived_objects_frozen`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "workflow_config_lightgbm_Alpha158.yaml"
MODEL_NAME = "bench_lgbm_alpha158"


# -- the sides (each run inside a child process) -----------------------------------------------------

SIDES = ("bare", "flow", "flow_no_heartbeats")


def _count_dataset_builds() -> dict[str, int]:
    """Count handler data set-ups (the expensive part of building a dataset) in this process."""
    from qlib.data.dataset.handler import DataHandlerLP

    counter = {"builds": 0}
    original = DataHandlerLP.setup_data

    def counting(self: object, *args: object, **kwargs: object) -> object:
        counter["builds"] += 1
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    DataHandlerLP.setup_data = counting  # type: ignore[method-assign]
    return counter


def _time_collections() -> dict[str, float]:
    """Sum the time the cyclic garbage collector runs in this process from now on (its callbacks)."""
    spent = {"s": 0.0, "started": 0.0}

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            spent["started"] = time.perf_counter()
        else:
            spent["s"] += time.perf_counter() - spent["started"]

    gc.callbacks.append(on_collection)
    return spent


def run_bare(data: Path, work: Path) -> dict[str, float]:
    """qlib.init -> dataset -> fit -> predict -> IC -> backtest, by hand (what users write without us)."""
    started = time.perf_counter()
    import qlib
    from qlib.backtest import backtest
    from qlib.contrib.eva.alpha import calc_ic
    from qlib.contrib.evaluate import risk_analysis
    from qlib.data.dataset.handler import DataHandlerLP
    from qlib.utils import flatten_dict, init_instance_by_config
    from qlib.workflow import R

    from tasks.core.qlib.evaluation import DEFAULT_EXECUTOR, backtest_settings
    from tasks.core.qlib.workflow_config import fill_placeholders, load_workflow_config

    counter = _count_dataset_builds()
    imported = time.perf_counter()
    collections = _time_collections()
    cfg = load_workflow_config(CONFIG, provider_uri=str(data))
    exp_manager = {"class": "MLflowExpManager", "module_path": "qlib.workflow.expm",
                   "kwargs": {"uri": f"sqlite:///{work / 'mlflow_bare.db'}", "default_exp_name": "bare"}}
    qlib.init(provider_uri=str(data), region="cn", exp_manager=exp_manager)
    dataset = init_instance_by_config(cfg.dataset)
    with R.start(experiment_name=MODEL_NAME):
        R.log_params(**flatten_dict(cfg.task))
        model = init_instance_by_config(cfg.model)
        model.fit(dataset)
        R.save_objects(**{"params.pkl": model})
        pred = model.predict(dataset, segment="test").to_frame("score")
        label = dataset.prepare("test", col_set="label", data_key=DataHandlerLP.DK_R)
        ic, ric = calc_ic(pred.iloc[:, 0], label.iloc[:, 0])
        port = cfg.port_analysis
        assert port is not None
        strategy = dict(port["strategy"], kwargs={**port["strategy"]["kwargs"], "signal": pred})
        executor = fill_placeholders(DEFAULT_EXECUTOR)
        portfolio, _ = backtest(executor=executor, strategy=strategy, **backtest_settings(port["backtest"], pred))
        report, _ = portfolio["1day"]
        risk = risk_analysis(report["return"] - report["bench"] - report["cost"], freq="1day")["risk"]
        metrics = {"ic_mean": float(ic.mean()), "rank_ic": float(ric.mean()),
                   "information_ratio": float(risk["information_ratio"])}
        R.log_metrics(**metrics)
        R.save_objects(**{"pred.pkl": pred, "label.pkl": label})
    finished = time.perf_counter()
    return {"import_s": imported - started, "run_s": finished - imported, "dataset_builds": counter["builds"],
            "ic_mean": metrics["ic_mean"], "gc_s": collections["s"]}


def run_flow(data: Path, work: Path, heartbeats: bool = True) -> dict[str, float]:
    """`flows.retrain.retrain` on the same config and data, against the already running Prefect server.

    `heartbeats=False` runs it with Prefect's flow run heartbeats off (they are on by default since Prefect
    3.8: every 180 s, for crashed-run detection), to show what their teardown costs: at the end of a run the
    engine joins the heartbeat thread, which sleeps in 1 s steps, so a run ends up to 1 s late.
    """
    started = time.perf_counter()
    os.environ.update({
        "QMP_REGISTRY_DIR": str(work / "registry"), "QMP_PROVIDER_URI": str(data),
        "QMP_MLFLOW_URI": f"sqlite:///{work / 'mlflow_flow.db'}",
    })
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.retrain import WorkflowSource, retrain

    counter = _count_dataset_builds()
    with temporary_settings({} if heartbeats else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        imported = time.perf_counter()
        collections = _time_collections()
        # force: every run trains although the data does not change between runs (the gate would skip them).
        state = retrain(
            model_name=MODEL_NAME, workflow=WorkflowSource(config_path=str(CONFIG)), force=True, return_state=True
        )
        finished, returned_at = time.perf_counter(), datetime.now(UTC)
    result = state.result()
    # The Completed state is stamped when the flow function has returned; what follows is the engine's teardown.
    teardown = (returned_at - state.timestamp).total_seconds()
    return {"import_s": imported - started, "run_s": finished - imported, "dataset_builds": counter["builds"],
            "ic_mean": result.metrics.get("ic_mean", float("nan")), "teardown_s": teardown, "gc_s": collections["s"],
            "rescore_s": result.production_rescoring_seconds if result.production_rescoring_seconds is not None
            else float("nan")}


# -- the parent: data, Prefect server, alternating runs, table ------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_prefect_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, float]:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PREFECT_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as reply:
                if reply.status == 200:
                    return server, api, time.perf_counter() - started
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the Prefect server did not start within 120 s")


def run_child(side: str, data: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    """One run in a fresh process; adds its wall time and peak RSS (MiB) measured by wait4."""
    started = time.perf_counter()
    with open(work / f"{side}.out", "w+b") as out, open(work / f"{side}.err", "w+b") as err:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", side, "--data", str(data), "--work", str(work)],
            env=env, stdout=out, stderr=err, cwd=work,
        )
        _, status, usage = os.wait4(child.pid, 0)  # reaps the child and reports its own peak RSS
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode:
        sys.stderr.write(stderr.decode(errors="replace")[-4000:])
        raise RuntimeError(f"{side} run failed with exit code {child.returncode}")
    peak = usage.ru_maxrss  # KiB on Linux
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result.update(process_s=time.perf_counter() - started, peak_mib=peak / 1024)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (median reported)")
    parser.add_argument("--output", type=Path, help="also write the table (Markdown) to this file")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        if args.child == "bare":
            result = run_bare(args.data, args.work)
        else:
            result = run_flow(args.data, args.work, heartbeats=args.child == "flow")
        sys.stdout.write("\n" + json.dumps(result) + "\n")
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from _bench import machine, table

    work = Path(tempfile.mkdtemp(prefix="qmp_pipeline_bench_"))
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", "PYTHONPATH": str(ROOT)}
    sys.path.insert(0, str(ROOT))
    from tasks.core.data.synthetic import synthesize

    t = time.perf_counter()
    data = synthesize(work / "qlib_data", instruments=60, seed=7).out
    print(f"synthesized 60 instruments in {time.perf_counter() - t:.1f} s", flush=True)
    server, api, startup = start_prefect_server(work / "prefect", env)
    env.update(PREFECT_API_URL=api, PREFECT_HOME=str(work / "prefect"))
    print(f"Prefect server up in {startup:.1f} s", flush=True)
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    try:
        for i in range(args.repeats):
            for side in SIDES[i % len(SIDES):] + SIDES[:i % len(SIDES)]:  # each side first in turn
                runs[side].append(run_child(side, data, work, env))
                print(f"run {i + 1} {side}: {runs[side][-1]}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    rows = []
    for key, label in (("run_s", "run (timed region), s"), ("import_s", "imports, s"),
                       ("process_s", "whole process, s"), ("peak_mib", "peak memory (ru_maxrss), MiB"),
                       ("dataset_builds", "dataset builds per run")):
        bare, flow, quiet = (med(side, key) for side in SIDES)
        rows.append([label, f"{bare:.2f}", f"{flow:.2f}", f"{flow / bare:.2f}x" if bare else "—",
                     f"{quiet:.2f}", f"{quiet / bare:.2f}x" if bare else "—"])
    rows.append(["of the run: cyclic garbage collection, s", f"{med('bare', 'gc_s'):.2f}", f"{med('flow', 'gc_s'):.2f}",
                 "", f"{med('flow_no_heartbeats', 'gc_s'):.2f}", ""])
    rows.append(["of the run: engine teardown after the Completed state, s", "—",
                 f"{med('flow', 'teardown_s'):.2f}", "", f"{med('flow_no_heartbeats', 'teardown_s'):.2f}", ""])

    def rescoring(side: str) -> str:
        """Champion re-scoring (production scored on the candidate's window): runs that had a production model."""
        seconds = [(r["rescore_s"], r["run_s"]) for r in runs[side] if r["rescore_s"] == r["rescore_s"]]
        if not seconds:
            return "—"
        spent, run = statistics.median(s for s, _ in seconds), statistics.median(r for _, r in seconds)
        return f"{spent:.2f} ({spent / run * 100:.0f}%)"

    rows.append(["of the run: champion re-scoring, s (% of the run)", "—", rescoring("flow"), "",
                 rescoring("flow_no_heartbeats"), ""])

    def paired(side: str) -> list[float]:
        """flow / bare within each repeat (the sides of a repeat run back to back): robust to drift."""
        return sorted(f["run_s"] / b["run_s"] for f, b in zip(runs[side], runs["bare"], strict=True))

    overhead = med("flow", "run_s") / med("bare", "run_s") - 1
    quiet_overhead = med("flow_no_heartbeats", "run_s") / med("bare", "run_s") - 1
    pairs, quiet_pairs = paired("flow"), paired("flow_no_heartbeats")

    def without_gc(side: str) -> float:
        return statistics.median(r["run_s"] - r["gc_s"] for r in runs[side])

    gc_overhead = without_gc("flow") / without_gc("bare") - 1
    gc_quiet_overhead = without_gc("flow_no_heartbeats") / without_gc("bare") - 1
    text = (
        f"Machine: {machine()}\n\nDemo-size data (60 instruments, seed 7), "
        f"`{CONFIG.relative_to(ROOT)}`, medians of {args.repeats} runs per side, each in a fresh process; "
        f"Prefect server start-up ({startup:.1f} s) excluded.\n\n"
        + table(["measure", "bare Qlib", "retrain flow", "flow / bare", "flow, heartbeats off", "/ bare"], rows,
                numeric={1, 2, 3, 4, 5})
        + f"\n\nOrchestration + registration overhead on the timed region: {overhead * 100:+.1f}% with Prefect's "
        f"defaults (target <= +10%), {quiet_overhead * 100:+.1f}% with its flow run heartbeats off. Per repeat "
        f"(sides back to back): flow / bare {statistics.median(pairs):.3f} (range {pairs[0]:.3f}-{pairs[-1]:.3f}), "
        f"heartbeats off {statistics.median(quiet_pairs):.3f} ({quiet_pairs[0]:.3f}-{quiet_pairs[-1]:.3f}). "
        f"Leaving the cyclic garbage collector's time out on both sides (the bare script could freeze its "
        f"long-lived objects too): {gc_overhead * 100:+.1f}% with the defaults, {gc_quiet_overhead * 100:+.1f}% "
        f"with the heartbeats off.\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
