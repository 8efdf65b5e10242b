"""2-D maps of recorded layers: the methods, the backends that run them, the timeline, the maps' faithfulness."""
