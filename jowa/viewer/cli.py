"""`play.py`: check the command, load the run, start the viewer's server on localhost (Ctrl-C stops it)."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
from pathlib import Path

from jowa.viewer.run_check import resolve_run

log = logging.getLogger(__name__)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="play.py", description="Play a game in the real emulator or inside the "
                                     "world model of a run, in the browser, beside the planner's reasoning.")
    parser.add_argument("--run", type=Path, required=True, help="a run plan.py accepts (pretrained, fine-tuned, "
                        "or a `make demo` directory)")
    parser.add_argument("--game", required=True, help="e.g. Breakout")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--planner", choices=("beam", "greedy", "mcts"), default="beam",
                        help="the agent's planner (jowa.planning.registry); only beam search shows every node's "
                        "probabilities")
    parser.add_argument("-K", "--beam-width", type=int, default=2)
    parser.add_argument("-H", "--horizon", type=int, default=1,
                        help="planner horizon (0 = greedy; default 1, the demo's and the study's evaluation setting)")
    parser.add_argument("--simulations", type=int, help="MCTS simulations per decision (default 20)")
    parser.add_argument("--return-lambda", type=float, default=1.0,
                        help="beam search's λ-return score (ours): 1 = the official score, 0 = greedy's")
    parser.add_argument("--context", type=int, default=6, help="blocks of real history in the model's memory")
    parser.add_argument("--sticky", type=float, default=0.0, help="sticky-action probability of the emulator")
    parser.add_argument("--max-fps", type=float, default=15.0, help="steps per second at most while running")
    parser.add_argument("--out", type=Path, help="where saved recordings go (default: RUN/play)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, …")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (one is fastest for the "
                        "small single-token passes of planning)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def check_port(host: str, port: int) -> None:
    """Fail before loading anything when the address cannot be bound."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "in use" if error.errno == errno.EADDRINUSE else error.strerror
            raise ValueError(f"cannot listen on {host}:{port} ({reason}); pass another --port") from None


def planner_of(args: argparse.Namespace):
    """The planner the flags ask for, validated (horizon 0 is greedy, as in plan.py)."""
    from jowa.planning.planner import PlannerSettings
    from jowa.planning.registry import make_planner

    name = "greedy" if args.planner == "greedy" or (args.planner == "beam" and args.horizon == 0) else args.planner
    return make_planner(name, PlannerSettings(args.horizon, args.beam_width, args.simulations, args.return_lambda))


def check_options(args: argparse.Namespace) -> None:
    from jowa.planning.planner import check_context

    planner = planner_of(args)
    check_context(args.context, planner.horizon)
    if not 0.0 <= args.sticky <= 1.0 or args.max_fps <= 0 or not 0 < args.port < 65536:
        raise ValueError("--sticky must be in [0, 1], --max-fps > 0, --port in 1..65535")


def build(args: argparse.Namespace):
    """Everything the server needs; raises ValueError / FileNotFoundError on bad input, before any server."""
    check_options(args)
    resolved = resolve_run(args.run, args.game)
    check_port(args.host, args.port)
    import torch

    from jowa.evaluation.runner import load_run
    from jowa.training.distributed import pick_device
    from jowa.viewer.server import Viewer
    from jowa.viewer.session import PlaySession

    if resolved.note:
        log.warning(resolved.note)
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    model, tokenizer = load_run(resolved.run, pick_device(args.device, 0))
    session = PlaySession(model, tokenizer, resolved.game, planner_of(args), args.context, args.sticky, args.seed)
    return Viewer(session, args.out or Path(args.run) / "play", args.max_fps)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        viewer = build(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("stopped before the server started", file=sys.stderr, flush=True)
        return 3
    import uvicorn

    from jowa.viewer.server import build_app

    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"jowa viewer: {viewer.session.game} from {args.run} at http://{host}:{args.port}/  (Ctrl-C stops)", flush=True)
    config = uvicorn.Config(build_app(viewer), host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=3, ws_max_size=1 << 16)
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:  # stop stepping first, then let uvicorn close
            viewer.stop()
            super().handle_exit(sig, frame)

    try:  # uvicorn handles SIGINT/SIGTERM: closes the sockets, runs the lifespan's cleanup, then re-raises
        Server(config).run()
    except KeyboardInterrupt:
        pass
    print("jowa viewer stopped", flush=True)
    return 0  # Ctrl-C is how a viewer ends: nothing is left to continue
