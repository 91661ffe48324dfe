"""A worker: its policy loop and claims (worker), one attempt (attempt), the agent's own tree
(agent_tree), the review and verification of its change, the prompt, heartbeats and roles."""
