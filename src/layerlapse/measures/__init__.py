"""Measures of a run: what each probe image went through, and how good each layer's representation is."""
