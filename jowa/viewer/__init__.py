"""The browser viewer (`play.py`): the real game beside the world model's view, dreaming, the planner's tree."""
