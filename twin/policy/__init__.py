"""Policy: the scenario schema, the lever kinds and the hook through which levers act.

Scenario files are validated into :class:`twin.policy.scenario.Scenario`;
each lever is a pydantic model with ``apply(model, effects)``, which sees the
model only through :class:`twin.policy.hook.PolicyModel`.
"""
