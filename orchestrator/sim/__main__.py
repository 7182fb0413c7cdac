"""``python -m orchestrator.sim``: the simulator without the orchestrator's CLI group."""

from orchestrator.sim.cli import sim_command

if __name__ == "__main__":
    sim_command.main(prog_name="python -m orchestrator.sim")
