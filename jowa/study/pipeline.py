"""Run the study's stages not yet finished, in order, recording each in OUT/study.json.

A rerun of the same command skips the finished stages and continues the interrupted one from its own
checkpoints (behaviour runs, pretraining and fine-tuning checkpoints, evaluation episode logs). Other
settings, or another --behaviour directory, in the same OUT are refused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from jowa import staged_run
from jowa.atomic import write_json
from jowa.config import to_dict
from jowa.study.config import StudyConfig
from jowa.study.stages import Study, stage_functions

RECORD = "study.json"


def open_record(out: Path, config: StudyConfig, behaviour: Path | None) -> dict[str, Any]:
    """study.json of an earlier run with the same settings, or a fresh one; anything else is an error."""
    path = out / RECORD
    settings = {"config": to_dict(config), "behaviour": None if behaviour is None else str(behaviour)}

    def check_same(record: dict[str, Any]) -> None:
        if {"config": record.get("config"), "behaviour": record.get("behaviour")} != settings:
            theirs = record.get("config") or {}
            changed = sorted(k for k in settings["config"] if theirs.get(k) != settings["config"][k])
            if record.get("behaviour") != settings["behaviour"]:
                changed.append("--behaviour")
            raise ValueError(f"{out} holds a study with other settings ({', '.join(changed)}; {path}); rerun it "
                             "with its own settings, choose another --out, or remove it")

    fresh = {**settings, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": {},
             "attempts": 0}
    return staged_run.open_record(path, fresh, check_same,
                                  f"{out} exists and is not a study directory (no {RECORD}); choose another --out")


def run_study(out: Path, config: StudyConfig, behaviour: Path | None = None,
              log: Callable[[str], None] = print) -> Path:
    """Run the unfinished stages; returns the path of RESULTS.md. `behaviour`: an existing directory of
    behaviour runs to use instead of making the data here (the behaviour stage then only checks it)."""
    out = Path(out)
    stages = stage_functions(config)
    record = open_record(out, config, behaviour)
    record["attempts"] = record.get("attempts", 0) + 1
    write_json(out / RECORD, record)
    study = Study(out, config, Path(behaviour) if behaviour is not None else out / "behaviour")
    for index, (name, function) in enumerate(stages.items(), 1):
        done = record["stages"].get(name)
        if done is not None and name != "results":  # the results are cheap and always rewritten
            log(f"[study {index}/{len(stages)}] {name}: done in an earlier run ({done['seconds'] / 60:.1f} min), skipped")
            continue
        log(f"[study {index}/{len(stages)}] {name} … (started {time.strftime('%H:%M:%S')})")
        started = time.perf_counter()
        if name == "results":  # the results read the record, with this stage's predecessors in it
            write_json(out / RECORD, record)
        result = function(study)
        seconds = time.perf_counter() - started
        record["stages"][name] = {"seconds": round(seconds, 1), "result": result}
        write_json(out / RECORD, record)
        log(f"[study {index}/{len(stages)}] {name}: done in {seconds / 60:.1f} min")
    return Path(record["stages"]["results"]["result"]["markdown"])
