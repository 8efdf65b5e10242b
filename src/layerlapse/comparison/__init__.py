"""Several runs, one lapse: join runs recorded on the same probe, measure what differs and show them side by side
(`layerlapse compare`, `layerlapse.compare`)."""
