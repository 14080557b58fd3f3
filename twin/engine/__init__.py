"""The engine: agents as numpy columns and the monthly processes that change them.

State, columns and kernels hold the agents; geography, fields and land turn
the layers into per-cell arrays; firms, talent, labour and infrastructure
are the processes; synth builds the base year; metrics reduces a state to
figures. Nothing here knows about scenarios, levers or outputs: levers reach
the engine only through the channels of :mod:`twin.engine.effects`.
"""
