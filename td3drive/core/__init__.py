"""The leaf layer: facts every other layer shares and that import nothing else of td3drive.

- :mod:`~td3drive.core.spec`: the observation/action contract's sizes (image side, frame stack, action dim);
- :mod:`~td3drive.core.seeding`: the named random streams and the per-episode reset seeds;
- :mod:`~td3drive.core.device`: the torch device a config's ``agent.device`` names;
- :mod:`~td3drive.core.errors`: ``ConfigError``, what a bad user input raises;
- :mod:`~td3drive.core.options`: how a config key is declared (``leaf``) and checked (``build``);
- :mod:`~td3drive.core.guard_options`: the live guard's options and which alerts stop a run by default;
- :mod:`~td3drive.core.divergence`: the actor-loss divergence maths of the guard and the report;
- :mod:`~td3drive.core.tags`: every TensorBoard tag name;
- :mod:`~td3drive.core.verdicts`: verdicts and exit codes;
- :mod:`~td3drive.core.files`: atomic writes and JSON files;
- :mod:`~td3drive.core.signals`: SIGINT/SIGTERM handling shared by the trainer and its child processes.
"""
