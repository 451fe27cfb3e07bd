"""Play inside the world model, in the browser: the real game beside the model's view, dream mode, the planner's tree.

    python play.py --run runs/demo --game Breakout            # then open the printed URL (http://127.0.0.1:8765/)
    python play.py --run runs/tiny-breakout --game Breakout -K 2 -H 2 --port 9000

Exit status 2 (one line on stderr, before any server starts): unknown game, missing run, a model that
was not trained on the game, a port in use. Ctrl-C stops the server cleanly.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from jowa.viewer.cli import main, parse  # noqa: E402,F401  (parse: the README check reads it)

if __name__ == "__main__":
    sys.exit(main())
