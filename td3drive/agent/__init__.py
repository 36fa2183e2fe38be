"""TD3 agent: networks, replay buffer and the update rule. Never imports ``td3drive.envs``."""
