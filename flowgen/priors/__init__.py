"""Priors that guide the 4D optimisation: a given video (`video`) or a video model (`wan`)."""
