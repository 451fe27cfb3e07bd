"""Data: DQN-Replay files, episodes, token shards and the training batches built from them."""
