"""numpy signal code: levels, gating, resampling, ring buffers, prosody, the acoustic estimator."""
