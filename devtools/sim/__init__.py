"""A stand-in for Pixazo's PixVerse API, faithful to its documentation's rough edges.

Run it with ``orchestrator sim`` or ``python -m devtools.sim``; build it in-process with
``create_sim_app(SimEngine(...))`` from ``devtools.sim.server`` / ``devtools.sim.engine``.
"""
