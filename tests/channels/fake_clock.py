"""A monotonic clock the test moves by hand, so breakers, windows and latencies are tested without
sleeping."""


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
