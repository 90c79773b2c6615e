"""argparse types for numeric options, so every command refuses a bad value with the same words."""

import argparse


def _bounded(convert, low=None, high=None, *, low_exclusive=False):
    def parse(text: str):
        value = convert(text)
        too_low = low is not None and (value <= low if low_exclusive else value < low)
        if too_low or (high is not None and value > high) or value != value:  # NaN compares unequal
            if high is None:
                raise argparse.ArgumentTypeError(f"must be {'>' if low_exclusive else '>='} {low}, got {text}")
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {text}")
        return value
    return parse


positive_int = _bounded(int, 1)
positive_float = _bounded(float, 0, low_exclusive=True)
non_negative_float = _bounded(float, 0)
probability = _bounded(float, 0.0, 1.0)


def int_between(low: int, high: int):
    return _bounded(int, low, high)
