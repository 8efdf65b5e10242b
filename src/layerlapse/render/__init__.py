"""Pictures of a run: frames, video and figures, drawn with matplotlib's object API."""
