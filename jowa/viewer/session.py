"""One game, played by a person or by the agent, in the real emulator or inside the world model.

Real mode steps the emulator; the model's view is the reconstruction of the frame's 36 tokens. Dream
mode starts from the current real context and feeds the model its own predictions: each step imagines
the next frame (37 cached passes, `imagine_step`), and the emulator waits where the dream began. After
every step the agent's planner (beam search by default, any `planner.Planner`) is run on the current
context (real or dreamt) with its trace on, so the page shows the decision the agent would take now;
agent mode takes exactly that action.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jowa.envs.atari import make_env
from jowa.games import FULL_ACTIONS, minimal_to_full, task_id
from jowa.planning.beam_search import PlanResult
from jowa.planning.imagination import imagine_step
from jowa.planning.planner import Planner
from jowa.planning.tree import SearchTree
from jowa.viewer.memory import TokenMemory

MAX_RECORDED_FRAMES = 5000  # about 5 minutes at 15 fps; older frames are dropped


@dataclass
class LastStep:
    """What the most recent step produced (real: the emulator's reward; dream: the model's predictions)."""

    action: int | None = None
    reward: float = 0.0
    reward_prob: float | None = None  # dream: probability of the predicted reward sign
    end_prob: float | None = None  # dream: predicted probability that the episode ended
    done: bool = False


@dataclass
class Timings:
    """Milliseconds spent in the last step, by part."""

    env_ms: float = 0.0
    imagine_ms: float = 0.0
    plan_ms: float = 0.0
    decode_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in vars(self).items()}


@dataclass
class SessionState:
    mode: str = "real"  # "real" | "dream"
    real_steps: int = 0
    real_return: float = 0.0
    episode: int = 0
    dream_steps: int = 0  # the imagination-horizon counter
    dream_return: float = 0.0  # sum of the predicted reward signs since the dream began
    last: LastStep = field(default_factory=LastStep)


class PlaySession:
    """Not thread-safe: the server calls it from one worker at a time."""

    def __init__(self, model: torch.nn.Module, tokenizer: torch.nn.Module, game: str, planner: Planner,
                 context: int = 6, sticky: float = 0.0, seed: int = 0) -> None:
        self.model, self.tokenizer, self.game, self.planner = model, tokenizer, game, planner
        self.device = model.atoms.device
        self.task = torch.tensor([task_id(game)], device=self.device)
        self.valid_actions = minimal_to_full(game)
        self.context = context
        self.seed = seed
        self.env = make_env(game, sticky=sticky, max_episode_steps=None)
        self.horizon_limit = 0  # dream steps before the dream restarts from the real context (0: never)
        # Off: a person's steps skip the planner (its tree then shows an earlier step; faster play).
        self.planner_view = True
        self.plan_stale = True
        self.timings = Timings()
        self.recording: list[np.ndarray] = []
        self.state = SessionState()
        self.reset()

    # ------------------------------------------------------------------ controls

    def reset(self) -> None:
        """A new real episode; leaves dream mode."""
        self.real_frame, _ = self.env.reset(seed=self.seed + self.state.episode)
        self.state = SessionState(episode=self.state.episode + 1)
        self.real_memory = TokenMemory(self.context)
        self.real_memory.push(None, self._encode(self.real_frame))
        self.dream_memory: TokenMemory | None = None
        self._refresh()
        self._record()

    def dream(self) -> None:
        """Continue from the current real context inside the world model."""
        self.dream_memory = self.real_memory.copy(capacity=self._dream_capacity())
        self.state.mode, self.state.dream_steps, self.state.dream_return = "dream", 0, 0.0
        self.state.last = LastStep()
        self._refresh()

    def wake(self) -> None:
        """Back to the real game, where the dream left it."""
        self.dream_memory = None
        self.state.mode, self.state.last, self.state.dream_steps, self.state.dream_return = "real", LastStep(), 0, 0.0
        self._refresh()

    def step(self, action: int | None = None) -> None:
        """One step with `action` (a full-set index valid in the game) or, with None, the planner's choice."""
        self.timings = Timings()
        if action is None:
            if self.plan_stale:  # the planner view is off: plan now, the agent needs the decision
                self._plan_now()
            action = self.tree.chosen_action
        if action not in self.valid_actions:
            raise ValueError(f"{self.game}: action {action} is not one of {self.valid_actions}")
        if self.state.mode == "dream":
            if self.horizon_limit and self.state.dream_steps >= self.horizon_limit:
                self.dream()  # DIAMOND-style: a bounded horizon restarts from reality
            self._dream_step(action)
        elif self.state.last.done:
            self.reset()
        else:
            self._real_step(action)
        self._refresh()
        self._record()

    # ------------------------------------------------------------------ stepping

    def _real_step(self, action: int) -> None:
        started = time.perf_counter()
        frame, reward, terminated, truncated, _ = self.env.step(action)
        self.timings.env_ms = 1000 * (time.perf_counter() - started)
        self.real_frame = frame
        self.real_memory.push(action, self._encode(frame))
        self.state.real_steps += 1
        self.state.real_return += float(reward)
        self.state.last = LastStep(action, float(reward), done=bool(terminated or truncated))

    @torch.no_grad()
    def _dream_step(self, action: int) -> None:
        assert self.dream_memory is not None
        started = time.perf_counter()
        step = self._planned_step(action)
        if step is None:  # the planner did not imagine this action from here: imagine it now
            cache = self.model.empty_cache(1)
            self.model(self.dream_memory.context()[None].to(self.device), self.task, cache=cache, with_target=False)
            imagined = imagine_step(self.model, cache, torch.tensor([action], device=self.device), self.task,
                                    self.model.valid_actions(self.task), with_probs=True)
            step = (imagined.next_obs_tokens[0].cpu(), int(imagined.rewards[0]), imagined.reward_probs[0].cpu(),
                    float(imagined.end_probs[0]), bool(imagined.ends[0]))
        self.timings.imagine_ms = 1000 * (time.perf_counter() - started)
        tokens, sign, reward_probs, end_prob, ended = step
        self.dream_memory.push(action, tokens)
        self.state.dream_steps += 1
        self.state.dream_return += sign
        self.state.last = LastStep(action, float(sign), float(reward_probs[sign + 1]), end_prob, done=ended)

    def _planned_step(self, action: int) -> tuple[torch.Tensor, int, torch.Tensor, float, bool] | None:
        """The planner's depth-1 node for `action`, if it expanded one from this very context: the same
        model, context and decoding as imagining it again, so the dream reuses it (37 passes saved)."""
        beam = self._plan.detail if isinstance(self._plan.detail, PlanResult) else None  # only beam search's trace
        traces = beam.traces[0] if beam is not None and beam.traces and not self.plan_stale else []
        if not traces or self.dream_memory.capacity != self._dream_capacity():
            return None
        first = traces[0]
        hits = (first.actions == action).nonzero().flatten()
        if not len(hits):
            return None
        j = int(hits[0])
        return (first.next_obs_tokens[j].long(), int(first.rewards[j]), first.reward_probs[j],
                float(first.end_probs[j]), bool(first.ends[j]))

    def _dream_capacity(self) -> int:
        """Blocks the dream keeps: exactly what the planner reads (8 − H), so its imagined steps can be reused."""
        return self.model.config.max_blocks - max(1, self.planner.horizon)

    def _encode(self, frame: np.ndarray) -> torch.Tensor:
        return self.tokenizer.encode_tokens(torch.from_numpy(frame)[None])[0].cpu()  # [36]

    @torch.no_grad()
    def _refresh(self) -> None:
        """Decode the model's view and rerun the planner on the current context."""
        memory = self.dream_memory if self.state.mode == "dream" else self.real_memory
        started = time.perf_counter()
        decoded = self.tokenizer.decode_tokens(memory.frames[-1][None].to(self.device)).float()
        self.model_frame = (decoded[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        self.timings.decode_ms = 1000 * (time.perf_counter() - started)
        self.plan_stale = True
        if self.planner_view:
            self._plan_now()

    @torch.no_grad()
    def _plan_now(self) -> None:
        """The real planner, traced, on the current context (the decision the agent takes from here)."""
        memory = self.dream_memory if self.state.mode == "dream" else self.real_memory
        started = time.perf_counter()
        decision = self.planner.decide(self.model, [memory.context()], self.task, trace=True)
        self.timings.plan_ms = 1000 * (time.perf_counter() - started)
        self._plan = decision
        self.tree: SearchTree = decision.trees[0]
        self.plan_stale = False

    def _record(self) -> None:
        gap = np.full((84, 2), 128, np.uint8)
        self.recording.append(np.concatenate([self.real_frame, gap, self.model_frame], axis=1))
        del self.recording[:-MAX_RECORDED_FRAMES]

    # ------------------------------------------------------------------ output

    def action_legend(self) -> list[dict[str, object]]:
        return [{"id": a, "name": FULL_ACTIONS[a]} for a in self.valid_actions]

    def save_recording(self, path: Path, fps: int = 15) -> Path:
        """What was played (real | model, side by side, 3× larger) as a GIF or MP4 at `path`."""
        from jowa.evaluation.video import write_video

        path.parent.mkdir(parents=True, exist_ok=True)
        return write_video(np.stack(self.recording), path, fps=fps, scale=3)

    def close(self) -> None:
        self.env.close()
