"""``python -m devtools.sim``: the simulator without the orchestrator's CLI group."""

from devtools.sim.cli import sim_command

if __name__ == "__main__":
    sim_command.main(prog_name="python -m devtools.sim")
