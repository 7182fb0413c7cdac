"""Development and test tools: the Pixazo simulator, a demo consumer, the process stack, the demo.

Like ``celery.contrib.testing`` or ``django.test``, this package may import the product
(``orchestrator``, ``workers``, ``webhooks``, ``ops``) but the product never imports it (an
import-linter contract in ``setup.cfg`` checks that). Its commands (``orchestrator sim``,
``orchestrator consumer``, ``orchestrator demo``) reach the product CLI through the
``orchestrator.commands`` entry-point group, so an install without ``devtools`` simply lacks them.
"""
