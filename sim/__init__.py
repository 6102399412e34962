"""servesim's simulation core: platform models (Lambda, EC2), engines, billing and metrics.

`sim` takes arrivals as an iterator of chunks of arrival times (seconds, float64) and knows
nothing of where they come from. It imports none of the other servesim packages.
"""
