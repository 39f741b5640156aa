"""Data arriving: the reference split and the stream of batches (``stream``, ``scenarios``),
deliberately broken batches (``faults``) and the checks a batch must pass (``validation``).
Storing a batch is the ``driftloop.stages.ingest`` stage."""
