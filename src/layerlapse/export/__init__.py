"""A stored run for other tools: TensorBoard's projector, Parquet tables."""
