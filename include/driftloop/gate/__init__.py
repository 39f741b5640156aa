"""The gate's statistics: does a retrained version beat Production on the holdout (a pure
judgement; ``driftloop.stages.gating`` carries it out in the registry)."""
