"""The models and the simulator a session runs: ground-truth world simulator, world model, avatar."""
