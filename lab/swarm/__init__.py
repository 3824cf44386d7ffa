"""Locust WebSocket swarms against the lab: users speaking JSON-RPC over WebSocket
(:mod:`lab.swarm.users`), load shapes (:mod:`lab.swarm.shapes`), the locustfile, and the runner
behind ``dubhe-lab swarm`` (:mod:`lab.swarm.runner`)."""
