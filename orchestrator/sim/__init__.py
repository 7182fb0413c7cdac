"""A stand-in for Pixazo's PixVerse API, faithful to its documentation's rough edges.

Run it with ``orchestrator sim`` or ``python -m orchestrator.sim``; build it in-process with
``create_sim_app(SimEngine(...))`` from ``orchestrator.sim.server`` / ``orchestrator.sim.engine``.
"""
