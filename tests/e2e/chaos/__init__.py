"""Helpers of the chaos suite: a cuttable TCP proxy and the booking traffic."""
